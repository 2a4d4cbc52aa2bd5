import { runLocal as run, type CommandRunner } from '../command.js';

export type { CommandResult, CommandRunner } from '../command.js';

/** Runs a check or reload command as a local process (no shell, 30 s at most). */
export const runLocal: CommandRunner = (argv) => run(argv, 'is HAProxy installed and on PATH?');

/** argv with `{config}` replaced by the config file in every argument. */
export function withConfig(argv: readonly string[], configFile: string): string[] {
  return argv.map((a) => a.replaceAll('{config}', configFile));
}
