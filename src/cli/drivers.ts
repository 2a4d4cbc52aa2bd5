import os from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { DEFAULT_PARALLELISM } from '../apply/apply.js';
import { UsageError } from '../errors.js';
import { createDrivers as buildDrivers, type Drivers } from '../runtime/factory.js';
import { splitArgs } from '../util/argv.js';

/** Options of the commands that talk to Docker and nginx. */
export interface DriverOptions {
  dockerHost?: string;
  hostIp: string;
  nginxConfDir: string;
  nginxListen: string;
  nginxTestCmd: string;
  nginxReloadCmd: string;
  nginxContainer?: string;
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

/** The drivers the CLI options select (Docker + nginx today). */
export function createDrivers(opts: DriverOptions, onWarning: (message: string) => void = (m) => process.stderr.write(`warning: ${m}\n`)): Drivers {
  return buildDrivers({
    runtime: { kind: 'docker', host: opts.dockerHost ?? process.env.DOCKER_HOST, hostIp: opts.hostIp },
    proxy: {
      kind: 'nginx',
      confDir: opts.nginxConfDir,
      listen: opts.nginxListen,
      testCmd: argv(opts.nginxTestCmd, '--nginx-test-cmd'),
      reloadCmd: argv(opts.nginxReloadCmd, '--nginx-reload-cmd'),
      ...(opts.nginxContainer && { container: opts.nginxContainer }),
      minReloadIntervalMs: 1000,
      onWarning,
    },
  });
}
