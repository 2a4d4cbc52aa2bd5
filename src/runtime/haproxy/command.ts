import { execFile } from 'node:child_process';

export interface CommandResult {
  ok: boolean;
  output: string;
}

/** Runs a check or reload command: a local process by default (see runLocal). */
export type CommandRunner = (argv: string[]) => Promise<CommandResult>;

/** Runs argv as a local process, without a shell, for at most 30 s; the output is stderr then stdout. */
export function runLocal(argv: string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (!cmd) return resolve({ ok: false, output: 'empty command' });
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') return resolve({ ok: false, output: `${cmd}: command not found (is HAProxy installed and on PATH?)` });
      resolve({ ok: !err, output: `${stderr}${stdout}`.trim() || (err?.message ?? '') });
    });
  });
}

/** argv with `{config}` replaced by the config file in every argument. */
export function withConfig(argv: readonly string[], configFile: string): string[] {
  return argv.map((a) => a.replaceAll('{config}', configFile));
}
