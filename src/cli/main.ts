import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { BerthError } from '../errors.js';
import { formatProblem, ValidationError } from '../render/problems.js';
import { applyCommand } from './commands/apply.js';
import { planCommand } from './commands/plan.js';
import { renderCommand } from './commands/render.js';
import { validateCommand } from './commands/validate.js';
import type { GlobalOptions } from './context.js';
import { addDriverOptions, type DriverOptions } from './drivers.js';
import { consoleOut, paint, type Out } from './output.js';

type Action = (opts: GlobalOptions & DriverOptions, out: Out) => Promise<number>;

/** Builds the `berth` command tree. Each action's exit code lands in `exit.code`. */
export function buildProgram(out: Out, exit: { code: number }): Command {
  const program = new Command('berth')
    .description('Declarative GitOps reconciler for Docker hosts')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.print(s.trimEnd()), writeErr: (s) => out.info(s.trimEnd()) });

  const global = (cmd: Command): Command =>
    cmd
      .addOption(new Option('--repo <dir>', 'config repo directory').env('BERTH_REPO').default('.'))
      .addOption(new Option('--env <env>', 'environment (from berth.yaml)').env('BERTH_ENV'))
      .addOption(new Option('--output <format>', 'output format').choices(['text', 'json', 'yaml']).env('BERTH_OUTPUT').default('text'))
      .addOption(new Option('--secrets-file <file>', 'YAML/JSON file of secret name: value (also read: BERTH_SECRET_<NAME> variables)').env('BERTH_SECRETS_FILE'))
      .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']).env('BERTH_LOG_LEVEL').default('info'));

  const run = (action: Action) => async (_: unknown, cmd: Command) => {
    exit.code = await action(cmd.opts<GlobalOptions & DriverOptions>(), out);
  };

  global(program.command('validate'))
    .description('render every environment (or --env) and print every problem as file:line:col  message; exit 1 on any')
    .option('--require-secrets', 'also fail when a declared secret has no value in the secret source')
    .action(run(validateCommand));
  global(program.command('render'))
    .description('print the desired state of one environment (secrets masked); --output json|yaml')
    .action(run(renderCommand));
  addDriverOptions(global(program.command('plan')))
    .description('show what apply would change against live Docker and nginx state; exit 0 no changes, 2 changes, 1 error')
    .action(run(planCommand));
  addDriverOptions(global(program.command('apply')))
    .description('plan and apply once with health-gated updates and live progress; exit 0 succeeded, 1 failed, 3 rolled back')
    .action(run(applyCommand));
  return program;
}

/** Runs the CLI; returns the process exit code. Errors are printed, never thrown. */
export async function main(argv: string[], out: Out = consoleOut()): Promise<number> {
  const exit = { code: 0 };
  try {
    await buildProgram(out, exit).parseAsync(argv);
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    if (err instanceof ValidationError) {
      for (const p of err.problems) out.print(formatProblem(p));
      out.info(paint(out, 'red', `✖ ${err.problems.length} problem(s); nothing was applied`));
      return 1;
    }
    if (err instanceof BerthError) {
      out.info(paint(out, 'red', `error [${err.code}]: ${err.message}`));
      return 1;
    }
    out.info(paint(out, 'red', `unexpected error (a bug in berth, please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
    return 70;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv);
}
