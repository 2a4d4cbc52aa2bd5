import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Controller } from '../controller/controller.js';
import { serializePlan } from '../plan/saved.js';
import { eventStream, type EventLog } from './sse.js';
import { verifyWebhook, type Forge } from './webhooks.js';

export interface ApiOptions {
  /** Bearer token for mutating endpoints; without one they answer 403. */
  apiToken?: string;
  /** Webhook secret (HMAC key for GitHub/Gitea, token for GitLab); without one webhooks answer 403. */
  webhookSecret?: string;
  /** The branch the environment follows, for ignoring pushes to others. */
  branch: () => string | undefined;
  /** Recent and live events, for GET /api/v1/events (Server-Sent Events). */
  events?: EventLog;
}

export const MAX_BODY_BYTES = 1024 * 1024;

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body, null, 2) + '\n', { status, headers: { 'content-type': 'application/json' } });
}

function error(status: number, message: string): Response {
  return json(status, { error: message });
}

function bearerOk(req: Request, token: string | undefined): boolean {
  const got = /^Bearer (.+)$/.exec(req.headers.get('authorization') ?? '')?.[1] ?? '';
  if (!token) return false;
  const a = Buffer.from(got);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** `{"force": true}` in a sync request's JSON body. */
function forceIn(body: Buffer): boolean {
  if (body.length === 0) return false;
  try {
    return (JSON.parse(body.toString('utf8')) as { force?: unknown }).force === true;
  } catch {
    return false;
  }
}

/** berth's HTTP API as a plain Request → Response function: production serves it, tests call it. */
export function createApi(controller: Controller, options: ApiOptions): (req: Request, body: Buffer) => Promise<Response> {
  const { metrics, history } = controller.deps;
  return async (req, body) => {
    const url = new URL(req.url);
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '') || '/'}`;
    const appMatch = /^GET \/api\/v1\/apps\/([^/]+)$/.exec(route);
    const hookMatch = /^POST \/api\/v1\/webhooks\/(github|gitea|gitlab)$/.exec(route);
    if (route === 'GET /healthz') return json(200, { status: 'ok' });
    if (route === 'GET /readyz') return controller.ready ? json(200, { status: 'ready' }) : error(503, 'first reconcile not finished');
    if (route === 'GET /metrics') return new Response(await metrics.registry.metrics(), { headers: { 'content-type': metrics.registry.contentType } });
    if (route === 'GET /api/v1/status') return json(200, controller.status);
    if (route === 'GET /api/v1/apps') return json(200, controller.status.apps);
    if (appMatch) {
      const name = decodeSegment(appMatch[1]!);
      if (name === undefined) return error(400, `the app name in ${url.pathname} is not valid percent-encoding`);
      const app = controller.status.apps.find((a) => a.app === name);
      return app ? json(200, app) : error(404, `no app ${JSON.stringify(name)} in environment ${controller.deps.env}`);
    }
    if (route === 'GET /api/v1/plan') return controller.lastPlan ? new Response(serializePlan(controller.lastPlan) + '\n', { headers: { 'content-type': 'application/json' } }) : error(503, 'no plan yet');
    if (route === 'GET /api/v1/events') {
      if (!options.events) return error(404, 'the event stream is not enabled');
      const types = url.searchParams.get('types');
      return eventStream(options.events, { lastEventId: req.headers.get('last-event-id') ?? url.searchParams.get('lastEventId'), ...(types && { types: types.split(',') }), signal: req.signal });
    }
    if (route === 'GET /api/v1/history') {
      const limit = Math.min(500, Math.max(1, Number(url.searchParams.get('limit') ?? 50) || 50));
      return json(200, await history.list(limit));
    }
    if (route === 'GET /api/v1/plugins') return json(200, controller.lastDesired?.plugins ?? []);
    if (route === 'POST /api/v1/sync') {
      if (!options.apiToken) return error(403, 'mutating endpoints are disabled: start berth run with --api-token (or BERTH_API_TOKEN)');
      if (!bearerOk(req, options.apiToken)) return error(401, 'missing or wrong bearer token');
      const force = url.searchParams.get('force') === 'true' || forceIn(body);
      const { coalesced } = controller.trigger('manual', { force });
      return json(202, { accepted: true, coalesced, force });
    }
    if (hookMatch) {
      const forge = hookMatch[1] as Forge;
      const answer = (status: number, payload: unknown): Response => {
        metrics.webhookRequests.inc({ forge, code: String(status) });
        return json(status, payload);
      };
      if (!options.webhookSecret) return answer(403, { error: 'webhooks are disabled: start berth run with --webhook-secret (or BERTH_WEBHOOK_SECRET)' });
      const verdict = verifyWebhook(forge, req.headers, body, options.webhookSecret);
      if (!verdict.ok) return answer(verdict.status, { error: verdict.message });
      if (verdict.event === 'ping') return answer(200, { pong: true });
      if (verdict.event === 'other') return answer(202, { ignored: true, reason: `event ${verdict.name} does not trigger a reconcile` });
      const branch = options.branch();
      if (branch && verdict.branch !== branch) return answer(202, { ignored: true, reason: `push to ${verdict.branch}; environment ${controller.deps.env} follows ${branch}` });
      const { coalesced } = controller.trigger('webhook');
      return answer(202, { accepted: true, coalesced, branch: verdict.branch });
    }
    return error(404, `no route ${req.method} ${url.pathname}`);
  };
}

/** Writes a response body chunk by chunk (a stream may never end); stops reading when the client leaves. */
async function pipeBody(response: Response, res: http.ServerResponse, gone: AbortSignal): Promise<void> {
  if (!response.body) return void res.end();
  res.flushHeaders();
  const reader = response.body.getReader();
  // Cancelling settles a pending read, so a quiet stream (SSE between events) stops at once, and runs its cleanup.
  const cancel = (): void => void reader.cancel().catch(() => {});
  gone.addEventListener('abort', cancel, { once: true });
  try {
    for (;;) {
      if (gone.aborted) return cancel();
      const { value, done } = await reader.read();
      if (done) return void res.end();
      if (!res.write(value)) await drained(res, gone);
    }
  } catch {
    // A body that fails midway must not look complete: cut the connection rather than end it cleanly.
    res.destroy();
  } finally {
    gone.removeEventListener('abort', cancel);
  }
}

/** Resolves once `res` takes writes again or the client is gone: a slow client's backlog stays in the stream, where its producer can see it. */
function drained(res: http.ServerResponse, gone: AbortSignal): Promise<void> {
  if (gone.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      gone.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    gone.addEventListener('abort', done, { once: true });
  });
}

/** Limits of the API server: a control plane answers a few clients, and no client may hold it open. */
export interface ServeLimits {
  /** Time to receive a request's headers (slowloris). */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (a slow body gets 408). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
  /** Open connections at most (event streams included); more are refused at once. */
  maxConnections: number;
}

export const DEFAULT_LIMITS: ServeLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 256 };

/**
 * The path and query of a request target: origin-form (`/x?y`) as is, absolute-form
 * (`http://host/x?y`, which proxies send) reduced to its path; anything else is undefined.
 */
export function requestTarget(target: string | undefined): string | undefined {
  if (!target) return undefined;
  if (target.startsWith('/')) return target.startsWith('//') ? undefined : target;
  try {
    const u = new URL(target);
    return u.protocol === 'http:' || u.protocol === 'https:' ? `${u.pathname}${u.search}` : undefined;
  } catch {
    return undefined;
  }
}

function reject(res: http.ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ error: message }));
}

/**
 * Serves a Request → Response handler on node:http; bodies over MAX_BODY_BYTES get 413 unread. The
 * Host header never reaches the handler's URL (it is the client's to get wrong), and `limits` bound
 * slow and idle clients and the number of connections.
 */
export function serve(handler: (req: Request, body: Buffer) => Promise<Response>, listen: string, limits: ServeLimits = DEFAULT_LIMITS): Promise<http.Server> {
  const [host, portText] = listen.includes(':') ? [listen.slice(0, listen.lastIndexOf(':')), listen.slice(listen.lastIndexOf(':') + 1)] : ['127.0.0.1', listen];
  // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default): check each second.
  const options: http.ServerOptions = { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs, connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs) };
  const server = http.createServer(options, (req, res) => {
    const target = requestTarget(req.url);
    if (target === undefined) {
      req.resume();
      return reject(res, 400, `request target ${JSON.stringify(req.url ?? '')} is neither a path nor an http(s) URL`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let rejected = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES && !rejected) {
        rejected = true;
        reject(res, 413, `body larger than ${MAX_BODY_BYTES} bytes`);
        req.destroy();
      } else if (!rejected) chunks.push(chunk);
    });
    req.on('end', async () => {
      if (rejected) return;
      // Aborted when the client goes away, so a streaming handler (SSE) can stop.
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      let response: Response | undefined;
      try {
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
        const request = new Request(`http://berth.invalid${target}`, { method: req.method ?? 'GET', headers, signal: gone.signal });
        response = await handler(request, Buffer.concat(chunks));
        res.writeHead(response.status, Object.fromEntries(response.headers));
        await pipeBody(response, res, gone.signal);
      } catch (err) {
        // A body we will not send must still be cancelled: a stream keeps its subscriptions until then.
        void response?.body?.cancel().catch(() => {});
        // Once headers are out, an error body would be spliced into the response: cut it instead.
        if (res.headersSent) return void res.destroy();
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
      }
    });
  });
  server.maxConnections = limits.maxConnections;
  return new Promise((resolve, fail) => {
    server.once('error', fail);
    server.listen(Number(portText), host.replace(/^\[|\]$/g, ''), () => resolve(server));
  });
}

