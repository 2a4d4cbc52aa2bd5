import type { NginxDirectiveValue } from '../render/nginx-directives.js';

export type ContainerState = 'created' | 'running' | 'restarting' | 'paused' | 'exited' | 'dead' | 'removing';

export interface PublishedPort {
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
}

/** One container berth manages, as Docker reports it. */
export interface LiveContainer {
  id: string;
  name: string;
  env: string;
  app: string;
  revision: string;
  specHash: string;
  replica: number;
  /** Canonical JSON of the container fields it was created from ('' when the label is absent). */
  spec: string;
  image: string;
  state: ContainerState;
  /** Docker's status text, e.g. "Up 3 minutes" or "Exited (1) 2 seconds ago". */
  status: string;
  ports: PublishedPort[];
  created: number;
  /** The runtime host it runs on (the Docker endpoint's name; several hosts later). */
  host: string;
}

export interface ContainerCreateSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  command?: string[];
  args?: string[];
  workingDir?: string;
  user?: string;
  /** Resolved values: the only place secrets are revealed. */
  env: Record<string, string>;
  ports: { containerPort: number; protocol: 'tcp' | 'udp'; hostPort?: number }[];
  cpuNano?: number;
  memoryBytes?: number;
  volumes: { source: string; target: string; readOnly: boolean }[];
  restartPolicy: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  stopGracePeriodSeconds: number;
  init: boolean;
  privileged?: boolean;
  capAdd?: string[];
}

export interface PullProgress {
  image: string;
  status: string;
  /** 0..1 when Docker reports byte counts. */
  fraction?: number;
}

export interface ExecResult {
  exitCode: number;
  output: string;
}

/** Something happened to one of berth's containers (Docker's /events, filtered to berth's labels). */
export interface RuntimeEvent {
  /** Docker's action: create, start, die, kill, stop, destroy, oom, restart, health_status… */
  action: string;
  id: string;
  name: string;
  env: string;
  app: string;
  host: string;
  /** Exit code for `die`, when Docker reports one. */
  exitCode?: number;
  /** Milliseconds since the epoch. */
  time: number;
}

/** What one container used over about the last second, as `docker stats` shows it. */
export interface ContainerStats {
  /** CPU time over the sample in % of one CPU (200 = two CPUs busy): `docker stats`' CPU %. */
  cpuPercent: number;
  /** Memory in use, reclaimable page cache left out: `docker stats`' MEM USAGE. */
  memoryBytes: number;
  /** The container's memory limit; the host's memory when it has none (as `docker stats` shows it). */
  memoryLimitBytes: number;
}

/** The container runtime, narrowed to what berth needs. Docker implements it; tests may fake it for units. */
export interface RuntimeDriver {
  readonly name: string;
  /** Every berth container of `env`, in any state: one API call. */
  list(env: string): Promise<LiveContainer[]>;
  inspect(id: string): Promise<LiveContainer | undefined>;
  hasImage(image: string): Promise<boolean>;
  pull(image: string, onProgress?: (p: PullProgress) => void): Promise<void>;
  /** Creates and starts; returns the container with its assigned host ports. */
  run(spec: ContainerCreateSpec): Promise<LiveContainer>;
  stop(id: string, graceSeconds: number): Promise<void>;
  /** Starts a stopped container again (rollback of a rolling update); returns it with its new ports. */
  start(id: string): Promise<LiveContainer>;
  remove(id: string): Promise<void>;
  exec(id: string, command: string[], timeoutMs: number): Promise<ExecResult>;
  /** Restart count and exit code, for crash-loop detection. */
  runtimeState(id: string): Promise<{ state: ContainerState; restartCount: number; exitCode: number; error: string } | undefined>;
  /**
   * Container events of `env` as they happen, until `signal` aborts. Optional: a runtime without
   * an event stream is observed by polling only.
   */
  events?(env: string, signal: AbortSignal): AsyncIterable<RuntimeEvent>;
  /**
   * Resource use of one running container (takes about a second: CPU is a difference of two
   * readings); undefined when it is gone. Optional: without it, scalers get no CPU or memory.
   */
  stats?(id: string): Promise<ContainerStats | undefined>;
}

/** One upstream server: a replica's published address. */
export interface UpstreamServer {
  address: string;
  weight?: number;
  /** The container behind it, for bookkeeping. */
  containerId: string;
}

/** Per-proxy directives of a route, keyed by proxy kind: each proxy driver reads its own key only. */
export interface ProxyOptions {
  nginx?: Record<string, NginxDirectiveValue>;
}

export interface ProxyRoute {
  app: string;
  host: string;
  path: string;
  stripPrefix: boolean;
  proxyOptions: ProxyOptions;
  servers: UpstreamServer[];
}

/** The proxy configuration of one environment: what berth writes and reads back. */
export interface ProxyConfig {
  env: string;
  routes: ProxyRoute[];
  /**
   * Set by `read` when the proxy's file is not what berth wrote (edited by hand, or unreadable):
   * says what differs. The next apply rewrites it from `routes`.
   */
  drift?: string;
  /**
   * Set by `read` of a proxy that can `remove` configs: whether the environment's config exists
   * (a retired environment's plan removes it while it does).
   */
  present?: boolean;
}

/** What a proxy can tell about the traffic of one app's route. */
export interface ProxyAppStats {
  /**
   * HTTP requests the proxy has passed to the app since `epoch` began: a counter, so a rate is the
   * difference of two readings of the same epoch.
   */
  requestsTotal: number;
  /** The counters' lifetime (HAProxy: its worker's pid). A reload starts a new epoch, its counters at 0. */
  epoch: string;
  /** Mean time to the response headers, ms, over recent requests (HAProxy: the last 1024). A mean, not a percentile. */
  meanResponseMs?: number;
  /** 95th percentile of the response time, ms, for a proxy that measures it (neither nginx nor HAProxy does). */
  p95Ms?: number;
}

export interface ProxyDriver {
  readonly name: string;
  /** The config berth last wrote for `env`, or an empty one (with `present: false` from a proxy that implements `remove`). */
  read(env: string): Promise<ProxyConfig>;
  /**
   * Writes atomically, tests, reloads; no-op when unchanged. When the proxy refuses the config it
   * restores the previous one and throws a BerthError with code E_NGINX_CONFIG (apply then tries
   * each app's change alone to find the culprit); any other failure throws another code.
   */
  apply(config: ProxyConfig): Promise<{ changed: boolean }>;
  /**
   * Removes the environment's config altogether (a retired environment), tested and reloaded like
   * `apply`, the previous config restored when that fails; no-op when there is none. Optional: a
   * proxy without it keeps an empty config for a retired environment.
   */
  remove?(env: string): Promise<{ changed: boolean }>;
  /**
   * Resolves each time the proxy's config of `env` changes on disk by a hand other than this
   * driver's, until `signal` aborts. Optional: without it, proxy drift is seen at the next poll.
   */
  watch?(env: string, signal: AbortSignal): AsyncIterable<{ env: string; file: string }>;
  /**
   * Traffic counters of `app`'s route in `env`; undefined when the proxy serves no such route.
   * Optional: open-source nginx keeps no per-upstream counters, so its driver has none.
   */
  stats?(env: string, app: string): Promise<ProxyAppStats | undefined>;
}

export interface LiveState {
  env: string;
  containers: LiveContainer[];
  proxy: ProxyConfig;
}
