import { BerthError } from '../errors.js';

export type ProblemCode =
  | 'yaml-syntax'
  | 'missing-file'
  | 'unknown-kind'
  | 'schema'
  | 'unknown-field'
  | 'duplicate-app'
  | 'duplicate-plugin'
  | 'unknown-plugin'
  | 'route-conflict'
  | 'host-port-conflict'
  | 'unknown-dependency'
  | 'dependency-cycle'
  | 'overlay-unknown-target'
  | 'overlay-unknown-environment'
  | 'overlay-failed'
  | 'secret-missing'
  | 'unknown-environment'
  | 'invalid-reference'
  | 'too-large'
  | 'policy'
  | 'nginx-directive'
  | 'symlink';

/** One thing wrong with the config repo, pointing at the line to fix. */
export interface Problem {
  code: ProblemCode;
  file: string;
  line: number;
  column: number;
  message: string;
  /** JSON pointer inside the document, when the problem is about one value. */
  pointer?: string;
  /** Environment the problem appears in, when it only appears in some. */
  env?: string;
}

/** `file:line:col  message (at /pointer)` — the format `berth validate` prints. */
export function formatProblem(p: Problem): string {
  const at = p.pointer ? ` (at ${p.pointer})` : '';
  const env = p.env ? ` [env ${p.env}]` : '';
  return `${p.file}:${p.line}:${p.column}  ${p.message}${at}${env}`;
}

export function compareProblems(a: Problem, b: Problem): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  if (a.column !== b.column) return a.column - b.column;
  return a.message < b.message ? -1 : a.message > b.message ? 1 : 0;
}

/** Render failed: nothing may be applied. Carries every problem found. */
export class ValidationError extends BerthError {
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[], env?: string) {
    const first = problems[0];
    const summary = first ? formatProblem(first) : 'invalid config';
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    super('E_VALIDATION', `config repo is invalid: ${summary}${more}`, {
      env,
      file: first?.file,
      line: first?.line,
      column: first?.column,
    });
    this.problems = problems;
  }
}
