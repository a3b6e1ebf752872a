/**
 * The progress bar of long imports and renders: bytes done, total and rate, redrawn in place on
 * standard error at most ten times a second, only when standard error is a terminal and the user did
 * not ask for --quiet. Otherwise every call does nothing, so output is only the command's result.
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
  /** Ends the phase and erases the bar. */
  done(): void;
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
    const seconds = Math.max((now - this.began) / 1000, 0.001);
    const rate = `${mb(this.bytes / seconds)}/s`;
    let line: string;
    if (this.total) {
      const width = 30;
      const filled = Math.min(width, Math.round((this.bytes / this.total) * width));
      line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${mb(this.bytes)} / ${mb(this.total)}  ${rate}`;
    } else if (this.bytes > 0) {
      line = `${this.label} ${mb(this.bytes)}  ${rate}`;
    } else {
      line = `${this.label}...`;
    }
    this.out.write(`\r\x1b[K${line.slice(0, (this.out.columns || 80) - 1)}`);
  }

  done(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.out.write('\r\x1b[K');
  }
}

export const progressFor = (quiet: boolean, out: NodeJS.WriteStream = process.stderr): Progress => (quiet || !out.isTTY ? SILENT : new Bar(out));
