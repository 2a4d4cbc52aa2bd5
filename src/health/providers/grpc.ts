import { isIPv6 } from 'node:net';
import type * as Grpc from '@grpc/grpc-js';
import { resultSince, type HealthCheckProvider, type HealthCheckResult, type HealthCheckTarget } from './types.js';

/** `healthCheck.grpc` as rendered. */
export interface GrpcCheckConfig {
  port: number;
  /** The service to ask about; "" asks about the server as a whole. */
  service: string;
}

/** grpc.health.v1.HealthCheckResponse.ServingStatus, by number. */
export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
export type ServingStatus = (typeof SERVING_STATUS)[number];

const CHECK_METHOD = '/grpc.health.v1.Health/Check';
/** A health answer is a few bytes; anything near this is not a health server. */
const MAX_RESPONSE_BYTES = 4096;

/** protobuf varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** HealthCheckRequest { string service = 1 }: proto3 leaves the empty default out. */
export function encodeHealthCheckRequest(service: string): Buffer {
  if (!service) return Buffer.alloc(0);
  const bytes = Buffer.from(service, 'utf8');
  return Buffer.concat([Buffer.from([0x0a, ...varint(bytes.length)]), bytes]);
}

/** Reads a varint at `pos`: [value, next position]. Values past 2^53 are not needed here. */
function readVarint(buf: Buffer, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = pos; i < buf.length && i < pos + 10; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return [value, i + 1];
  }
  throw new Error('truncated varint in HealthCheckResponse');
}

/**
 * HealthCheckResponse { ServingStatus status = 1 }: the status number (0 when absent, as proto3
 * defaults). Unknown fields are skipped, as protobuf requires; a malformed message throws.
 */
export function decodeHealthCheckResponse(buf: Buffer): number {
  let status = 0;
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    pos = afterKey;
    if (wire === 0) {
      const [v, next] = readVarint(buf, pos);
      if (field === 1) status = v;
      pos = next;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, next] = readVarint(buf, pos);
      pos = next + len;
    } else throw new Error(`unsupported wire type ${wire} in HealthCheckResponse`);
    if (pos > buf.length) throw new Error('truncated HealthCheckResponse');
  }
  return status;
}

/** The status's name, or its number when it is none of the four known. */
export function servingStatusName(status: number): string {
  return SERVING_STATUS[status] ?? `status ${status}`;
}

let grpcModule: Promise<typeof Grpc> | undefined;
/** Loaded on the first gRPC check only: most berth runs never need it. */
function loadGrpc(): Promise<typeof Grpc> {
  // A CommonJS package: its named exports, or under `default` where Node cannot list them.
  return (grpcModule ??= import('@grpc/grpc-js').then((m) => ((m as unknown as { default?: typeof Grpc }).default ?? m) as typeof Grpc));
}

/**
 * grpc.health.v1.Health/Check over plaintext HTTP/2: SERVING is healthy; another status or a gRPC
 * error is unhealthy, named in the message.
 *
 * One client per check, closed when it answers. Replicas come and go with every rollout (a new
 * published port each time) and the probe never hears of a removal, so a cache would need its own
 * expiry to avoid leaking channels; and a fresh connection also checks that the server still
 * accepts connections, which a long-lived channel can hide. Its cost is one loopback connect and
 * HTTP/2 handshake per interval (a millisecond or two).
 */
export const grpcProvider: HealthCheckProvider = {
  protocol: 'grpc',
  describe: 'the standard gRPC health-checking protocol (grpc.health.v1.Health/Check); SERVING is healthy',
  async check(target: HealthCheckTarget, signal: AbortSignal): Promise<HealthCheckResult> {
    // The probe hands a built-in its own field of the spec, already validated by the schema.
    const { service = '' } = target.config as unknown as GrpcCheckConfig;
    const { host, port, timeoutMs } = target;
    const what = `grpc health ${host}:${port} ${service ? `service ${JSON.stringify(service)}` : '(server)'}`;
    const started = performance.now();
    if (signal.aborted) return resultSince(started, false, `${what}: timed out after ${timeoutMs} ms`);
    let grpc: typeof Grpc;
    try {
      grpc = await loadGrpc();
    } catch (err) {
      return resultSince(started, false, `${what}: cannot load @grpc/grpc-js: ${(err as Error).message}`);
    }
    const address = isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_RESPONSE_BYTES,
      // One attempt per check: the gate and the monitor do the retrying, on their own schedule.
      'grpc.enable_retries': 0,
    });
    try {
      return await new Promise<HealthCheckResult>((resolve) => {
        let call: Grpc.ClientUnaryCall | undefined;
        const onAbort = () => call?.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
        call = client.makeUnaryRequest(
          CHECK_METHOD,
          encodeHealthCheckRequest,
          decodeHealthCheckResponse,
          service,
          new grpc.Metadata(),
          { deadline: Date.now() + timeoutMs },
          (err, status) => {
            signal.removeEventListener('abort', onAbort);
            if (err) {
              const code = grpc.status[err.code] ?? `code ${err.code}`;
              // grpc-js ends some details with an empty "Resolution note:"; it says nothing.
              const details = (err.details || err.message).replace(/[.\s]*Resolution note:\s*$/, '');
              const why = signal.aborted ? `timed out after ${timeoutMs} ms` : `${code}: ${details}`;
              const hint = err.code === grpc.status.UNIMPLEMENTED ? ' (the server does not implement grpc.health.v1.Health)' : '';
              resolve(resultSince(started, false, `${what}: ${why}${hint}`));
              return;
            }
            const name = servingStatusName(status ?? 0);
            resolve(resultSince(started, status === 1, `${what}: ${name}`));
          },
        );
      });
    } finally {
      client.close();
    }
  },
};
