import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino masks wherever they appear. Env maps are never logged at all (by construction). */
export const REDACT_PATHS = ['token', '*.token', 'password', '*.password', 'secret', '*.secret', 'authorization', '*.authorization', 'headers.authorization', 'headers.cookie', 'env', '*.env', 'apiToken', 'webhookSecret'];

/** A pino logger writing JSON to stderr (stdout stays for command output), secrets redacted. */
export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { name: 'berth' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination(2));
}
