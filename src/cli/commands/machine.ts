import { PodlogError } from '../../errors.js';
import { machineGraph, toDot, toMermaid } from '../../inspect/machine-graph.js';
import { out, str, type Command } from '../command.js';

export const machine: Command = {
  usage: 'podlog machine [FLAGS]',
  options: { format: { type: 'string', default: 'mermaid', value: 'mermaid|dot|json', description: 'how to draw the machine' } },
  examples: ['podlog machine', 'podlog machine --format dot | dot -Tsvg > pod.svg'],
  async run({ values }) {
    const format = str(values, 'format');
    const graph = machineGraph();
    if (format === 'json') out(JSON.stringify(graph, null, 2));
    else if (format === 'dot') out(toDot(graph));
    else if (format === 'mermaid') out(toMermaid(graph));
    else throw new PodlogError('EUSAGE', `--format: unknown format ${JSON.stringify(format)} (mermaid, dot or json)`);
    return 0;
  },
};
