/** The chart's time axis reads in the unit its span calls for, and hover titles give times as toISOString does. */
import test from 'ava';
import { iso } from '../../src/timeline/markup.js';
import { humanDuration, ticks } from '../../src/timeline/time-axis.js';

const labels = (span: number) => ticks(span).map((t) => t.label);

test('ticks: about eight, at round steps, in ms, s, min, h or d as the span calls for', (t) => {
  t.deepEqual(labels(48), ['0 ms', '10 ms', '20 ms', '30 ms', '40 ms']);
  t.deepEqual(labels(4_400), ['0 s', '1 s', '2 s', '3 s', '4 s']);
  t.deepEqual(labels(263_000), ['0 min', '1 min', '2 min', '3 min', '4 min']);
  t.deepEqual(labels(200_000), ['0 s', '30 s', '60 s', '90 s', '120 s', '150 s', '180 s']);
  t.deepEqual(labels(3 * 3_600_000), ['0 min', '30 min', '60 min', '90 min', '120 min', '150 min', '180 min']);
  t.deepEqual(labels(9 * 86_400_000), ['0 d', '2 d', '4 d', '6 d', '8 d']);
  for (const span of [1, 7, 999, 61_000, 7_200_000, 40 * 86_400_000, 900 * 86_400_000]) {
    const ts = ticks(span);
    t.true(ts.length >= 2 || span < 2, `${span}: ${ts.length} ticks`);
    t.true(ts.length <= 9, `${span}: ${ts.length} ticks`);
  }
});

test('durations in hover titles: the largest unit that fits', (t) => {
  t.is(humanDuration(0), '0 ms');
  t.is(humanDuration(48), '48 ms');
  t.is(humanDuration(12_345), '12.3 s');
  t.is(humanDuration(3_600_000), '1 h');
  t.is(humanDuration(5_400_000), '1.5 h');
});

test('iso writes what toISOString writes, across minutes, days and the epoch', (t) => {
  for (let ms = 1_733_000_000_000 - 125_000; ms < 1_733_000_000_000 + 125_000; ms += 997) t.is(iso(ms), new Date(ms).toISOString());
  for (const ms of [0, 59_999, 60_000, 86_399_999, Date.UTC(2026, 11, 31, 23, 59, 59, 999)]) t.is(iso(ms), new Date(ms).toISOString());
});
