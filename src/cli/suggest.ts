/** "Did you mean …?" for a mistyped flag or verb: the closest known name, if it is close enough. */

/** Edit distance (insertions, deletions, substitutions, and a swap of two neighbours counted once). */
const distance = (a: string, b: string): number => {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
};

/**
 * The known name closest to `given`, when it is within a third of its length (at least 1, at most 3
 * edits) or `given` is a prefix of only it: `--volum` finds `--volume`, `--xyz` finds nothing.
 */
export const closest = (given: string, known: Iterable<string>): string | undefined => {
  const names = [...known];
  const prefixed = names.filter((n) => given.length >= 2 && n.startsWith(given));
  if (prefixed.length === 1) return prefixed[0];
  const limit = Math.min(3, Math.max(1, Math.floor(given.length / 3)));
  let best: { name: string; d: number } | undefined;
  for (const name of names) {
    const d = distance(given, name);
    if (d <= limit && (best === undefined || d < best.d)) best = { name, d };
  }
  return best?.name;
};

/** ` (did you mean --volume?)`, or nothing: for the end of an "unknown flag" message. */
export const didYouMeanFlag = (flag: string, known: Iterable<string>): string => {
  const name = closest(flag.replace(/^--?/, ''), known);
  return name === undefined ? '' : ` (did you mean --${name}?)`;
};

