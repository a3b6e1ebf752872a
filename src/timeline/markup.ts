/** Text from the log in SVG and HTML: app names, messages and commands are anyone's, so none of it is markup. */
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * XML-escapes text for element content and quoted attribute values alike; control characters, which
 * XML 1.0 does not allow at all (an SVG holding one does not open), become U+FFFD.
 */
export const esc = (text: string): string =>
  // Most text needs nothing: one test, instead of two replacements, for each of a large chart's strings.
  /[&<>"'\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/.test(text)
    ? text.replace(/[&<>"']/g, (c) => ENTITIES[c]!).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, '\ufffd')
    : text;

const MINUTE = 60_000;
const minutes = new Map<number, string>();

/**
 * A time as toISOString writes it. A chart of 10,000 pods writes 150,000 of them in its hover titles, and
 * toISOString was a tenth of its time: the date and minute are written once a minute, the rest by hand.
 */
export const iso = (ms: number): string => {
  const minute = Math.floor(ms / MINUTE) * MINUTE;
  let prefix = minutes.get(minute);
  if (prefix === undefined) minutes.set(minute, (prefix = new Date(minute).toISOString().slice(0, 17)));
  const rest = ms - minute;
  return `${prefix}${String(Math.floor(rest / 1000)).padStart(2, '0')}.${String(rest % 1000).padStart(3, '0')}Z`;
};
