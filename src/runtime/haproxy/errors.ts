import { BerthError, type ErrorContext } from '../../errors.js';

/**
 * HAProxy (or berth on its behalf) refused the config: the old one keeps serving. Its code is the
 * one ProxyDriver names for a refused config, E_NGINX_CONFIG, so apply isolates the app at fault.
 */
export class HaproxyConfigError extends BerthError {
  constructor(message: string, context: ErrorContext) {
    super('E_NGINX_CONFIG', message, context);
  }
}

/** A command or the Runtime API failed (not a refusal of the config): ProxyDriver's E_NGINX_COMMAND. */
export class HaproxyCommandError extends BerthError {
  constructor(message: string, context: ErrorContext, cause?: unknown) {
    super('E_NGINX_COMMAND', message, context, cause);
  }
}
