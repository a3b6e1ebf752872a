/**
 * A host's own part of a log shared by many hosts. Pods are the fleet's: their streams and the pod list
 * are shared, and each pod records its host. An image store is not: its files are on one host's disk, so
 * its streams (`image-…`, `tree-…`, `layer-…`) and its index would collide between hosts that fetch the
 * same image. On a shared log each host's image store therefore sees the log through this view, which
 * keeps those streams and projections under `host/ID/` and hides other hosts' ones; every other stream
 * (the pods' `ImageRendered`, which the image index reads) is seen as it is.
 *
 * On the embedded SQLite log (one host) nothing is scoped: `scopedToHost` returns the store itself.
 */
import type {
  AppendResult,
  CompactedStream,
  EventStore,
  ExpectedVersion,
  NewEvent,
  ProjectionState,
  ProjectionUpdate,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamAppend,
  StreamCompaction,
  StreamInfo,
  TimedEvent,
} from './port.js';

/** Whether a log may be shared by several hosts (the embedded SQLite log is one host's). */
export const isSharedStore = (store: EventStore): boolean => store.kind === 'postgres';

/** What every host's own part of a shared log is under. */
export const HOST_SCOPE_PREFIX = 'host/';
export const hostScope = (hostId: string): string => `${HOST_SCOPE_PREFIX}${hostId}/`;

export interface ScopeRules {
  /** Streams whose names start with one of these are the host's own. */
  streamPrefixes: readonly string[];
  /** Projections with these names are the host's own. */
  projections: readonly string[];
}

/** A stream's name in a shared log: under `hostId`'s scope where `rules` make it the host's own, else as it is. */
export const streamInScope = (rules: ScopeRules, hostId: string, stream: string): string =>
  rules.streamPrefixes.some((p) => stream.startsWith(p)) ? `${hostScope(hostId)}${stream}` : stream;

class HostScopedStore implements EventStore {
  readonly kind: string;
  readonly location: string;
  private readonly scope: string;

  constructor(
    private readonly inner: EventStore,
    private readonly hostId: string,
    private readonly rules: ScopeRules,
  ) {
    this.kind = inner.kind;
    this.location = inner.location;
    this.scope = hostScope(hostId);
  }

  /** A stream's name in the log, or a prefix's: a prefix of the host's own streams is scoped as they are. */
  private scoped = (stream: string): string => streamInScope(this.rules, this.hostId, stream);
  private projection = (name: string): string => (this.rules.projections.includes(name) ? `${this.scope}${name}` : name);

  /** A stream of the shared log as this host sees it: its own unscoped, another host's hidden (undefined). */
  private seen = (stream: string): string | undefined => {
    if (stream.startsWith(this.scope)) return stream.slice(this.scope.length);
    return stream.startsWith(HOST_SCOPE_PREFIX) ? undefined : stream;
  };

  private unscoped = <E extends { stream: string }>(events: E[]): E[] => {
    const kept: E[] = [];
    for (const e of events) {
      const stream = this.seen(e.stream);
      if (stream !== undefined) kept.push(stream === e.stream ? e : { ...e, stream });
    }
    return kept;
  };

  append(stream: string, events: NewEvent[], expected: ExpectedVersion): Promise<AppendResult> {
    return this.inner.append(this.scoped(stream), events, expected);
  }

  appendMany(appends: StreamAppend[]): Promise<AppendResult[]> {
    return this.inner.appendMany(appends.map((a) => ({ ...a, stream: this.scoped(a.stream) })));
  }

  async readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    return this.unscoped(await this.inner.readStream(this.scoped(stream), options));
  }

  readAll(options: ReadAllOptions & { metadata: 'time' }): Promise<TimedEvent[]>;
  readAll(options?: ReadAllOptions & { metadata?: 'all' }): Promise<RecordedEvent[]>;
  async readAll(options: ReadAllOptions = {}): Promise<Array<RecordedEvent | TimedEvent>> {
    const { streams, streamPrefix } = options;
    const scopedOptions: ReadAllOptions = {
      ...options,
      ...(streams === undefined ? {} : { streams: streams.map(this.scoped) }),
      ...(streamPrefix === undefined ? {} : { streamPrefix: this.scoped(streamPrefix) }),
    };
    // Other hosts' events are dropped after the read: read on until `limit` are kept or the log ends, so
    // that a caller reading "fewer than limit" as "the end" is right.
    const limit = options.limit ?? 1000;
    const kept: Array<RecordedEvent | TimedEvent> = [];
    for (let after = options.after ?? 0; ; ) {
      const want = limit - kept.length;
      const read = (await this.inner.readAll({ ...scopedOptions, after, limit: want } as ReadAllOptions & { metadata?: 'all' })) as Array<RecordedEvent | TimedEvent>;
      kept.push(...this.unscoped(read));
      if (read.length < want || kept.length >= limit) return kept;
      after = read[read.length - 1]!.position;
    }
  }

  async listStreams(prefix?: string): Promise<StreamInfo[]> {
    return this.unscoped(await this.inner.listStreams(prefix === undefined ? undefined : this.scoped(prefix))).sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0));
  }

  streamVersion(stream: string): Promise<number> {
    return this.inner.streamVersion(this.scoped(stream));
  }

  headPosition(): Promise<number> {
    return this.inner.headPosition();
  }

  waitForChange(after: number, signal: AbortSignal): Promise<void> {
    return this.inner.waitForChange(after, signal);
  }

  loadProjection<Row>(name: string): Promise<ProjectionState<Row>> {
    return this.inner.loadProjection<Row>(this.projection(name));
  }

  loadProjectionRow<Row>(name: string, key: string): Promise<{ schema: string; row: Row } | undefined> {
    return this.inner.loadProjectionRow<Row>(this.projection(name), key);
  }

  loadProjectionRows<Row>(name: string, keys: string[]): Promise<Map<string, Row>> {
    return this.inner.loadProjectionRows<Row>(this.projection(name), keys);
  }

  saveProjection<Row>(update: ProjectionUpdate<Row>): Promise<boolean> {
    return this.inner.saveProjection({ ...update, name: this.projection(update.name) });
  }

  async compactStreams(compactions: StreamCompaction[]): Promise<CompactedStream[]> {
    return this.unscoped(await this.inner.compactStreams(compactions.map((c) => ({ ...c, stream: this.scoped(c.stream) }))));
  }

  reclaimSpace(): Promise<{ before: number; after: number }> {
    return this.inner.reclaimSpace();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The host's view of `store` under `rules` on a shared log; the store itself on a one-host log. */
export const scopedToHost = (store: EventStore, hostId: string, rules: ScopeRules): EventStore =>
  isSharedStore(store) ? new HostScopedStore(store, hostId, rules) : store;
