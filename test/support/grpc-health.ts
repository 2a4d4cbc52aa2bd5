/**
 * A real gRPC server implementing the standard health-checking protocol (grpc.health.v1.Health/Check),
 * built on @grpc/grpc-js with its messages encoded by hand: units start it in-process, and the
 * integration test runs this same file (transpiled) inside a container as its app.
 *
 * Its protobuf codec is written here on its own, not imported from src/health/providers/grpc.ts: a
 * shared codec would make a bug in berth's encoding agree with itself and pass.
 *
 * Run as a program (`node grpc-health.mjs`), it reads GRPC_HEALTH_PORT (default 50051),
 * GRPC_HEALTH_STATUS (the server's status, default SERVING) and GRPC_HEALTH_SERVICES
 * (`name=STATUS,…`), and logs one line per check on stdout.
 */
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';

/** The statuses of grpc.health.v1.HealthCheckResponse.ServingStatus, in number order. */
export const STATUSES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
export type HealthStatus = (typeof STATUSES)[number];

export interface GrpcHealthOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** The status of the server as a whole (service ""); default SERVING. */
  status?: HealthStatus;
  /** Statuses of named services; a service not listed answers NOT_FOUND, as the protocol says. */
  services?: Record<string, HealthStatus>;
  /** Wait this long before answering (timeout tests). */
  delayMs?: number;
  /** Called with each check's service and answer. */
  onCheck?: (service: string, answer: HealthStatus | 'NOT_FOUND') => void;
}

export interface GrpcHealthServer {
  port: number;
  /** Sets the status of `service` ("" = the server as a whole). */
  set(status: HealthStatus, service?: string): void;
  /** Removes `service`: it then answers NOT_FOUND. */
  forget(service: string): void;
  setDelay(ms: number): void;
  /** Checks answered so far. */
  readonly checks: number;
  close(): Promise<void>;
}

/** HealthCheckRequest { string service = 1 } (other fields skipped). An object: grpc-js takes a falsy request for none. */
function readRequest(buf: Buffer): { service: string } {
  let service = '';
  let i = 0;
  const varint = (): number => {
    let shift = 0;
    let n = 0;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated request');
      const byte = buf[i++]!;
      n += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) return n;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const wire = tag % 8;
    if (wire === 2) {
      const len = varint();
      if (tag >>> 3 === 1) service = buf.subarray(i, i + len).toString('utf8');
      i += len;
    } else if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`wire type ${wire}`);
  }
  return { service };
}

/** HealthCheckResponse { ServingStatus status = 1 }: key 0x08, then the number (all < 128). */
function writeResponse(status: HealthStatus): Buffer {
  const n = STATUSES.indexOf(status);
  return n === 0 ? Buffer.alloc(0) : Buffer.from([0x08, n]);
}

const HEALTH_SERVICE: grpc.ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: readRequest,
    responseSerialize: writeResponse,
    responseDeserialize: () => 'UNKNOWN',
  },
};

/** Starts a health server; `close()` stops it. */
export function startGrpcHealthServer(options: GrpcHealthOptions = {}): Promise<GrpcHealthServer> {
  const statuses = new Map<string, HealthStatus>(Object.entries({ ...options.services, '': options.status ?? 'SERVING' }));
  let delayMs = options.delayMs ?? 0;
  let checks = 0;
  const server = new grpc.Server();
  server.addService(HEALTH_SERVICE, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, HealthStatus>, callback: grpc.sendUnaryData<HealthStatus>) => {
      const answer = () => {
        checks++;
        const { service } = call.request;
        const status = statuses.get(service);
        options.onCheck?.(service, status ?? 'NOT_FOUND');
        if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(service)}` });
        else callback(null, status);
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    },
  });
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({
        port,
        set: (status, service = '') => void statuses.set(service, status),
        forget: (service) => void statuses.delete(service),
        setDelay: (ms) => void (delayMs = ms),
        get checks() {
          return checks;
        },
        close: () => new Promise<void>((done) => server.tryShutdown(() => done())).then(() => server.forceShutdown()),
      });
    });
  });
}

function statusOf(value: string | undefined, what: string): HealthStatus {
  const s = (value ?? 'SERVING') as HealthStatus;
  if (!STATUSES.includes(s)) throw new Error(`${what}: ${JSON.stringify(value)} is not one of ${STATUSES.join(', ')}`);
  return s;
}

/** The program: a health server configured by environment variables, until SIGTERM. */
async function main(): Promise<void> {
  const services: Record<string, HealthStatus> = {};
  for (const pair of (process.env.GRPC_HEALTH_SERVICES ?? '').split(',').filter(Boolean)) {
    const [name, status] = pair.split('=');
    services[name!] = statusOf(status, `GRPC_HEALTH_SERVICES ${name}`);
  }
  const status = statusOf(process.env.GRPC_HEALTH_STATUS, 'GRPC_HEALTH_STATUS');
  const server = await startGrpcHealthServer({
    host: '0.0.0.0',
    port: Number(process.env.GRPC_HEALTH_PORT ?? 50051),
    status,
    services,
    onCheck: (service, answer) => console.log(`check service=${JSON.stringify(service)} → ${answer}`),
  });
  console.log(`grpc health server on :${server.port}, status ${status}`);
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
