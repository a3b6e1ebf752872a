import { bindHostId } from '../../config.js';
import { commandContext } from '../../events/metadata.js';
import { PodlogError } from '../../errors.js';
import { label } from '../../images/aci-manifest.js';
import type { ImageRecord } from '../../images/index-projection.js';
import { withPrepareLock } from '../../images/locks.js';
import { collectGarbage, exportImage, extractToDir, removeImages, renderToDir, verifyImage } from '../../images/maintenance.js';
import { findByName } from '../../images/resolve.js';
import { Store } from '../../images/store.js';
import { openStore, type StoreAccess } from '../../store/open.js';
import { out, str, type Command, type Invocation, type Values } from '../command.js';
import { parseDuration } from '../duration.js';
import { table } from '../table.js';

/** Runs `fn` with the image store of the command's data dir and host, closing the event log after. */
export const withImageStore = async <T>(inv: Invocation, fn: (images: Store) => Promise<T>, access: StoreAccess = 'write'): Promise<T> => {
  const events = await openStore(inv.dir, { access, url: inv.store });
  if (access === 'write') bindHostId(inv.dir, inv.hostId);
  try {
    return await fn(new Store(inv.dir, events, commandContext(undefined, inv.hostId)));
  } finally {
    await events.close();
  }
};

/** rkt shows `sha512-` and 12 hex digits unless --full. */
const shortId = (id: string, full: boolean): string => (full ? id : id.slice(0, 'sha512-'.length + 12));

const size = (bytes: number): string => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(1)}${units[u]}`;
};

/** What the image takes in the store and, when the log recorded it, what it unpacks to: a 2 MiB layer
 * can hold 2 GiB of zeros. */
const sizes = (i: ImageRecord): string =>
  `${size(i.storedSize ?? i.size)}${i.unpackedSize === undefined ? '' : ` (${size(i.unpackedSize)} unpacked)`}`;

const nameOf = (i: ImageRecord): string => {
  const version = label(i.labels, 'version');
  return version === undefined ? i.name : `${i.name}:${version}`;
};

const list = async (images: Store, values: Values): Promise<number> => {
  const format = str(values, 'format') ?? 'table';
  if (format !== 'table' && format !== 'json') throw new PodlogError('EUSAGE', `--format: ${JSON.stringify(format)} is not table or json`);
  const index = await images.index();
  // One row per image, in the order they were imported, named by its newest name.
  const rows = [...index.images.values()].sort((a, b) => a.position - b.position);
  if (format === 'json') {
    // name, labels and source are the image's newest name's (what NAME shows); `names` has every one, oldest first.
    // rkt's `latest`: the image the name without a version resolves to, the newest import or tag of that name.
    out(JSON.stringify(rows.map((i) => ({
      id: i.id, name: i.name, labels: i.labels, format: i.format, size: i.size, storedSize: i.storedSize, unpackedSize: i.unpackedSize, importTime: i.importedAt, lastUsed: i.lastUsedAt ?? i.importedAt,
      latest: findByName(index, i.name, [])?.id === i.id, source: i.source, names: i.names.map(({ name, labels, source }) => ({ name, labels, source })),
      ...(i.verification ? { verification: i.verification } : {}),
    }))));
    return 0;
  }
  const full = values.full === true;
  const legend = values['no-legend'] === true ? null : ['ID', 'NAME', 'SIZE', 'IMPORT TIME', 'LAST USED'];
  const lines = rows.map((i) => [shortId(i.id, full), nameOf(i), sizes(i), i.importedAt, i.lastUsedAt ?? i.importedAt]);
  if (lines.length > 0 || legend) out(table(legend, lines));
  return 0;
};

interface Subcommand {
  usage: string;
  /** How many arguments it takes: [least, most]. */
  arity: [number, number];
  /** Only reads the store: creates nothing (a data dir without a log holds no images). */
  reads?: true;
  run(images: Store, args: string[], values: Values, dir: string): Promise<number>;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  list: { usage: 'list [--format=table|json] [--full] [--no-legend]', arity: [0, 0], reads: true, run: (images, _args, values) => list(images, values) },
  rm: {
    usage: 'rm ID-OR-NAME...',
    arity: [1, Infinity],
    async run(images, args) {
      const removed = await removeImages(images, args);
      for (const i of removed) out(`removed image ${i.id} (${nameOf(i)})`);
      out(`rm: ${removed.length} image(s) successfully removed`);
      return 0;
    },
  },
  gc: {
    usage: 'gc [--grace-period=24h]',
    arity: [0, 0],
    async run(images, _args, values) {
      const r = await collectGarbage(images, { gracePeriodMs: parseDuration(str(values, 'grace-period')!, '--grace-period') });
      for (const t of r.trees) out(`removed tree ${t}`);
      for (const i of r.images) out(`removed image ${i.id} (${nameOf(i)})`);
      for (const k of r.layers) out(`removed layer ${k}`);
      for (const l of r.leftovers) out(`removed leftover ${l}`);
      if (r.failures.length > 0) throw new PodlogError('EIMAGE', `${r.failures.join('\n')}\ngc: ${r.failures.length} removal(s) failed`);
      return 0;
    },
  },
  render: {
    usage: 'render ID DIR',
    arity: [2, 2],
    async run(images, [id, target], _values, dir) {
      await withPrepareLock(dir, () => renderToDir(images, id!, target!));
      return 0;
    },
  },
  extract: {
    usage: 'extract ID DIR',
    arity: [2, 2],
    reads: true,
    async run(images, [id, target], _values, dir) {
      // Found before the lock is taken, which creates its directory.
      await images.record(id!);
      await withPrepareLock(dir, () => extractToDir(images, id!, target!));
      return 0;
    },
  },
  export: {
    usage: 'export [--overwrite] ID FILE.aci',
    arity: [2, 2],
    reads: true,
    async run(images, [id, file], values, dir) {
      await images.record(id!);
      await withPrepareLock(dir, () => exportImage(images, id!, file!, { overwrite: values.overwrite === true }));
      return 0;
    },
  },
  verify: {
    usage: 'verify ID',
    arity: [1, 1],
    async run(images, [id]) {
      const r = await verifyImage(images, id!);
      const said = { ok: 'ok', rendered: 'was missing: rendered', repaired: 'was damaged: repaired' }[r.outcome];
      out(`image ${r.image.id}: tree ${r.treeStoreId} ${said}`);
      return 0;
    },
  },
  'cat-manifest': {
    usage: 'cat-manifest ID',
    arity: [1, 1],
    reads: true,
    async run(images, [id]) {
      out(JSON.stringify(await images.manifest(id!), null, 2));
      return 0;
    },
  },
};

export const image: Command = {
  usage: Object.values(SUBCOMMANDS).map((c) => `podlog image ${c.usage}`).join('\n'),
  options: {
    format: { type: 'string', value: 'table|json', description: 'list: how to print the images', shownDefault: 'table' },
    full: { type: 'boolean', default: false, description: 'list: whole image ids, and more columns' },
    'no-legend': { type: 'boolean', default: false, description: 'list: no header line' },
    'grace-period': { type: 'string', default: '24h', value: 'DURATION', description: 'gc: keep images used within DURATION' },
    overwrite: { type: 'boolean', default: false, description: 'export: replace FILE.aci if it exists' },
  },
  examples: ['podlog image list', 'podlog image rm busybox', 'podlog image gc --grace-period=0s'],
  subcommands: Object.keys(SUBCOMMANDS),
  operand: 'image',
  run: (inv) => {
    const { values, positionals, dir } = inv;
    const [sub, ...args] = positionals;
    const command = sub !== undefined && Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
    if (!command) {
      throw new PodlogError('EUSAGE', `image: ${sub === undefined ? 'give a subcommand' : `unknown subcommand ${JSON.stringify(sub)}`}; see podlog image --help`);
    }
    if (args.length < command.arity[0] || args.length > command.arity[1]) throw new PodlogError('EUSAGE', `usage: podlog image ${command.usage}`);
    return withImageStore(inv, (images) => command.run(images, args, values, dir), command.reads ? 'read' : 'write');
  },
};
