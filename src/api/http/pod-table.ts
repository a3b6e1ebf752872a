/**
 * The pods the API serves, in memory: started from the saved pod list projection (its rows and its
 * checkpoint), then folded forward by every event the service's tail reads, so that a request reads a
 * map and never the log. Nothing is saved: the service opens the log read-only, and a projection it
 * cannot write is caught up in its memory instead (the next `list` saves it as usual).
 *
 * Each pod's listing (its JSON and its serialisation, its user metadata, its host) is made once per
 * change of the pod, not per request: GET /v1/pods of 10,000 pods is then a filter and a copy.
 */
import { NO_USER_METADATA, podUserMetadata, recordedUserMetadata, type PodUserMetadata } from '../../cli/pods.js';
import { ownsPod } from '../../engine/hosts.js';
import { foldingFrom, foldOnto, listRowOf, POD_LIST, POD_LIST_SCHEMA, rowOfFolded, type FoldedPod, type PodListRow, type PodRow } from '../../engine/pod-list.js';
import { POD_STREAM_PREFIX, podStream, uuidOfStream } from '../../engine/streams.js';
import type { EventStore, RecordedEvent } from '../../store/port.js';
import { podListJson, type PodListJson } from '../pod-json.js';
import { whenReachable } from '../subscribe.js';

/** A listed pod, ready to be filtered and served. */
export interface PodEntry {
  row: PodListRow;
  json: PodListJson;
  /** `json` serialised and encoded: a list response concatenates these. */
  bytes: Buffer;
  meta: PodUserMetadata;
  /** The host that prepared it; absent for pods from before the log recorded it. */
  host: string | undefined;
}

/** This host: where a pod's files are when the log does not hold what is asked of it. */
export interface LocalHost {
  dataDir: string;
  hostId: string;
}

export class PodTable {
  readonly pods = new Map<string, PodEntry>();
  /** Whole snapshots of the pods folded since the start (and those asked for whole). */
  private readonly folded = new Map<string, FoldedPod>();
  /** User metadata read from pod manifests on disk, for pods whose history does not hold it. */
  private readonly diskMeta = new Map<string, PodUserMetadata>();

  private constructor(
    private readonly store: EventStore,
    private readonly local: LocalHost,
    /** Events up to this position are folded into the table. */
    private checkpoint: number,
    /** Whether the saved rows are of this code's machine (else every pod is folded from its stream). */
    private readonly savedRowsUsable: boolean,
  ) {}

  static async load(store: EventStore, local: LocalHost): Promise<PodTable> {
    const saved = await store.loadProjection<PodListRow>(POD_LIST);
    const usable = saved.schema === POD_LIST_SCHEMA;
    const table = new PodTable(store, local, usable ? saved.checkpoint : 0, usable);
    if (usable) for (const row of saved.rows.values()) table.list(row);
    return table;
  }

  /**
   * Folds the pod events of a batch read in log order; those the table holds already are skipped. The
   * reads it needs wait out a store that cannot be reached (a PostgreSQL restart), and the table moves past
   * the batch only once they are done, so the service neither dies of a restart nor skips the batch.
   */
  async apply(events: RecordedEvent[], signal?: AbortSignal): Promise<void> {
    const fresh = events.filter((e) => e.position > this.checkpoint && e.stream.startsWith(POD_STREAM_PREFIX) && e.version > this.versionOf(uuidOfStream(e.stream)));
    const firsts = new Map<string, number>();
    for (const e of fresh) if (!firsts.has(uuidOfStream(e.stream))) firsts.set(uuidOfStream(e.stream), e.version - 1);
    await whenReachable(() => this.foldTo(firsts), signal);
    if (events.length > 0) this.checkpoint = Math.max(this.checkpoint, events[events.length - 1]!.position);
    const changed = new Set<string>();
    for (const e of fresh) if (foldOnto(this.folded.get(uuidOfStream(e.stream))!, e)) changed.add(uuidOfStream(e.stream));
    for (const uuid of changed) {
      const row = rowOfFolded(uuid, this.folded.get(uuid)!);
      if (row === undefined) {
        this.pods.delete(uuid);
        this.folded.delete(uuid);
        this.diskMeta.delete(uuid);
      } else {
        this.list(listRowOf(row));
      }
    }
  }

  /** A listed pod whole (its whole context), as of the table's position. */
  async whole(uuid: string): Promise<FoldedPod | undefined> {
    const entry = this.pods.get(uuid);
    if (entry === undefined) return undefined;
    await this.foldTo(new Map([[uuid, entry.row.version]]));
    return this.folded.get(uuid);
  }

  private versionOf(uuid: string): number {
    return this.folded.get(uuid)?.version ?? this.pods.get(uuid)?.row.version ?? 0;
  }

  /**
   * Makes sure each pod has a whole snapshot in memory, at least at the given version: its saved whole
   * row where that is not past it (one query for all of them), then its events up to that version.
   */
  private async foldTo(versions: Map<string, number>): Promise<void> {
    const missing = [...versions.keys()].filter((uuid) => !this.folded.has(uuid));
    if (missing.length === 0) return;
    const listed = missing.filter((uuid) => this.pods.has(uuid));
    const saved = this.savedRowsUsable && listed.length > 0 ? await this.store.loadProjectionRows<PodRow>(POD_LIST, listed) : new Map<string, PodRow>();
    await Promise.all(
      missing.map(async (uuid) => {
        const target = versions.get(uuid)!;
        const row = saved.get(uuid);
        const start = foldingFrom(uuid, row !== undefined && row.version <= target ? row : undefined);
        if (start.broken === undefined && start.version < target) {
          for (const e of await this.store.readStream(podStream(uuid), { from: start.version + 1, to: target })) foldOnto(start, e);
        }
        // A request and the tail may fold the same pod at once: the first one in is kept.
        if (!this.folded.has(uuid)) this.folded.set(uuid, start);
      }),
    );
  }

  private list(row: PodListRow): void {
    const meta = recordedUserMetadata(row.context) ?? (ownsPod(this.local.hostId, row.context) ? this.metadataOnDisk(row.uuid) : undefined) ?? NO_USER_METADATA;
    const json = podListJson(row, meta);
    this.pods.set(row.uuid, { row, meta, host: row.context.host, json, bytes: Buffer.from(JSON.stringify(json)) });
  }

  /** A pod from before the log held user metadata has it in its manifest, on the host that prepared it. */
  private metadataOnDisk(uuid: string): PodUserMetadata | undefined {
    let meta = this.diskMeta.get(uuid);
    if (meta === undefined) {
      meta = podUserMetadata(this.local.dataDir, uuid);
      if (meta !== undefined) this.diskMeta.set(uuid, meta);
    }
    return meta;
  }
}
