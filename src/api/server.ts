import type { PluginView } from '../plugins/host.js';
import type { PluginHealth } from '../plugins/types.js';
import http from 'node:http';
import type { Controller } from '../controller/controller.js';
import type { PreviewRequest } from '../controller/preview.js';
import type { StatusDelivery } from '../forge/statuses.js';
import type { RemoteForgeName } from '../forge/types.js';
import { WEBHOOK_PARSERS, isWebhookForge } from '../forge/webhooks.js';
import { serializePlan } from '../plan/saved.js';
import { safeEqual } from '../util/safe-equal.js';
import { eventStream, type EventLog } from './sse.js';

export interface ApiOptions {
  /** Bearer token for mutating endpoints; without one they answer 403. */
  apiToken?: string;
  /** Webhook secret (HMAC key for GitHub/Gitea, token for GitLab); without one webhooks answer 403. */
  webhookSecret?: string;
  /**
   * The branch the environment follows, read from berth.yaml (even before the first successful
   * render); undefined only when the repo cannot be read, and then a push triggers anyway.
   */
  branch: () => Promise<string | undefined>;
  /** Decides whether a push to another branch or a pull request gets a plan; without it they are ignored. */
  preview?: (e: PreviewRequest) => { accepted: boolean; reason: string };
  /** Recent and live events, for GET /api/v1/events (Server-Sent Events). */
  events?: EventLog;
  /** Commit statuses handled lately, for GET /api/v1/commit-statuses. */
  statuses?: { recent(): StatusDelivery[] };
  /** The plugin host of `berth run`: GET /api/v1/plugins, …/:name/health, POST …/:name/reload, GET /api/v1/extension-points. */
  plugins?: PluginApi;
}

/** What the API shows and does with plugins. */
export interface PluginApi {
  list(): PluginView[];
  health(name: string): Promise<(PluginHealth & { state: string }) | undefined>;
  reload(name: string): Promise<PluginView>;
  maintenance(name: string, on: boolean): Promise<PluginView>;
  extensionPoints(): unknown;
}

/** What serve() calls: the API as a plain Request → Response function. */
export interface ApiHandler {
  (req: Request, body: Buffer): Promise<Response>;
  /** Told of each request serve() answers itself before the handler runs (413), so it is counted like the rest. */
  rejected?: (method: string, path: string, status: number) => void;
}

/** The body cap of every route but the webhooks. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** The webhooks' body cap: GitHub's documented cap on a webhook payload (larger ones it does not send). */
export const WEBHOOK_MAX_BODY_BYTES = 25 * 1024 * 1024;

/** The forge of a webhook delivery (POST /api/v1/webhooks/<forge>); undefined for any other request. */
function webhookForgeOf(method: string, path: string): RemoteForgeName | undefined {
  const forge = /^\/api\/v1\/webhooks\/([^/]+)\/*$/.exec(path)?.[1];
  return method === 'POST' && forge && isWebhookForge(forge) ? forge : undefined;
}

/** The largest body serve() reads for a request: 25 MiB for a webhook delivery, 1 MiB elsewhere. */
function bodyLimit(method: string, path: string): number {
  return webhookForgeOf(method, path) ? WEBHOOK_MAX_BODY_BYTES : MAX_BODY_BYTES;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body, null, 2) + '\n', { status, headers: { 'content-type': 'application/json' } });
}

function error(status: number, message: string): Response {
  return json(status, { error: message });
}

function bearerOk(req: Request, token: string | undefined): boolean {
  const got = /^Bearer (.+)$/.exec(req.headers.get('authorization') ?? '')?.[1] ?? '';
  if (!token) return false;
  return safeEqual(got, token);
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
export function createApi(controller: Controller, options: ApiOptions): ApiHandler {
  const { metrics, history } = controller.deps;
  const webhook = webhookRoute(controller, options);
  const handler: ApiHandler = async (req, body) => {
    const url = new URL(req.url);
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '') || '/'}`;
    const appMatch = /^GET \/api\/v1\/apps\/([^/]+)$/.exec(route);
    const hookForge = webhookForgeOf(req.method, url.pathname);
    if (route === 'GET /healthz') return json(200, { status: 'ok' });
    if (route === 'GET /readyz') return controller.ready ? json(200, { status: 'ready' }) : error(503, 'first reconcile not finished');
    if (route === 'GET /metrics') return new Response(await metrics.registry.metrics(), { headers: { 'content-type': metrics.registry.contentType } });
    if (route === 'GET /api/v1/status') return json(200, { ...controller.status, ...(controller.suspended && { suspended: controller.suspended }) });
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
    if (route === 'GET /api/v1/drift') {
      const report = await controller.drift();
      return report ? json(200, report) : error(503, 'nothing reconciled yet: drift is measured against the revision berth applied');
    }
    if (route === 'GET /api/v1/commit-statuses') return json(200, options.statuses?.recent() ?? []);
    if (route === 'GET /api/v1/plugins') return json(200, options.plugins?.list() ?? []);
    if (route === 'GET /api/v1/extension-points') return json(200, options.plugins?.extensionPoints() ?? []);
    const pluginMatch = /^(GET|POST) \/api\/v1\/plugins\/([^/]+)\/(health|reload|maintenance)$/.exec(route);
    if (pluginMatch) {
      const [, method, raw, what] = pluginMatch;
      const name = decodeSegment(raw!);
      if (name === undefined) return error(400, `the plugin name in ${url.pathname} is not valid percent-encoding`);
      if (!options.plugins) return error(404, 'plugins are not enabled in this process');
      if (what === 'health' && method === 'GET') {
        const h = await options.plugins.health(name);
        return h ? json(h.ok ? 200 : 503, { plugin: name, ...h }) : error(404, `no plugin ${JSON.stringify(name)} is enabled in environment ${controller.deps.env}`);
      }
      if ((what === 'reload' || what === 'maintenance') && method === 'POST') {
        if (!options.apiToken) return error(403, 'mutating endpoints are disabled: start berth run with --api-token (or BERTH_API_TOKEN)');
        if (!bearerOk(req, options.apiToken)) return error(401, 'missing or wrong bearer token');
        if (!options.plugins.list().some((p) => p.name === name)) return error(404, `no plugin ${JSON.stringify(name)} is enabled in environment ${controller.deps.env}`);
        if (what === 'reload') {
          try {
            return json(200, await options.plugins.reload(name));
          } catch (err) {
            return error(409, (err as Error).message);
          }
        }
        // ?on=false (or body {"on": false}) puts it back; anything else takes it out of service.
        const on = url.searchParams.get('on') !== 'false' && !/"on"\s*:\s*false/.test(body.toString('utf8'));
        try {
          return json(200, await options.plugins.maintenance(name, on));
        } catch (err) {
          return error(409, (err as Error).message);
        }
      }
      return error(405, `${method} is not allowed on ${url.pathname}`);
    }
    if (route === 'POST /api/v1/suspend' || route === 'POST /api/v1/resume') {
      if (!options.apiToken) return error(403, 'mutating endpoints are disabled: start berth run with --api-token (or BERTH_API_TOKEN)');
      if (!bearerOk(req, options.apiToken)) return error(401, 'missing or wrong bearer token');
      if (route === 'POST /api/v1/resume') controller.resume();
      else controller.suspend(url.searchParams.get('reason') ?? 'suspended through the API');
      return json(200, { suspended: controller.suspended ?? null });
    }
    if (route === 'POST /api/v1/sync') {
      if (!options.apiToken) return error(403, 'mutating endpoints are disabled: start berth run with --api-token (or BERTH_API_TOKEN)');
      if (!bearerOk(req, options.apiToken)) return error(401, 'missing or wrong bearer token');
      const force = url.searchParams.get('force') === 'true' || forceIn(body);
      const { coalesced } = controller.trigger('manual', { force });
      return json(202, { accepted: true, coalesced, force });
    }
    if (hookForge) return webhook(hookForge, req, body);
    return error(404, `no route ${req.method} ${url.pathname}`);
  };
  handler.rejected = (method, path, status) => {
    const forge = webhookForgeOf(method, path);
    if (forge) metrics.webhookRequests.inc({ forge, code: String(status) });
  };
  return handler;
}

/**
 * POST /api/v1/webhooks/<forge>: the signature is checked first (401 triggers nothing). A push to the
 * environment's branch triggers a reconcile; a push that deletes a branch never does; a push to
 * another branch or a pull request may get a plan (`preview`), else it is ignored. When the branch
 * cannot be read, a push triggers anyway: a spurious reconcile is harmless, a missed push is not.
 */
function webhookRoute(controller: Controller, options: ApiOptions): (forge: RemoteForgeName, req: Request, body: Buffer) => Promise<Response> {
  const { metrics, env } = controller.deps;
  return async (forge, req, body) => {
    const answer = (status: number, payload: unknown): Response => {
      metrics.webhookRequests.inc({ forge, code: String(status) });
      return json(status, payload);
    };
    const ignored = (reason: string): Response => answer(202, { ignored: true, reason });
    const preview = (request: PreviewRequest, otherwise: string): Response => {
      if (!options.preview) return ignored(otherwise);
      const { accepted, reason } = options.preview(request);
      return accepted ? answer(202, { accepted: true, preview: true, reason }) : ignored(reason);
    };
    if (!options.webhookSecret) return answer(403, { error: 'webhooks are disabled: start berth run with --webhook-secret (or BERTH_WEBHOOK_SECRET)' });
    const verdict = WEBHOOK_PARSERS[forge](req.headers, body, options.webhookSecret);
    if (!verdict.ok) return answer(verdict.status, { error: verdict.message });
    const event = verdict.event;
    if (event.kind === 'ping') return answer(200, { pong: true });
    if (event.kind === 'other') return ignored(`event ${event.name} does not trigger a reconcile`);
    try {
      if (event.kind === 'pull-request') {
        if (event.closed) return ignored(`pull request #${event.number} ${event.action}: nothing to plan`);
        return preview({ kind: 'pull-request', forge, branch: event.headBranch, sha: event.headSha, number: event.number, base: event.baseBranch }, 'pull request plans need a forge (see --forge)');
      }
      if (event.deleted) return ignored(`push deleted branch ${event.branch}`);
      const branch = await options.branch().catch(() => undefined);
      if (branch === undefined) {
        const { coalesced } = controller.trigger('webhook');
        return answer(202, { accepted: true, coalesced, branch: event.branch, reason: `the branch environment ${env} follows could not be read from berth.yaml; reconciling anyway` });
      }
      if (event.branch === branch) {
        const { coalesced } = controller.trigger('webhook');
        return answer(202, { accepted: true, coalesced, branch: event.branch });
      }
      return preview({ kind: 'push', forge, branch: event.branch, ...(event.sha && { sha: event.sha }) }, `push to ${event.branch}; environment ${env} follows ${branch}`);
    } catch (err) {
      return answer(500, { error: `webhook handling failed: ${(err as Error).message}` });
    }
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

/** How long the rest of a refused body is read (and dropped) before the connection is cut. */
const LINGER_MS = 5_000;

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

/**
 * Answers a request serve() refuses itself, with a JSON error. The connection is closed after it,
 * unless `close` is false: a 413 keeps it open a while to read and drop the rest of the body.
 */
function reject(res: http.ServerResponse, status: number, message: string, close = true): void {
  res.writeHead(status, { 'content-type': 'application/json', ...(close && { connection: 'close' }) }).end(JSON.stringify({ error: message }));
}

/**
 * Serves a Request → Response handler on node:http; a body over its route's cap (`bodyLimit`) gets
 * 413 unread, and the handler hears of it (`rejected`) so it counts it. The Host header never
 * reaches the handler's URL (it is the client's to get wrong), and `limits` bound slow and idle
 * clients and the number of connections.
 */
export function serve(handler: ApiHandler, listen: string, limits: ServeLimits = DEFAULT_LIMITS): Promise<http.Server> {
  const [host, portText] = listen.includes(':') ? [listen.slice(0, listen.lastIndexOf(':')), listen.slice(listen.lastIndexOf(':') + 1)] : ['127.0.0.1', listen];
  // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default): check each second.
  const options: http.ServerOptions = { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs, connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs) };
  const server = http.createServer(options, (req, res) => {
    const target = requestTarget(req.url);
    if (target === undefined) {
      req.resume();
      return reject(res, 400, `request target ${JSON.stringify(req.url ?? '')} is neither a path nor an http(s) URL`);
    }
    const method = req.method ?? 'GET';
    const pathname = target.replace(/[?#].*$/, '');
    const cap = bodyLimit(method, pathname);
    const chunks: Buffer[] = [];
    let size = 0;
    let rejected = false;
    const tooLarge = (): void => {
      rejected = true;
      try {
        handler.rejected?.(method, pathname, 413);
      } catch {
        // counting must never stop the answer
      }
      reject(res, 413, `body larger than ${cap} bytes`, false);
      // A lingering close (as nginx does): the rest of the body is read and dropped for a while, so the
      // client reads the 413 instead of a connection reset; a body that goes on longer is cut.
      const cut = setTimeout(() => req.destroy(), LINGER_MS).unref();
      req.once('close', () => clearTimeout(cut));
    };
    req.on('data', (chunk: Buffer) => {
      if (rejected) return;
      size += chunk.length;
      if (size > cap) tooLarge();
      else chunks.push(chunk);
    });
    // A declared length over the cap is refused before a byte of the body is kept.
    if (Number(req.headers['content-length'] ?? 0) > cap) tooLarge();
    req.on('end', async () => {
      if (rejected) return;
      // Aborted when the client goes away, so a streaming handler (SSE) can stop.
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      let response: Response | undefined;
      try {
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
        const request = new Request(`http://berth.invalid${target}`, { method, headers, signal: gone.signal });
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

