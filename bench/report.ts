/** How every benchmark prints a figure: the value, its target, whether it is met, and its reference. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export const report = (name: string, value: number, o: { target: string; ok: boolean; reference?: string }): void => {
  const v = value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
  console.log(`${o.ok ? 'ok  ' : 'MISS'} ${name}: ${v} (target ${o.target})${o.reference ? `  [${o.reference}]` : ''}`);
};
