/**
 * A proxy file embeds berth's model of it as comment lines (`# berth-state: <json chunk>`), so berth
 * reads back exactly what it wrote, at any size, atomically with the config itself.
 */
export const STATE_PREFIX = '# berth-state: ';
/**
 * Characters of JSON per state line. nginx refuses any line longer than its 4 KiB read buffer (even a
 * comment: "too long parameter"), so the model is written as many short ASCII lines.
 */
const STATE_CHUNK = 1024;

/** The model as comment lines of at most STATE_CHUNK ASCII characters each (non-ASCII is \u-escaped, so no line splits a character). */
export function stateLines(model: unknown): string[] {
  const json = JSON.stringify(model).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const lines: string[] = [];
  for (let i = 0; i < json.length; i += STATE_CHUNK) lines.push(STATE_PREFIX + json.slice(i, i + STATE_CHUNK));
  return lines;
}

/** The JSON model of a file's state lines (each at the start of a line), or undefined when it has none or they do not parse. */
export function readState(text: string): unknown {
  const chunks: string[] = [];
  let at = text.indexOf(STATE_PREFIX);
  while (at !== -1) {
    if (at === 0 || text[at - 1] === '\n') {
      const end = text.indexOf('\n', at);
      chunks.push(text.slice(at + STATE_PREFIX.length, end === -1 ? undefined : end));
    }
    at = text.indexOf(STATE_PREFIX, at + STATE_PREFIX.length);
  }
  if (chunks.length === 0) return undefined;
  try {
    return JSON.parse(chunks.join('')) as unknown;
  } catch {
    return undefined;
  }
}
