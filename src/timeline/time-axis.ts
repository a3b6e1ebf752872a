/**
 * A time axis a person reads: ticks at round steps in the unit the span calls for (ms, s, min, h, d),
 * about eight of them whatever the span, labelled from the timeline's start.
 */

const UNITS = [
  { unit: 'd', ms: 86_400_000 },
  { unit: 'h', ms: 3_600_000 },
  { unit: 'min', ms: 60_000 },
  { unit: 's', ms: 1000 },
  { unit: 'ms', ms: 1 },
] as const;

/** Round steps, each in the largest unit it is a whole number of (so that its labels are too). */
const STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500,
  1000, 2000, 5000, 10_000, 15_000, 30_000,
  60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
  3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000,
  86_400_000, 172_800_000, 604_800_000, 1_209_600_000, 2_592_000_000,
];

const WANTED_TICKS = 8;

export interface Tick {
  /** ms after the start. */
  offset: number;
  label: string;
}

/** A duration in the largest unit it is a whole number of at `step` resolution: "250 ms", "1.5 s", "3 h". */
export const formatDuration = (ms: number, step = ms): string => {
  const { unit, ms: size } = UNITS.find((u) => step >= u.ms && step % u.ms === 0) ?? UNITS[UNITS.length - 1]!;
  const value = ms / size;
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
};

/** A span's most readable unit for a figure ("12.3 s", "4.0 min"), for hover titles. */
export const humanDuration = (ms: number): string => {
  const { unit, ms: size } = UNITS.find((u) => ms >= u.ms) ?? UNITS[UNITS.length - 1]!;
  const value = ms / size;
  return `${size === 1 || Number.isInteger(value) ? Math.round(value) : value.toFixed(1)} ${unit}`;
};

/** The smallest round step giving at most WANTED_TICKS ticks over `span` ms. */
export const tickStep = (span: number): number => STEPS.find((s) => span / s <= WANTED_TICKS) ?? STEPS[STEPS.length - 1]! * Math.ceil(span / WANTED_TICKS / STEPS[STEPS.length - 1]!);

export const ticks = (span: number): Tick[] => {
  const step = tickStep(span);
  const out: Tick[] = [];
  for (let offset = 0; offset <= span; offset += step) out.push({ offset, label: formatDuration(offset, step) });
  return out;
};
