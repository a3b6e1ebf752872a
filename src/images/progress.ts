/**
 * The progress bar of long imports and renders: bytes done, total and rate, redrawn in place on
 * standard error at most ten times a second, only when standard error is a terminal and the user did
 * not ask for --quiet. Otherwise every call does nothing, so output is only the command's result.
 * Transfers that run at once (a pull's layers) get a board of such lines, one each.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';

export interface Progress {
  /** A new phase; `total` bytes when known. */
  start(label: string, total?: number): void;
  add(bytes: number): void;
  /** Sets the bytes done so far (for work measured by polling, such as a file being copied). */
  set(bytes: number): void;
  /** Sets the bytes done from `measure` ten times a second until the phase is done; never backwards. */
  poll(measure: () => number): void;
  /** Ends the phase and erases the bar; `ok` false: it failed (a board's line says so). */
  done(ok?: boolean): void;
}

const SILENT: Progress = { start() {}, add() {}, set() {}, poll() {}, done() {} };

/**
 * How far this process (the addon, on its own threads) has read `path`: the offset of the slowest of
 * its open descriptors of that file, from /proc/self/fdinfo; 0 when none is open. Work done in Rust is
 * measured without the addon having to report it.
 */
export const readPosition = (path: string): number => {
  const target = resolve(path);
  let pos = Infinity;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== target) continue;
      const m = /^pos:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m) pos = Math.min(pos, Number(m[1]));
    } catch {
      // Closed meanwhile.
    }
  }
  return pos === Infinity ? 0 : pos;
};

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

/** One line of progress: the label, a bar when the total is known, bytes and rate since `began`. */
const line = (label: string, total: number | undefined, bytes: number, began: number, now: number): string => {
  const seconds = Math.max((now - began) / 1000, 0.001);
  const rate = `${mb(bytes / seconds)}/s`;
  if (total) {
    const width = 30;
    const filled = Math.min(width, Math.round((bytes / total) * width));
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${mb(bytes)} / ${mb(total)}  ${rate}`;
  }
  return bytes > 0 ? `${label} ${mb(bytes)}  ${rate}` : `${label}...`;
};

class Bar implements Progress {
  private label = '';
  private total: number | undefined;
  private bytes = 0;
  private began = 0;
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly out: NodeJS.WriteStream) {}

  start(label: string, total?: number): void {
    this.label = label;
    this.total = total;
    this.bytes = 0;
    this.began = Date.now();
    this.drawn = 0;
    this.draw(true);
  }

  add(bytes: number): void {
    this.set(this.bytes + bytes);
  }

  set(bytes: number): void {
    this.bytes = bytes;
    this.draw(false);
  }

  poll(measure: () => number): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      try {
        this.set(Math.max(this.bytes, measure()));
      } catch {
        // What is measured may not exist yet, or any more.
      }
    }, 100);
  }

  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.drawn < 100) return;
    this.drawn = now;
    this.out.write(`\r\x1b[K${line(this.label, this.total, this.bytes, this.began, now).slice(0, (this.out.columns || 80) - 1)}`);
  }

  done(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.out.write('\r\x1b[K');
  }
}

export const progressFor = (quiet: boolean, out: NodeJS.WriteStream = process.stderr): Progress => (quiet || !out.isTTY ? SILENT : new Bar(out));

/** Several transfers at once (a pull's layers): a line each, all redrawn in place; a finished one stays, marked done or failed. */
export interface Board {
  /** The progress of one more transfer, its line added at its `start`. */
  line(): Progress;
}

interface Row {
  label: string;
  total: number | undefined;
  bytes: number;
  began: number;
  finished?: 'done' | 'failed';
}

class Lines implements Board {
  private readonly rows: Row[] = [];
  /** Lines drawn so far, which the next drawing moves back over. */
  private shown = 0;
  private drawn = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.drawn < 100) return;
    this.drawn = now;
    const width = (this.out.columns || 80) - 1;
    const text = this.rows.map((r) => `\r\x1b[K${(r.finished ? `${r.label} ${r.finished}, ${mb(r.bytes)}` : line(r.label, r.total, r.bytes, r.began, now)).slice(0, width)}\n`);
    this.out.write(`${this.shown > 0 ? `\x1b[${this.shown}A` : ''}${text.join('')}`);
    this.shown = this.rows.length;
  }

  line(): Progress {
    let row: Row | undefined;
    let timer: NodeJS.Timeout | undefined;
    const set = (bytes: number): void => {
      if (!row) return;
      row.bytes = bytes;
      this.draw(false);
    };
    return {
      start: (label, total) => {
        row = { label, total, bytes: 0, began: Date.now() };
        this.rows.push(row);
        this.draw(true);
      },
      add: (bytes) => set((row?.bytes ?? 0) + bytes),
      set,
      poll: (measure) => {
        clearInterval(timer);
        timer = setInterval(() => set(Math.max(row?.bytes ?? 0, measure())), 100);
      },
      done: (ok = true) => {
        clearInterval(timer);
        if (!row) return;
        row.finished = ok ? 'done' : 'failed';
        this.draw(true);
      },
    };
  }
}

export const boardFor = (quiet: boolean, out: NodeJS.WriteStream = process.stderr): Board => (quiet || !out.isTTY ? { line: () => SILENT } : new Lines(out));
