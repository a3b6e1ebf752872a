/**
 * `podlog completion bash|zsh|fish`: a script that completes verbs, sub-commands and flags (from the
 * same tables help and the parsers use, written into the script) and, by asking podlog itself as the
 * user types, the UUIDs of this host's pods and the names of the images in the store.
 * `podlog completion --list pods|images` is what the scripts ask: it reads the log and writes nothing.
 */
import { ownsPod } from '../../engine/hosts.js';
import { POD_LIST, type PodListRow } from '../../engine/pod-list.js';
import { POD_STREAM_PREFIX, uuidOfStream } from '../../engine/streams.js';
import type { PodEventData } from '../../events/catalogue.js';
import { PodlogError } from '../../errors.js';
import { openStore } from '../../store/open.js';
import { readBatches } from '../../api/subscribe.js';
import { str, out, type Command, type Invocation } from '../command.js';
import { COMMANDS } from './index.js';
import { flagGroupsOf, GLOBAL_OPTIONS, GLOBAL_VALUE_FLAGS } from '../help.js';
import { withImageStore } from './image.js';

/** What the script needs to know of each verb. */
interface VerbSpec {
  name: string;
  summary: string;
  flags: Array<{ name: string; takesValue: boolean; description: string }>;
  subcommands: string[];
  operand: 'pod' | 'image' | undefined;
}

const verbSpecs = (): Promise<VerbSpec[]> =>
  Promise.all(
    COMMANDS.map(async (entry) => {
      const command = await entry.load();
      const options = Object.assign({}, ...flagGroupsOf(command).map((g) => g.options)) as Command['options'];
      return {
        name: entry.name,
        summary: entry.summary,
        flags: Object.entries(options).map(([name, f]) => ({ name, takesValue: f.type === 'string', description: f.description })),
        subcommands: command.subcommands ?? [],
        operand: command.operand,
      };
    }),
  );

/**
 * This host's pods that still exist: the pod list as last saved, brought forward by the pods prepared
 * and deleted since (no fold: completion runs on every TAB, and must not write the list it reads).
 */
const podUuids = async (inv: Invocation): Promise<string[]> => {
  const store = await openStore(inv.dir, { access: 'inspect', url: inv.store });
  try {
    const saved = await store.loadProjection<PodListRow>(POD_LIST);
    const uuids = new Set([...saved.rows.values()].filter((r) => ownsPod(inv.hostId, r.context)).map((r) => r.uuid));
    const types = ['PrepareRequested', 'PodDeleted'];
    for await (const batch of readBatches(store, { after: saved.checkpoint, streamPrefix: POD_STREAM_PREFIX, types, stopAtHead: true })) {
      for (const e of batch) {
        const uuid = uuidOfStream(e.stream);
        if (e.type === 'PodDeleted') uuids.delete(uuid);
        else if (ownsPod(inv.hostId, { host: (e.data as PodEventData['PrepareRequested']).host })) uuids.add(uuid);
      }
    }
    return [...uuids];
  } finally {
    await store.close();
  }
};

const imageNames = (inv: Invocation): Promise<string[]> =>
  withImageStore(inv, async (images) => [...new Set([...(await images.index()).images.values()].flatMap((i) => i.names.map((n) => n.name)))], 'inspect');

/** A word as a single-quoted shell word (fish and bash read them alike). */
const quoted = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** bash (zsh loads it through bashcompinit): the tables as case arms, the dynamic words from podlog. */
const bashScript = (verbs: VerbSpec[]): string => {
  const arm = (pick: (v: VerbSpec) => string): string => verbs.map((v) => `    ${v.name}) echo ${quoted(pick(v))} ;;`).join('\n');
  const globals = Object.keys(GLOBAL_OPTIONS).map((n) => `--${n}`).join(' ');
  return `# podlog completion for bash: source <(podlog completion bash)
_podlog_flags() {
  case "$1" in
${arm((v) => v.flags.map((f) => `--${f.name}${f.takesValue ? '=' : ''}`).join(' '))}
  esac
}
_podlog_subcommands() {
  case "$1" in
${arm((v) => v.subcommands.join(' '))}
  esac
}
_podlog_operand() {
  case "$1" in
${arm((v) => v.operand ?? '')}
  esac
}
_podlog() {
  local cur=\${COMP_WORDS[COMP_CWORD]} verb='' verb_at=0 i w
  local -a where=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case "$w" in
      ${GLOBAL_VALUE_FLAGS.join('|')}) where+=("$w" "\${COMP_WORDS[i+1]}"); ((i++)) ;;
      ${GLOBAL_VALUE_FLAGS.map((f) => `${f}=*`).join('|')}) where+=("$w") ;;
      --) break ;;
      -*) ;;
      *) if [[ -z $verb ]]; then verb=$w; verb_at=$i; fi ;;
    esac
  done
  if [[ -z $verb ]]; then
    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W ${quoted(globals)} -- "$cur"))
    else COMPREPLY=($(compgen -W ${quoted(verbs.map((v) => v.name).join(' '))} -- "$cur")); fi
    return
  fi
  if [[ $cur == -* ]]; then
    compopt -o nospace 2>/dev/null
    COMPREPLY=($(compgen -W "$(_podlog_flags "$verb") ${globals.split(' ').map((g) => `${g}${GLOBAL_VALUE_FLAGS.includes(g) ? '=' : ''}`).join(' ')}" -- "$cur"))
    # A flag that takes no value is complete: it gets its space back.
    [[ \${#COMPREPLY[@]} -eq 1 && \${COMPREPLY[0]} != *= ]] && compopt +o nospace 2>/dev/null
    return
  fi
  local subs
  subs=$(_podlog_subcommands "$verb")
  if [[ -n $subs && $COMP_CWORD -eq $((verb_at + 1)) ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  case "$(_podlog_operand "$verb")" in
    pod) COMPREPLY=($(compgen -W "$(podlog "\${where[@]}" completion --list pods 2>/dev/null)" -- "$cur")) ;;
    image) COMPREPLY=($(compgen -W "$(podlog "\${where[@]}" completion --list images 2>/dev/null)" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -F _podlog podlog
`;
};

/** zsh reads bash's completion functions through bashcompinit, which ships with zsh. */
const zshScript = (verbs: VerbSpec[]): string =>
  `# podlog completion for zsh: source <(podlog completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashScript(verbs).replace(/^# podlog completion for bash.*\n/, '')}`;

const fishScript = (verbs: VerbSpec[]): string => {
  const lines = ['# podlog completion for fish: podlog completion fish | source', 'complete -c podlog -f'];
  for (const [name, f] of Object.entries(GLOBAL_OPTIONS)) lines.push(`complete -c podlog -l ${name}${f.type === 'string' ? ' -r' : ''} -d ${quoted(f.description)}`);
  for (const v of verbs) {
    lines.push(`complete -c podlog -n __fish_use_subcommand -a ${v.name} -d ${quoted(v.summary)}`);
    const on = `-n ${quoted(`__fish_seen_subcommand_from ${v.name}`)}`;
    for (const s of v.subcommands) lines.push(`complete -c podlog ${on} -a ${s}`);
    for (const f of v.flags) lines.push(`complete -c podlog ${on} -l ${f.name}${f.takesValue ? ' -r' : ''} -d ${quoted(f.description)}`);
    if (v.operand !== undefined) lines.push(`complete -c podlog ${on} -a ${quoted(`(podlog completion --list ${v.operand}s 2>/dev/null)`)}`);
  }
  return `${lines.join('\n')}\n`;
};

const SCRIPTS = { bash: bashScript, zsh: zshScript, fish: fishScript };
const LISTS = { pods: podUuids, images: imageNames };

export const completion: Command = {
  usage: 'podlog completion bash|zsh|fish\npodlog completion --list pods|images',
  options: {
    list: { type: 'string', value: 'pods|images', description: "print this host's pod UUIDs or the store's image names, one a line (what the scripts ask)" },
  },
  examples: ['source <(podlog completion bash)', 'podlog completion fish > ~/.config/fish/completions/podlog.fish'],
  subcommands: Object.keys(SCRIPTS),
  run: async (inv) => {
    const list = str(inv.values, 'list');
    const [shell, ...rest] = inv.positionals;
    if (list !== undefined) {
      if (shell !== undefined) throw new PodlogError('EUSAGE', 'completion: --list takes no shell');
      if (!Object.hasOwn(LISTS, list)) throw new PodlogError('EUSAGE', `completion: --list ${JSON.stringify(list)}: pods or images`);
      const words = await LISTS[list as keyof typeof LISTS](inv);
      if (words.length > 0) out(words.join('\n'));
      return 0;
    }
    if (shell === undefined || rest.length > 0 || !Object.hasOwn(SCRIPTS, shell)) {
      throw new PodlogError('EUSAGE', `completion: ${shell === undefined ? 'name a shell' : `unknown shell ${JSON.stringify(shell)}`} (bash, zsh or fish)`);
    }
    out(SCRIPTS[shell as keyof typeof SCRIPTS](await verbSpecs()));
    return 0;
  },
};
