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

export const iso = (ms: number): string => new Date(ms).toISOString();
