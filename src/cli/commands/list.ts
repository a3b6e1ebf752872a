import { RKT_STATE_NAMES } from '../../../machines/pod.js';
import { podListJson } from '../../api/pod-json.js';
import { catchUpPodList, type PodListRow } from '../../engine/pod-list.js';
import { reconcilePods } from '../../stage0/observe.js';
import { out, str, type Command } from '../command.js';
import { matchesFilters, NO_USER_METADATA, parsePodFilters, podUserMetadata, recordedUserMetadata, withStage0 } from '../pods.js';
import { table } from '../table.js';
import { networksText } from '../../stage0/pod-networks.js';
import { PodlogError } from '../../errors.js';
import { ownsPod } from '../../engine/hosts.js';

const ago = (iso: string | undefined, now: number): string => {
  if (iso === undefined) return '';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} seconds ago`;
  if (s < 3600) return `${Math.round(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.round(s / 3600)} hours ago`;
  return `${Math.round(s / 86400)} days ago`;
};

export const list: Command = {
  usage: 'podlog list [FLAGS]',
  options: {
    full: { type: 'boolean', default: false, description: 'whole UUIDs and image ids, and times as dates' },
    'all-hosts': { type: 'boolean', default: false, description: "every host's pods on a shared log, with a HOST column" },
    'no-legend': { type: 'boolean', default: false, description: 'no header line' },
    format: { type: 'string', value: 'json', description: 'print JSON instead of a table' },
    filter: { type: 'string', multiple: true, value: 'label=KEY[=VALUE]|annotation=KEY[=VALUE]', description: 'only pods with this label or annotation' },
  },
  examples: ['podlog list', 'podlog list --format=json --filter=label=app=web'],
  run: (inv) =>
    withStage0(inv, async (s) => {
      const format = str(inv.values, 'format');
      if (format !== undefined && format !== 'json') throw new PodlogError('EUSAGE', `--format: unknown format ${JSON.stringify(format)} (json)`);
      const filters = parsePodFilters((inv.values.filter as string[] | undefined) ?? []);
      let rows = await catchUpPodList(s.store);
      // Exits nobody waited for and intents whose process died are made true before they are shown.
      const { changed, broken } = await reconcilePods(s.engine, s.effects, s.dataDir, rows.values());
      if (changed > 0) rows = await catchUpPodList(s.store);
      // A broken pod is listed as last known and named on stderr; the others are listed as usual.
      for (const b of broken) process.stderr.write(`podlog: list: pod ${b.uuid}: ${b.message}\n`);
      // ISO 8601 times in UTC sort as strings; localeCompare's collation cost 30 ms for 5,000 pods.
      const created = (r: PodListRow) => r.context.createdAt ?? '';
      // Annotations and labels are in the log since PrepareRequested schema 4; an older pod's are read from
      // its manifest, only when they are asked for.
      const wanted = format === 'json' || filters.length > 0;
      const allHosts = inv.values['all-hosts'] === true;
      const pods = [...rows.values()]
        .filter((row) => allHosts || ownsPod(inv.hostId, row.context))
        .sort((a, b) => (created(a) < created(b) ? -1 : created(a) > created(b) ? 1 : 0))
        .map((row) => ({ row, meta: wanted ? (recordedUserMetadata(row.context) ?? podUserMetadata(s.dataDir, row.uuid) ?? NO_USER_METADATA) : undefined }))
        .filter(({ meta }) => meta === undefined || matchesFilters(meta, filters));
      if (format === 'json') {
        out(JSON.stringify(pods.map(({ row, meta }) => podListJson(row, meta!))));
        return 0;
      }
      const full = inv.values.full === true;
      const now = Date.now();
      const lines = pods.flatMap(({ row: r }) =>
        (r.context.apps.length ? r.context.apps : [{ name: '-', image: '-' }]).map((a, i) => [
          i === 0 ? (full ? r.uuid : r.uuid.slice(0, 8)) : '',
          ...(allHosts ? [i === 0 ? (r.context.host ?? '') : ''] : []),
          'state' in a && a.state !== undefined ? `${a.name} (${a.state})` : a.name,
          ...(full ? [(a as { imageId?: string }).imageId ?? a.image] : []),
          (a as { imageName?: string }).imageName ?? '',
          i === 0 ? RKT_STATE_NAMES[r.state] : '',
          i === 0 ? (full ? (r.context.createdAt ?? '') : ago(r.context.createdAt, now)) : '',
          i === 0 ? (full ? (r.context.startedAt ?? '') : ago(r.context.startedAt, now)) : '',
          i === 0 ? networksText(r.context.networks) : '',
        ]),
      );
      const header = ['UUID', ...(allHosts ? ['HOST'] : []), 'APP', ...(full ? ['IMAGE ID'] : []), 'IMAGE NAME', 'STATE', 'CREATED', 'STARTED', 'NETWORKS'];
      if (lines.length > 0 || inv.values['no-legend'] !== true) out(table(inv.values['no-legend'] === true ? null : header, lines));
      return 0;
    }, { create: false }),
};
