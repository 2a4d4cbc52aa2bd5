import { styleText } from 'node:util';
import { stringify } from 'yaml';

export type OutputFormat = 'text' | 'json' | 'yaml';

export interface Out {
  /** Main output (stdout). */
  print(text: string): void;
  /** Progress and diagnostics (stderr), so stdout stays machine-readable. */
  info(text: string): void;
  color: boolean;
}

export function consoleOut(): Out {
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  return {
    print: (t) => void process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
    info: (t) => void process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
    color,
  };
}

type Style = 'red' | 'green' | 'yellow' | 'cyan' | 'bold' | 'dim';

export function paint(out: Pick<Out, 'color'>, style: Style, text: string): string {
  return out.color ? styleText(style, text) : text;
}

/** Plain JSON data (secrets become masks through their toJSON). */
export function toPlain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

export function formatData(value: unknown, format: OutputFormat): string {
  const plain = toPlain(value);
  return format === 'json' ? JSON.stringify(plain, null, 2) : stringify(plain, { lineWidth: 0 });
}
