import type { ContainerCreateSpec, ExecResult, LiveContainer, ProxyConfig, ProxyDriver, RuntimeDriver, RuntimeEvent } from '../../src/runtime/types.js';

// In-memory drivers for units of apply, reconcile and the controller. They keep the invariants the
// real drivers keep (unique names, published ports, stopped ≠ removed, events for every change, for
// berth's own changes too) and count what was asked of them; they stand in for neither Docker nor
// nginx in integration tests.

/**
 * An event stream for the fakes, shaped like the real drivers' streams: each `stream()` is one
 * subscription that gets what is pushed while it is open, ends on abort, and throws when broken.
 */
export class Feed<T> {
  readonly #subscribers = new Set<{ push(event: T): void; fail(err: Error): void }>();
  /** Streams opened so far (each reconnect opens one more). */
  opened = 0;

  /** Streams open now. */
  get open(): number {
    return this.#subscribers.size;
  }

  /** Delivers `event` to every open stream; with none open it is lost, as with Docker. */
  push(event: T): void {
    for (const s of this.#subscribers) s.push(event);
  }

  /** Every open stream throws `err`, as when the connection drops: what is pushed from now until a reconnect is lost. */
  break(err: Error = new Error('event stream lost')): void {
    for (const s of this.#subscribers) s.fail(err);
    this.#subscribers.clear();
  }

  async *stream(signal: AbortSignal): AsyncGenerator<T> {
    this.opened++;
    const queue: T[] = [];
    let failed: Error | undefined;
    let wake: (() => void) | undefined;
    const sub = {
      push: (event: T) => {
        queue.push(event);
        wake?.();
      },
      fail: (err: Error) => {
        failed = err;
        queue.length = 0;
        wake?.();
      },
    };
    const onAbort = (): void => wake?.();
    this.#subscribers.add(sub);
    signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (queue.length && !signal.aborted) yield queue.shift()!;
        if (signal.aborted) return;
        if (failed) throw failed;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      this.#subscribers.delete(sub);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/** RuntimeDriver in memory: every container "runs" the moment it is created; `healthy` answers exec probes. */
export class MemoryRuntime implements RuntimeDriver {
  readonly name = 'memory';
  containers = new Map<string, LiveContainer>();
  /** The most replicas of one app seen running at once (strategy bounds). */
  maxRunning = 0;
  /** Calls of run/stop/start/remove, for "nothing was touched" assertions. */
  readonly calls = { run: 0, stop: 0, start: 0, remove: 0, exec: 0 };
  /** Container events, as Docker's /events would send them. */
  readonly feed = new Feed<RuntimeEvent>();
  #port = 20000;

  /** `healthy` decides every exec probe; replace it at any time to make a version fail its gate. */
  constructor(public healthy: (c: LiveContainer) => boolean = () => true) {}

  running(app: string): LiveContainer[] {
    return [...this.containers.values()].filter((c) => c.app === app && c.state === 'running');
  }

  /** Containers of `app` in any state. */
  of(app: string): LiveContainer[] {
    return [...this.containers.values()].filter((c) => c.app === app);
  }

  /** Kills a container behind berth's back, as `docker kill` would (drift). */
  kill(id: string): void {
    const c = this.containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    c.state = 'exited';
    c.status = 'Exited (137) 1 second ago';
    this.#event(c, 'kill', 'die');
  }

  /** Removes a container behind berth's back, as `docker rm -f` would (drift). */
  removeByHand(id: string): void {
    const c = this.containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    this.containers.delete(id);
    this.#event(c, 'kill', 'die', 'destroy');
  }

  /** `docker events` for env: what the feed delivers while subscribed. */
  async *events(env: string, signal: AbortSignal): AsyncGenerator<RuntimeEvent> {
    for await (const e of this.feed.stream(signal)) if (e.env === env) yield e;
  }

  #event(c: LiveContainer, ...actions: string[]): void {
    for (const action of actions) this.feed.push({ action, id: c.id, name: c.name, env: c.env, app: c.app, host: c.host, time: Date.now() });
  }

  async list(env?: string): Promise<LiveContainer[]> {
    return [...this.containers.values()].filter((c) => env === undefined || c.env === env).map((c) => ({ ...c }));
  }
  async inspect(id: string): Promise<LiveContainer | undefined> {
    return this.containers.get(id);
  }
  async hasImage(): Promise<boolean> {
    return true;
  }
  async pull(): Promise<void> {}
  async run(spec: ContainerCreateSpec): Promise<LiveContainer> {
    this.calls.run++;
    if ([...this.containers.values()].some((c) => c.name === spec.name)) throw new Error(`name conflict ${spec.name}`);
    const c: LiveContainer = {
      id: `id-${spec.name}`,
      name: spec.name,
      env: spec.labels['berth.env']!,
      app: spec.labels['berth.app']!,
      revision: 'r',
      specHash: spec.labels['berth.spec-hash']!,
      replica: Number(spec.labels['berth.replica']),
      spec: spec.labels['berth.spec']!,
      image: spec.image,
      state: 'running',
      status: 'Up',
      ports: [{ containerPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: this.#port++ }],
      created: 1,
      host: 'local',
    };
    this.containers.set(c.id, c);
    this.maxRunning = Math.max(this.maxRunning, this.running(c.app).length);
    this.#event(c, 'create', 'start');
    return c;
  }
  async stop(id: string): Promise<void> {
    this.calls.stop++;
    const c = this.containers.get(id);
    if (c) {
      c.state = 'exited';
      this.#event(c, 'kill', 'die', 'stop');
    }
  }
  async start(id: string): Promise<LiveContainer> {
    this.calls.start++;
    const c = this.containers.get(id)!;
    c.state = 'running';
    c.status = 'Up';
    c.ports = [{ ...c.ports[0]!, hostPort: this.#port++ }];
    this.#event(c, 'start');
    return c;
  }
  async remove(id: string): Promise<void> {
    this.calls.remove++;
    const c = this.containers.get(id);
    // Docker answers 409 while it is removing the container already (a `docker rm -f` in progress).
    if (c?.state === 'removing') throw new Error(`removal of container ${c.name} is already in progress`);
    this.containers.delete(id);
    if (c) this.#event(c, 'destroy');
  }
  async exec(id: string): Promise<ExecResult> {
    this.calls.exec++;
    const c = this.containers.get(id);
    // Docker answers an exec into a removed container with an error, which a probe counts as a failure.
    if (!c) throw new Error(`no such container: ${id}`);
    return { exitCode: this.healthy(c) ? 0 : 1, output: '' };
  }
  async runtimeState(id: string): Promise<{ state: LiveContainer['state']; restartCount: number; exitCode: number; error: string } | undefined> {
    const c = this.containers.get(id);
    return c ? { state: c.state, restartCount: 0, exitCode: c.state === 'running' ? 0 : 137, error: '' } : undefined;
  }
}

/** ProxyDriver in memory: records reloads, the fewest servers `web` was ever served by, and its weights. */
export class MemoryProxy implements ProxyDriver {
  readonly name = 'memory';
  config: ProxyConfig = { env: 'production', routes: [] };
  minServing = Infinity;
  reloads = 0;
  weights: (number | undefined)[][] = [];
  /** What a hand edit changed (read() reports it as drift until the next write). */
  edited: string | undefined;
  /** Hand edits, as the nginx driver's watch of its conf dir reports them. */
  readonly feed = new Feed<{ env: string; file: string }>();
  /** Whether a config "file" exists: written by apply, deleted by remove (a retired environment). */
  present = false;
  /** Calls of remove that deleted the config. */
  removals = 0;

  /** Edits the config file behind berth's back: read() reports drift, and watch() sees the change. */
  editByHand(what = 'memory file edited: line 3 is "server 10.0.0.1:80;"'): void {
    this.edited = what;
    this.feed.push({ env: this.config.env, file: 'memory.conf' });
  }

  async read(): Promise<ProxyConfig> {
    return { ...structuredClone(this.config), present: this.present, ...(this.edited && { drift: this.edited }) };
  }
  async *watch(env: string, signal: AbortSignal): AsyncGenerator<{ env: string; file: string }> {
    for await (const e of this.feed.stream(signal)) if (e.env === env) yield e;
  }
  async apply(config: ProxyConfig): Promise<{ changed: boolean }> {
    this.present = true;
    // A hand-edited file differs from any config berth renders: it is written again.
    if (!this.edited && JSON.stringify(config) === JSON.stringify(this.config)) return { changed: false };
    this.edited = undefined;
    this.config = structuredClone(config);
    this.reloads++;
    const r = config.routes.find((x) => x.app === 'web');
    if (r && r.servers.length) this.minServing = Math.min(this.minServing, r.servers.length);
    if (r) this.weights.push(r.servers.map((s) => s.weight));
    return { changed: true };
  }
  async remove(env: string): Promise<{ changed: boolean }> {
    if (!this.present || this.config.env !== env) return { changed: false };
    this.present = false;
    this.edited = undefined;
    this.config = { env, routes: [] };
    this.reloads++;
    this.removals++;
    return { changed: true };
  }
}
