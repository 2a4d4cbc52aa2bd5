import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Paths pino masks wherever they appear. Beyond this list, secrets are kept out by construction:
 * env maps are never logged, SecretValue serialises as a mask, URLs are logged redacted.
 */
export const REDACT_PATHS = ['token', '*.token', 'password', '*.password', 'secret', '*.secret', 'authorization', '*.authorization', 'headers.authorization', 'headers.cookie', 'apiToken', 'webhookSecret', 'gitToken'];

/** A pino logger on stderr (stdout stays for command output): JSON, or pretty lines in a terminal. */
export function createLogger(level = 'info', pretty = Boolean(process.stderr.isTTY)): Logger {
  const options = { level, base: { name: 'berth' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (pretty) return pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname,name' } } });
  return pino(options, pino.destination(2));
}
