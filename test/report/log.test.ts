import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { REDACT_PATHS } from '../../src/log.js';

describe('log redaction', () => {
  const capture = () => {
    const lines: string[] = [];
    const stream = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    return { log: pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stream), lines };
  };

  it('keeps the environment name and masks credentials', () => {
    const { log, lines } = capture();
    log.info({ env: 'production', token: 't0ken', headers: { authorization: 'Bearer x' }, app: 'web' }, 'apply progress');
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(line.env, 'production', 'the environment name is not a secret');
    assert.equal(line.token, '[redacted]');
    assert.deepEqual(line.headers, { authorization: '[redacted]' });
    assert.ok(!lines[0]!.includes('t0ken'));
  });
});
