import type { ContainerCreateSpec, ExecResult, LiveContainer, ProxyConfig, ProxyDriver, RuntimeDriver } from '../../src/runtime/types.js';

// In-memory drivers for units of apply, reconcile and the controller. They keep the invariants the
// real drivers keep (unique names, published ports, stopped ≠ removed) and count what was asked of
// them; they stand in for neither Docker nor nginx in integration tests.

/** RuntimeDriver in memory: every container "runs" the moment it is created; `healthy` answers exec probes. */
export class MemoryRuntime implements RuntimeDriver {
  readonly name = 'memory';
  containers = new Map<string, LiveContainer>();
  /** The most replicas of one app seen running at once (strategy bounds). */
  maxRunning = 0;
  /** Calls of run/stop/start/remove, for "nothing was touched" assertions. */
  readonly calls = { run: 0, stop: 0, start: 0, remove: 0, exec: 0 };
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
    return c;
  }
  async stop(id: string): Promise<void> {
    this.calls.stop++;
    const c = this.containers.get(id);
    if (c) c.state = 'exited';
  }
  async start(id: string): Promise<LiveContainer> {
    this.calls.start++;
    const c = this.containers.get(id)!;
    c.state = 'running';
    c.status = 'Up';
    c.ports = [{ ...c.ports[0]!, hostPort: this.#port++ }];
    return c;
  }
  async remove(id: string): Promise<void> {
    this.calls.remove++;
    this.containers.delete(id);
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
  async read(): Promise<ProxyConfig> {
    return structuredClone(this.config);
  }
  async apply(config: ProxyConfig): Promise<{ changed: boolean }> {
    if (JSON.stringify(config) === JSON.stringify(this.config)) return { changed: false };
    this.config = structuredClone(config);
    this.reloads++;
    const r = config.routes.find((x) => x.app === 'web');
    if (r && r.servers.length) this.minServing = Math.min(this.minServing, r.servers.length);
    if (r) this.weights.push(r.servers.map((s) => s.weight));
    return { changed: true };
  }
}
