import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { BerthError, UsageError } from '../errors.js';
import { formatProblem, ValidationError } from '../render/problems.js';
import { VERSION } from '../version.js';
import { applyCommand } from './commands/apply.js';
import { driftCommand } from './commands/drift.js';
import { planCommand } from './commands/plan.js';
import { promoteCommand, type PromoteOptions } from './commands/promote.js';
import { renderCommand } from './commands/render.js';
import { rollbackCommand, type RollbackOptions } from './commands/rollback.js';
import { validateCommand } from './commands/validate.js';
import type { GlobalOptions } from './context.js';
import { addApplyOptions, addDriverOptions, defaultStateDir } from './drivers.js';
import { addForgeOptions } from './forge-options.js';
import { historyCommand, runCommand, statusCommand, type RunOptions } from './commands/run.js';
import { consoleOut, paint, type Out } from './output.js';
import { pluginDirOption } from './plugins.js';
import { pluginsCommand, type PluginsOptions } from './commands/plugins.js';

/** Exit code of a usage error (a bad option or value): sysexits' EX_USAGE, apart from plan's 2 ("changes"). */
export const EXIT_USAGE = 64;

/** Builds the `berth` command tree. Each action's exit code lands in `exit.code`. */
export function buildProgram(out: Out, exit: { code: number }): Command {
  const program = new Command('berth')
    .description('Declarative GitOps reconciler for Docker hosts')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.print(s.trimEnd()), writeErr: (s) => out.info(s.trimEnd()) });

  const global = (cmd: Command): Command =>
    cmd
      .addOption(new Option('--repo <dir|url>', 'config repo: a directory, a local Git repository or an HTTP(S) Git URL').env('BERTH_REPO').default('.'))
      .addOption(new Option('--env <env>', 'environment (from berth.yaml)').env('BERTH_ENV'))
      .addOption(new Option('--output <format>', 'output format').choices(['text', 'json', 'yaml']).env('BERTH_OUTPUT').default('text'))
      .addOption(new Option('--secrets-file <file>', 'YAML/JSON file of secret name: value (also read: BERTH_SECRET_<NAME> variables)').env('BERTH_SECRETS_FILE'))
      .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']).env('BERTH_LOG_LEVEL').default('info'))
      .addOption(new Option('--ref <ref>', 'branch, tag or commit to read (Git repositories); default: the environment\'s branch, else HEAD').env('BERTH_REF'))
      .addOption(new Option('--state-dir <dir>', 'where berth keeps locks, history and clones').env('BERTH_STATE_DIR').default(defaultStateDir()))
      .addOption(new Option('--git-token <token>', 'token for HTTP(S) Git remotes (never logged)').env('BERTH_GIT_TOKEN'))
      .addOption(pluginDirOption())
      .addOption(new Option('--git-username <name>', 'username sent with --git-token').env('BERTH_GIT_USERNAME'));

  const run =
    <O extends GlobalOptions>(action: (opts: O, out: Out) => Promise<number>) =>
    async (_: unknown, cmd: Command): Promise<void> => {
      exit.code = await action(cmd.opts<O>(), out);
    };

  global(program.command('validate'))
    .description('render every environment (or --env) and print every problem as file:line:col  message; exit 1 on any')
    .option('--require-secrets', 'also fail when a declared secret has no value in the secret source')
    .action(run(validateCommand));
  global(program.command('render'))
    .description('print the desired state of one environment (secrets masked); --output json|yaml')
    .action(run(renderCommand));
  addForgeOptions(addDriverOptions(global(program.command('plan'))))
    .description("show what apply would change against live Docker and nginx state (--ref BRANCH: what merging that branch into --env's would change); exit 0 no changes, 2 changes, 1 error")
    .option('--prune-environment', 'plan the retirement of --env, which berth.yaml no longer defines: every container and route of it removed')
    .option('--post', 'also post the plan to the forge: status <context>/plan on the branch head, and one comment per open pull request of the branch (updated in place)')
    .action(run(planCommand));
  addDriverOptions(global(program.command('drift')))
    .description('compare live Docker and nginx state with the revision berth applied (from --state-dir), app by app, and say why; exit 0 no drift, 2 drift, 1 error')
    .action(run(driftCommand));
  addForgeOptions(addApplyOptions(addDriverOptions(global(program.command('apply')))))
    .description('plan and apply once with health-gated updates and live progress; exit 0 succeeded, 1 failed, 3 rolled back')
    .option('--plan <file>', 'apply a plan saved with `berth plan --output json`; refused when live state or the revision changed since')
    .option('--prune-environment', 'retire --env, which berth.yaml no longer defines: remove every container and route of it and its nginx file (needs --plan FILE or --yes)')
    .option('--yes', 'confirm --prune-environment without a saved plan')
    .action(run(applyCommand));
  addForgeOptions(addApplyOptions(addDriverOptions(global(program.command('run')))))
    .description('the controller: watch the repo (poll, local refs, webhooks), reconcile, keep history, serve the API and metrics')
    .addOption(new Option('--listen <addr>', 'API address').env('BERTH_LISTEN').default('127.0.0.1:7654'))
    .addOption(new Option('--interval <duration>', 'poll interval (±10 % jitter)').env('BERTH_INTERVAL').default('60s'))
    .addOption(new Option('--webhook-secret <secret>', 'HMAC secret (GitHub, Gitea) or token (GitLab) for push webhooks').env('BERTH_WEBHOOK_SECRET'))
    .addOption(new Option('--api-token <token>', 'bearer token for mutating API endpoints').env('BERTH_API_TOKEN'))
    .addOption(new Option('--resync-cron <expr>', 'cron expression for periodic full resyncs').env('BERTH_RESYNC_CRON'))
    .addOption(new Option('--resync-timezone <tz>', 'timezone of --resync-cron (IANA name)').env('BERTH_RESYNC_TIMEZONE'))
    .action(run<RunOptions>(runCommand));
  global(program.command('status'))
    .description('sync status and health per app (from a running controller, else the state dir)')
    .addOption(new Option('--server <url>', 'controller API').env('BERTH_SERVER').default('http://127.0.0.1:7654'))
    .action(run(statusCommand));
  global(program.command('history'))
    .description('recorded reconciles, newest first (from a running controller, else the state dir)')
    .addOption(new Option('--server <url>', 'controller API').env('BERTH_SERVER').default('http://127.0.0.1:7654'))
    .addOption(new Option('--limit <n>', 'how many').default('20'))
    .action(run(historyCommand));
  global(program.command('plugins'))
    .description('list the plugins berth can run (built-in, --plugin-dir, npm packages) with their integrity digests; with --env, the Plugin documents that enable them and their state in the controller at --server')
    .addOption(new Option('--server <url>', 'controller API').env('BERTH_SERVER').default('http://127.0.0.1:7654'))
    .action(run<PluginsOptions>(pluginsCommand));
  global(program.command('rollback'))
    .description("revert commits on --env's branch (from berth.yaml at HEAD) and push them; berth then converges to the revert as to any commit")
    .option('--to <sha>', 'revert every commit after this one on the branch (first-parent history), newest first, one revert commit each')
    .option('--last', 'revert the newest commit of the branch (the default)')
    .addOption(new Option('--author <author>', 'author and committer of the revert commits, "Name <email>"').env('BERTH_AUTHOR'))
    .action(run<RollbackOptions>(rollbackCommand));
  global(program.command('promote'))
    .description("merge FROM's branch into TO's (fast-forward when it can) and push, once FROM runs its branch's head Synced and Healthy; a conflict changes nothing")
    .argument('<from>', 'environment to promote (its branch is merged)')
    .argument('<to>', 'environment to promote into')
    .option('--force', 'promote even when FROM is not Synced and Healthy at its branch head, or its status is unknown')
    .addOption(new Option('--from-server <url>', "FROM's controller API (its status); default: FROM's status in --state-dir").env('BERTH_FROM_SERVER'))
    .addOption(new Option('--author <author>', 'author and committer of a merge commit, "Name <email>"').env('BERTH_AUTHOR'))
    .action(async (from: string, to: string, _: unknown, cmd: Command) => {
      exit.code = await promoteCommand(from, to, cmd.opts<PromoteOptions>(), out);
    });
  return program;
}

/**
 * A BERTH_ variable set to the empty string counts as unset, as a flag not given: container stacks
 * (compose's `${VAR:-}`) pass optional settings that way. Commander would read '' as a value.
 */
export function dropEmptyBerthVariables(env: NodeJS.ProcessEnv = process.env): void {
  for (const [name, value] of Object.entries(env)) if (name.startsWith('BERTH_') && value === '') delete env[name];
}

/** Runs the CLI; returns the process exit code. Errors are printed, never thrown. */
export async function main(argv: string[], out: Out = consoleOut()): Promise<number> {
  const exit = { code: 0 };
  dropEmptyBerthVariables();
  try {
    await buildProgram(out, exit).parseAsync(argv);
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    if (err instanceof ValidationError) {
      for (const p of err.problems) out.print(formatProblem(p));
      out.info(paint(out, 'red', `✖ ${err.problems.length} problem(s); nothing was applied`));
      return 1;
    }
    if (err instanceof UsageError) {
      out.info(paint(out, 'red', `error: ${err.message}`));
      return EXIT_USAGE;
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
