/**
 * berth's error classes. Each carries a stable `code` (tests and callers branch on it,
 * never on message text), structured context, and the underlying `cause`.
 */

export type ErrorCode =
  | 'E_VALIDATION'
  | 'E_SOURCE'
  | 'E_DOCKER'
  | 'E_DOCKER_UNAVAILABLE'
  | 'E_IMAGE'
  | 'E_NGINX_CONFIG'
  | 'E_NGINX_COMMAND'
  | 'E_LOCKED'
  | 'E_USAGE'
  | 'E_GIT'
  | 'E_PLAN_STALE'
  | 'E_FORGE'
  | 'E_PLUGIN'
  | 'E_PLUGIN_STATE'
  | 'E_CONFLICT'
  | 'E_PUSH_REJECTED'
  | 'E_WORKTREE'
  | 'E_REF';

export interface ErrorContext {
  file?: string;
  line?: number;
  column?: number;
  pointer?: string;
  app?: string;
  env?: string;
  revision?: string;
  [key: string]: unknown;
}

/** Base class: a message a user can act on, a code, context and the cause. */
export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, cause?: unknown) {
    super(cause instanceof Error ? `${message}; caused by ${cause.message}` : message, { cause });
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

export class UsageError extends BerthError {
  constructor(message: string, context: ErrorContext = {}) {
    super('E_USAGE', message, context);
  }
}

export class SourceError extends BerthError {
  constructor(message: string, context: ErrorContext = {}, cause?: unknown) {
    super('E_SOURCE', message, context, cause);
  }
}
