import net from 'node:net';
import { MASK, SecretValue } from '../../render/secrets.js';
import { resultSince, type HealthCheckProvider, type HealthCheckResult, type HealthCheckTarget } from './types.js';

/** `healthCheck.redis` as rendered: the password is the resolved `secretRef`. */
export interface RedisCheckConfig {
  port: number;
  password?: SecretValue;
}

/** Replies of AUTH and PING are one short line each; more than this is not a Redis server answering. */
const MAX_REPLY_BYTES = 4096;
/** How much of a strange reply a message quotes. */
const QUOTE_CHARS = 80;

/** A RESP array of bulk strings: how every Redis command is sent. */
function command(...args: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const bytes = Buffer.from(a, 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** The password to send, or why there is none to send (never the value itself). */
function passwordOf(config: RedisCheckConfig): { value?: string; problem?: string } {
  const p: unknown = config.password;
  if (p === undefined) return {};
  if (p instanceof SecretValue) {
    if (!p.resolved) return { problem: `password secret "${p.ref}" has no value` };
    return { value: p.reveal() };
  }
  // A saved plan keeps secrets as { secretRef, hmac }: there is no value to send.
  const ref = typeof p === 'object' && p !== null && typeof (p as { secretRef?: unknown }).secretRef === 'string' ? (p as { secretRef: string }).secretRef : undefined;
  return { problem: `password secret ${ref ? `"${ref}" ` : ''}is not resolved here` };
}

/**
 * PING over a plain socket (RESP), after AUTH when a password is set: +PONG is healthy; an error
 * reply (-NOAUTH, -WRONGPASS, -LOADING, …) is unhealthy with its text. The password is sent, never
 * echoed: messages quote only the server's replies, with the password masked should one repeat it.
 */
export const redisProvider: HealthCheckProvider = {
  protocol: 'redis',
  describe: 'Redis PING (AUTH first with a password); +PONG is healthy',
  check(target: HealthCheckTarget, signal: AbortSignal): Promise<HealthCheckResult> {
    // The probe hands a built-in its own field of the spec, already validated by the schema.
    const config = target.config as unknown as RedisCheckConfig;
    const { host, port, timeoutMs } = target;
    const what = `redis ${host}:${port}`;
    const started = performance.now();
    const password = passwordOf(config);
    if (password.problem) return Promise.resolve(resultSince(started, false, `${what}: ${password.problem}`));
    const mask = (text: string): string => (password.value ? text.replaceAll(password.value, MASK) : text);
    return new Promise((resolve) => {
      const socket = net.connect({ host, port: port! });
      let buffered = '';
      const replies: string[] = [];
      const expected = password.value !== undefined ? 2 : 1;
      let settled = false;
      const done = (ok: boolean, message: string) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve(resultSince(started, ok, mask(message)));
      };
      const onAbort = () => done(false, `${what}: timed out after ${timeoutMs} ms`);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      socket.setTimeout(timeoutMs, () => done(false, `${what}: timed out after ${timeoutMs} ms${replies.length ? ` (after ${replies.length} of ${expected} replies)` : ''}`));
      socket.on('connect', () => {
        // Pipelined: one round trip. Redis answers in order; a failed AUTH makes PING answer NOAUTH.
        socket.write(password.value !== undefined ? Buffer.concat([command('AUTH', password.value), command('PING')]) : command('PING'));
      });
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\r\n')) >= 0 && replies.length < expected) {
          replies.push(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 2);
        }
        if (replies.length < expected && buffered.length > MAX_REPLY_BYTES) return done(false, `${what}: no Redis reply (${JSON.stringify(buffered.slice(0, QUOTE_CHARS))}…)`);
        if (replies.length < expected) return;
        const [auth, ping] = password.value !== undefined ? [replies[0]!, replies[1]!] : [undefined, replies[0]!];
        if (auth !== undefined && !auth.startsWith('+')) return done(false, `${what}: AUTH failed: ${describeReply(auth)}`);
        if (ping === '+PONG') return done(true, `${what}: PONG`);
        done(false, `${what}: PING → ${describeReply(ping)}`);
      });
      socket.on('end', () => done(false, `${what}: connection closed after ${replies.length} of ${expected} replies`));
      socket.on('error', (err) => done(false, `${what}: ${err.message}`));
    });
  },
};

/** An error reply's text (`NOAUTH Authentication required.`), or a quoted strange one. */
function describeReply(line: string): string {
  if (line.startsWith('-')) return line.slice(1);
  if (line.startsWith('+')) return line.slice(1);
  return `unexpected reply ${JSON.stringify(line.slice(0, QUOTE_CHARS))}`;
}
