import os from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { DEFAULT_PARALLELISM } from '../apply/apply.js';
import { UsageError } from '../errors.js';
import { createDrivers as buildDrivers, type Drivers, type ProxySelection } from '../runtime/factory.js';
import { splitArgs } from '../util/argv.js';

/** The proxies `--proxy` selects. */
export const PROXY_KINDS = ['nginx', 'haproxy'] as const;

/** Options of the commands that talk to Docker and the proxy (nginx or HAProxy). */
export interface DriverOptions {
  dockerHost?: string;
  hostIp: string;
  proxy: (typeof PROXY_KINDS)[number];
  nginxConfDir: string;
  nginxListen: string;
  nginxTestCmd: string;
  nginxReloadCmd: string;
  nginxContainer?: string;
  haproxyConfig: string;
  haproxySocket: string;
  haproxyBind: string;
  haproxyCheckCmd: string;
  haproxyReloadCmd: string;
  /** Seconds. */
  haproxyDrainTimeout: number;
  /** Only when given on the command line: otherwise the repo's `prune` setting decides. */
  prune?: boolean;
  /** Apps rolled out at once (apply and run). */
  parallelism?: number;
  /** Take over a lock held on another host (apply and run). */
  force?: boolean;
}

/** `--parallelism` for the commands that apply: how many apps roll out at once, dependencies first. */
export function addApplyOptions(cmd: Command): Command {
  return cmd
    .option('--force', "take over the environment's lock when it is held by a berth on another host (berth cannot tell whether that one still runs)")
    .addOption(
    new Option('--parallelism <n>', `apps rolled out at once, in dependency waves (default ${DEFAULT_PARALLELISM})`).env('BERTH_PARALLELISM').argParser((value: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 256) throw new UsageError(`--parallelism: expected a whole number from 1 to 256, got "${value}"`);
      return n;
    }),
  );
}

export function defaultStateDir(): string {
  const base = process.env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'berth');
}

export function addDriverOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--docker-host <url>', 'Docker daemon (unix:///path or tcp://host:port); default DOCKER_HOST or the local socket').env('BERTH_DOCKER_HOST'))
    .addOption(new Option('--host-ip <ip>', 'address container ports are published on').env('BERTH_HOST_IP').default('127.0.0.1'))
    .addOption(new Option('--nginx-conf-dir <dir>', 'folder included by nginx.conf inside http {}; berth writes berth-<env>.conf there').env('BERTH_NGINX_CONF_DIR').default('/etc/nginx/conf.d'))
    .addOption(new Option('--nginx-listen <addr>', 'listen directive of the generated server blocks').env('BERTH_NGINX_LISTEN').default('80'))
    .addOption(new Option('--nginx-test-cmd <argv>', 'command that tests the nginx config (no shell)').env('BERTH_NGINX_TEST_CMD').default('nginx -t'))
    .addOption(new Option('--nginx-reload-cmd <argv>', 'command that reloads nginx (no shell)').env('BERTH_NGINX_RELOAD_CMD').default('nginx -s reload'))
    .addOption(new Option('--nginx-container <name>', 'nginx runs in this container on the Docker host: the test and reload commands run inside it (Docker exec API; no docker CLI needed)').env('BERTH_NGINX_CONTAINER'))
    .addOption(new Option('--proxy <kind>', 'the proxy berth drives').choices(PROXY_KINDS).env('BERTH_PROXY').default('nginx'))
    .addOption(new Option('--haproxy-config <file>', 'the file berth owns for the environment; HAProxy loads it after its main config (-f)').env('BERTH_HAPROXY_CONFIG').default('/etc/haproxy/berth.cfg'))
    .addOption(new Option('--haproxy-socket <path>', "HAProxy's admin socket (stats socket PATH level admin): the Runtime API").env('BERTH_HAPROXY_SOCKET').default('/run/haproxy/admin.sock'))
    .addOption(new Option('--haproxy-bind <addr>', 'bind line of the generated frontend, e.g. 127.0.0.1:8080 or ":443 ssl crt /etc/haproxy/site.pem"').env('BERTH_HAPROXY_BIND').default(':80'))
    .addOption(new Option('--haproxy-check-cmd <argv>', 'command that tests the HAProxy config (no shell; {config} is --haproxy-config)').env('BERTH_HAPROXY_CHECK_CMD').default('haproxy -c -f /etc/haproxy/haproxy.cfg -f {config}'))
    .addOption(new Option('--haproxy-reload-cmd <argv>', 'command that reloads HAProxy (no shell; master-worker: SIGUSR2 to the master)').env('BERTH_HAPROXY_RELOAD_CMD').default('systemctl reload haproxy'))
    .addOption(
      new Option('--haproxy-drain-timeout <seconds>', "longest wait for a leaving server's requests before they are cut").env('BERTH_HAPROXY_DRAIN_TIMEOUT').default(30).argParser((value: string) => {
        const n = Number(value);
        if (!Number.isFinite(n) || n < 0 || n > 3600) throw new UsageError(`--haproxy-drain-timeout: expected seconds from 0 to 3600, got "${value}"`);
        return n;
      }),
    )
    .option('--prune', "remove containers of apps that are no longer in the repo (default: the environment's prune setting in berth.yaml, true if unset)")
    .option('--no-prune', 'keep containers of apps that are no longer in the repo');
}

function argv(line: string, flag: string): string[] {
  try {
    const a = splitArgs(line);
    if (!a.length) throw new Error('empty');
    return a;
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/** The drivers the CLI options select: Docker, and nginx or HAProxy (`--proxy`). */
export function createDrivers(opts: DriverOptions, onWarning: (message: string) => void = (m) => process.stderr.write(`warning: ${m}\n`)): Drivers {
  return buildDrivers({
    runtime: { kind: 'docker', host: opts.dockerHost ?? process.env.DOCKER_HOST, hostIp: opts.hostIp },
    proxy: opts.proxy === 'haproxy' ? haproxySelection(opts, onWarning) : nginxSelection(opts, onWarning),
  });
}

function nginxSelection(opts: DriverOptions, onWarning: (message: string) => void): ProxySelection {
  return {
    kind: 'nginx',
    confDir: opts.nginxConfDir,
    listen: opts.nginxListen,
    testCmd: argv(opts.nginxTestCmd, '--nginx-test-cmd'),
    reloadCmd: argv(opts.nginxReloadCmd, '--nginx-reload-cmd'),
    ...(opts.nginxContainer && { container: opts.nginxContainer }),
    minReloadIntervalMs: 1000,
    onWarning,
  };
}

function haproxySelection(opts: DriverOptions, onWarning: (message: string) => void): ProxySelection {
  const bind = opts.haproxyBind;
  if (!bind.trim() || /[\u0000-\u001f#]/.test(bind)) throw new UsageError(`--haproxy-bind: expected an address and bind options on one line, without "#", got ${JSON.stringify(bind)}`);
  return {
    kind: 'haproxy',
    configFile: path.resolve(opts.haproxyConfig),
    socket: opts.haproxySocket,
    bind: bind.trim(),
    checkCmd: argv(opts.haproxyCheckCmd, '--haproxy-check-cmd'),
    reloadCmd: argv(opts.haproxyReloadCmd, '--haproxy-reload-cmd'),
    // Reloads start a worker and leave the old one finishing its connections: spaced like nginx's.
    minReloadIntervalMs: 1000,
    drainTimeoutMs: opts.haproxyDrainTimeout * 1000,
    onWarning,
  };
}
