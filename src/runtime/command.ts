import { execFile } from 'node:child_process';

export interface CommandResult {
  ok: boolean;
  output: string;
}

/** Runs a proxy's test, check or reload command: a local process by default (runLocal), or inside a container (factory's execIn). */
export type CommandRunner = (argv: string[]) => Promise<CommandResult>;

/**
 * Runs argv as a local process, without a shell, for at most 30 s; the output is stderr then stdout.
 * A command that is not installed says so, with `hint` (what to install or use instead).
 */
export function runLocal(argv: string[], hint = 'is it installed and on PATH?'): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (!cmd) return resolve({ ok: false, output: 'empty command' });
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') return resolve({ ok: false, output: `${cmd}: command not found (${hint})` });
      resolve({ ok: !err, output: `${stderr}${stdout}`.trim() || (err?.message ?? '') });
    });
  });
}
