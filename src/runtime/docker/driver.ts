import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { LABELS } from '../labels.js';
import { type ContainerCreateSpec, type ContainerState, type ContainerStats, type ExecResult, type LiveContainer, type PublishedPort, type PullProgress, type RuntimeDriver, type RuntimeEvent } from '../types.js';
import { DockerError, translateDockerError } from './errors.js';

/** dockerode options for a DOCKER_HOST-style address: unix:///path, tcp://host:port, or a socket path. */
export function dockerOptions(host: string | undefined): Docker.DockerOptions {
  if (!host) return { socketPath: '/var/run/docker.sock' };
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { socketPath: host };
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return { host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' };
}

function toState(s: string | undefined): ContainerState {
  const known: ContainerState[] = ['created', 'running', 'restarting', 'paused', 'exited', 'dead', 'removing'];
  return known.includes(s as ContainerState) ? (s as ContainerState) : 'dead';
}

/** One line of Docker's /events stream, as far as berth reads it. */
interface DockerEventLine {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

/** A RuntimeEvent from one /events line; undefined for lines berth ignores (exec_* from health probes, other types). */
function toRuntimeEvent(line: DockerEventLine, host: string): RuntimeEvent | undefined {
  if (line.Type !== undefined && line.Type !== 'container') return undefined;
  // Docker appends details to some actions ("exec_start: /bin/sh -c …", "health_status: healthy").
  const action = (line.Action ?? '').split(':')[0]!.trim();
  if (!action || action.startsWith('exec_')) return undefined;
  const attrs = line.Actor?.Attributes ?? {};
  const exitCode = attrs.exitCode === undefined || attrs.exitCode === '' ? undefined : Number(attrs.exitCode);
  return {
    action,
    id: line.Actor?.ID ?? '',
    name: attrs.name ?? '',
    env: attrs[LABELS.env] ?? '',
    app: attrs[LABELS.app] ?? '',
    host,
    ...(exitCode !== undefined && Number.isFinite(exitCode) && { exitCode }),
    // timeNano exceeds 2^53 and loses a few hundred ns in JSON.parse: irrelevant at ms.
    time: line.timeNano ? Math.floor(line.timeNano / 1e6) : (line.time ?? 0) * 1000,
  };
}

/** Splits newline-delimited JSON across chunk boundaries: a chunk may hold several lines or half of one. */
async function* jsonLines(stream: NodeJS.ReadableStream): AsyncGenerator<unknown> {
  // setEncoding keeps a multi-byte character split across chunks whole.
  stream.setEncoding('utf8');
  let buffered = '';
  for await (const chunk of stream) {
    buffered += chunk as string;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (!text) continue;
      try {
        yield JSON.parse(text);
      } catch {
        // A line the daemon garbled is one lost event, not a reason to drop the watch.
      }
    }
  }
}

function fromLabels(labels: Record<string, string>): Pick<LiveContainer, 'env' | 'app' | 'revision' | 'specHash' | 'replica' | 'spec'> {
  return {
    env: labels[LABELS.env] ?? '',
    app: labels[LABELS.app] ?? '',
    revision: labels[LABELS.revision] ?? '',
    specHash: labels[LABELS.specHash] ?? '',
    replica: Number(labels[LABELS.replica] ?? -1),
    spec: labels[LABELS.spec] ?? '',
  };
}

/**
 * One `GET /containers/{id}/stats?stream=false` answer as `docker stats` shows it (the CLI's
 * calculateCPUPercentUnix and calculateMemUsageUnixNoCache): CPU % is the container's share of the
 * host's CPU time between the daemon's two readings, times the online CPUs; memory leaves out
 * inactive page cache (cgroup v1: total_inactive_file, v2: inactive_file), which the kernel reclaims.
 */
export function containerStats(raw: Docker.ContainerStats): ContainerStats {
  const cpu = raw.cpu_stats;
  const pre = raw.precpu_stats;
  const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (pre?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu?.system_cpu_usage ?? 0) - (pre?.system_cpu_usage ?? 0);
  const online = cpu?.online_cpus || cpu?.cpu_usage?.percpu_usage?.length || 1;
  const cpuPercent = cpuDelta > 0 && systemDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;
  const mem = raw.memory_stats ?? {};
  const detail = (mem.stats ?? {}) as Record<string, number | undefined>;
  const inactive = detail.total_inactive_file ?? detail.inactive_file ?? 0;
  const usage = mem.usage ?? 0;
  return { cpuPercent, memoryBytes: inactive < usage ? usage - inactive : usage, memoryLimitBytes: mem.limit ?? 0 };
}

/** Docker behind RuntimeDriver. Every call is labelled with what it was doing when it fails. */
export class DockerDriver implements RuntimeDriver {
  readonly name = 'docker';
  readonly #docker: Docker;
  readonly #host: string;
  readonly #hostIp: string;
  /** Count of list calls: the no-op apply must make exactly one. */
  listCalls = 0;
  /** The name live containers carry as their host: the endpoint, as given. */
  readonly hostName: string;

  constructor(options: { host?: string; hostIp?: string; name?: string } = {}) {
    this.#host = options.host ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
    this.#docker = new Docker(dockerOptions(this.#host));
    this.#hostIp = options.hostIp ?? '127.0.0.1';
    this.hostName = options.name ?? this.#host;
  }

  /**
   * Runs one Docker call; a raw error becomes a DockerError saying what berth was doing. `expected`
   * maps status codes that are not failures here (404 gone, 304 already so) to the value to return.
   */
  async #call<T>(action: string, context: Record<string, unknown>, fn: () => Promise<T>, expected: Partial<Record<number, T>> = {}): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DockerError) throw err;
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== undefined && status in expected) return expected[status] as T;
      throw translateDockerError(err, action, { ...context, host: this.#host });
    }
  }

  /**
   * Container events of `env` until `signal` aborts. The stream never ends on its own: when the
   * daemon closes it or the connection fails, the iterator throws a transient DockerError.
   */
  async *events(env: string, signal: AbortSignal): AsyncGenerator<RuntimeEvent> {
    if (signal.aborted) return;
    const context = { env };
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#call('watch container events', context, () =>
        this.#docker.getEvents({ filters: { type: ['container'], label: [`${LABELS.managed}=true`, `${LABELS.env}=${env}`] }, abortSignal: signal }),
      );
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    const response = stream as NodeJS.ReadableStream & { destroy(): void };
    // The signal only cancels the request while it connects; afterwards the open response must be destroyed.
    const stop = (): void => response.destroy();
    signal.addEventListener('abort', stop, { once: true });
    // Destroying the socket can emit an error after the iterator has let go: nobody would hear it.
    response.on('error', () => {});
    try {
      for await (const line of jsonLines(stream)) {
        const event = toRuntimeEvent(line as DockerEventLine, this.hostName);
        if (event) yield event;
      }
    } catch (err) {
      if (signal.aborted) return;
      throw this.#lostEvents(err, context);
    } finally {
      signal.removeEventListener('abort', stop);
      response.destroy();
    }
    if (signal.aborted) return;
    throw this.#lostEvents(undefined, context);
  }

  /** The event stream ended without being asked to: the daemon went away or closed it. Transient: reconnect. */
  #lostEvents(cause: unknown, context: Record<string, unknown>): DockerError {
    if (cause instanceof DockerError) return cause;
    return new DockerError(`the event stream from Docker at ${this.#host} ended; reconnect`, { ...context, host: this.#host }, cause, true, 'E_DOCKER_UNAVAILABLE');
  }

  async ping(): Promise<void> {
    await this.#call('ping the daemon', {}, () => this.#docker.ping());
  }

  async list(env: string): Promise<LiveContainer[]> {
    this.listCalls++;
    const rows = await this.#call('list containers', { env }, () =>
      this.#docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`, `${LABELS.env}=${env}`] } }),
    );
    return rows.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      ...fromLabels(c.Labels),
      image: c.Image,
      state: toState(c.State),
      status: c.Status,
      ports: c.Ports.filter((p) => p.PublicPort).map((p) => ({ containerPort: p.PrivatePort, protocol: p.Type === 'udp' ? 'udp' : 'tcp', hostIp: p.IP ?? '', hostPort: p.PublicPort })),
      created: c.Created,
      host: this.hostName,
    }));
  }

  async inspect(id: string): Promise<LiveContainer | undefined> {
    const info = await this.#call('inspect a container', { container: id }, () => this.#docker.getContainer(id).inspect() as Promise<Docker.ContainerInspectInfo | undefined>, { 404: undefined });
    if (!info) return undefined;
    const ports: PublishedPort[] = [];
    for (const [key, bindings] of Object.entries(info.NetworkSettings.Ports ?? {})) {
      const [port, proto] = key.split('/');
      for (const b of bindings ?? []) ports.push({ containerPort: Number(port), protocol: proto === 'udp' ? 'udp' : 'tcp', hostIp: b.HostIp, hostPort: Number(b.HostPort) });
    }
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      ...fromLabels(info.Config.Labels ?? {}),
      image: info.Config.Image,
      state: toState(info.State.Status),
      status: info.State.Status,
      ports,
      created: Math.floor(Date.parse(info.Created) / 1000),
      host: this.hostName,
    };
  }

  async hasImage(image: string): Promise<boolean> {
    return this.#call('inspect an image', { image }, async () => (await this.#docker.getImage(image).inspect(), true), { 404: false });
  }

  async pull(image: string, onProgress?: (p: PullProgress) => void): Promise<void> {
    const stream = await this.#call(`pull ${image}`, { image }, () => this.#docker.pull(image) as Promise<NodeJS.ReadableStream>);
    await new Promise<void>((resolve, reject) => {
      let streamError: string | undefined;
      this.#docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          // An error can arrive inside the progress stream with a 200 response: it is still an error.
          const message = err?.message ?? streamError;
          if (message) reject(new DockerError(`pull of ${image} failed: ${message}; check the image name and registry access`, { image }, undefined, false, 'E_IMAGE'));
          else resolve();
        },
        (event: { status?: string; error?: string; progressDetail?: { current?: number; total?: number } }) => {
          if (event.error) streamError = event.error;
          const { current, total } = event.progressDetail ?? {};
          onProgress?.({ image, status: event.status ?? '', ...(current && total ? { fraction: current / total } : {}) });
        },
      );
    });
  }

  async run(spec: ContainerCreateSpec): Promise<LiveContainer> {
    const context = { app: spec.labels[LABELS.app], container: spec.name };
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of spec.ports) {
      const key = `${p.containerPort}/${p.protocol}`;
      exposed[key] = {};
      bindings[key] = [{ HostIp: this.#hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' }];
    }
    const container = await this.#call('create a container', context, () =>
      this.#docker.createContainer({
        name: spec.name,
        Image: spec.image,
        ...(spec.command && { Entrypoint: spec.command }),
        ...(spec.args && { Cmd: spec.args }),
        ...(spec.workingDir && { WorkingDir: spec.workingDir }),
        ...(spec.user && { User: spec.user }),
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        Labels: spec.labels,
        ExposedPorts: exposed,
        StopTimeout: spec.stopGracePeriodSeconds,
        HostConfig: {
          PortBindings: bindings,
          Init: spec.init,
          RestartPolicy: { Name: spec.restartPolicy === 'no' ? '' : spec.restartPolicy },
          ...(spec.cpuNano && { NanoCpus: spec.cpuNano }),
          ...(spec.memoryBytes && { Memory: spec.memoryBytes }),
          ...(spec.privileged && { Privileged: true }),
          ...(spec.capAdd?.length && { CapAdd: spec.capAdd }),
          Mounts: spec.volumes.map((v) => ({ Type: v.source.startsWith('/') ? ('bind' as const) : ('volume' as const), Source: v.source, Target: v.target, ReadOnly: v.readOnly })),
        },
      }),
    );
    try {
      await this.#call('start a container', context, () => container.start());
    } catch (err) {
      await container.remove({ force: true }).catch(() => {});
      throw err;
    }
    const live = await this.inspect(container.id);
    if (!live) throw new DockerError(`container ${spec.name} vanished right after it started`, context);
    return live;
  }

  async stop(id: string, graceSeconds: number): Promise<void> {
    await this.#call('stop a container', { container: id }, () => this.#docker.getContainer(id).stop({ t: graceSeconds }) as Promise<void>, { 304: undefined, 404: undefined });
  }

  async start(id: string): Promise<LiveContainer> {
    await this.#call('start a container', { container: id }, () => this.#docker.getContainer(id).start() as Promise<void>, { 304: undefined });
    const live = await this.inspect(id);
    if (!live) throw new DockerError(`container ${id} vanished right after it started`, { container: id });
    return live;
  }

  /** Removes (forcibly); gone already is fine, and one Docker is already removing (409) is waited for, up to 10 s. */
  async remove(id: string): Promise<void> {
    const removing = Symbol('removing');
    const result = await this.#call('remove a container', { container: id }, () => this.#docker.getContainer(id).remove({ force: true, v: false }) as Promise<unknown>, { 404: undefined, 409: removing });
    if (result !== removing) return;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if ((await this.inspect(id)) === undefined) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new DockerError(`container ${id.slice(0, 12)} is still being removed by Docker after 10 s`, { container: id, host: this.#host }, undefined, true);
  }

  async exec(id: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    const container = this.#docker.getContainer(id);
    const exec = await this.#call('exec in a container', { container: id }, () => container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true }));
    const stream = await this.#call('exec in a container', { container: id }, () => exec.start({ hijack: true, stdin: false }));
    const sink = new PassThrough();
    let output = '';
    sink.on('data', (d: Buffer) => {
      if (output.length < 4096) output += d.toString('utf8');
    });
    this.#docker.modem.demuxStream(stream, sink, sink);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.destroy();
        reject(new DockerError(`exec ${JSON.stringify(command)} timed out after ${timeoutMs} ms`, { container: id }));
      }, timeoutMs);
      stream.on('end', () => (clearTimeout(timer), resolve()));
      stream.on('close', () => (clearTimeout(timer), resolve()));
      stream.on('error', (e: Error) => (clearTimeout(timer), reject(e)));
    });
    const info = await this.#call('inspect an exec', { container: id }, () => exec.inspect());
    return { exitCode: info.ExitCode ?? -1, output: output.trim() };
  }

  /** `docker stats --no-stream` of one container: the daemon waits for a second reading, so this takes about a second. */
  async stats(id: string): Promise<ContainerStats | undefined> {
    const raw = await this.#call('read container stats', { container: id }, () => this.#docker.getContainer(id).stats({ stream: false }) as Promise<Docker.ContainerStats | undefined>, { 404: undefined });
    return raw && containerStats(raw);
  }

  async runtimeState(id: string): Promise<{ state: ContainerState; restartCount: number; exitCode: number; error: string } | undefined> {
    const info = await this.#call('inspect a container', { container: id }, () => this.#docker.getContainer(id).inspect() as Promise<Docker.ContainerInspectInfo | undefined>, { 404: undefined });
    return info && { state: toState(info.State.Status), restartCount: info.RestartCount, exitCode: info.State.ExitCode, error: info.State.Error };
  }
}
