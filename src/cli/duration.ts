/** Durations as rkt's flags take them: "30m", "24h", "1h30m", "500ms", "10s"; a bare number is seconds. */
import { PodlogError } from '../errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const parseDuration = (text: string, flag: string): number => {
  const parts = /^\d+(\.\d+)?$/.test(text) ? [[text, text, 's']] : [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text || !Number.isSafeInteger(Math.round(ms))) {
    throw new PodlogError('EUSAGE', `${flag}: invalid duration ${JSON.stringify(text)} (examples: 30s, 10m, 24h, 1h30m)`);
  }
  return ms;
};

/** A point in time: an ISO 8601 date, or a duration meaning "that long ago". */
export const parseTime = (text: string, flag: string, now = Date.now()): string => {
  const date = Date.parse(text);
  if (!Number.isNaN(date) && /\d{4}-\d{2}-\d{2}/.test(text)) return new Date(date).toISOString();
  return new Date(now - parseDuration(text, flag)).toISOString();
};
