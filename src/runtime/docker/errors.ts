import { BerthError, type ErrorContext } from '../../errors.js';

export class DockerError extends BerthError {
  /** Worth retrying with backoff (daemon busy or restarting), as opposed to a configuration problem. */
  readonly transient: boolean;

  constructor(message: string, context: ErrorContext, cause?: unknown, transient = false, code: 'E_DOCKER' | 'E_DOCKER_UNAVAILABLE' | 'E_IMAGE' = 'E_DOCKER') {
    super(code, message, context, cause);
    this.transient = transient;
  }
}

interface RawDockerError {
  statusCode?: number;
  code?: string;
  json?: { message?: string };
  reason?: string;
  message?: string;
}

/** Sorts a raw dockerode error into a berth error that says what to do. */
export function translateDockerError(err: unknown, action: string, context: ErrorContext & { host?: string }): DockerError {
  const e = (err ?? {}) as RawDockerError;
  // dockerode puts the daemon's own words in json.message, or after "(HTTP code N) reason - ".
  const detail = (e.json?.message ?? e.message?.replace(/^\(HTTP code \d+\) [^-]*- /, '') ?? e.reason ?? String(err)).trim();
  const where = context.app ? ` for app "${context.app}"` : '';
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'EACCES') {
    return new DockerError(`cannot reach Docker at ${context.host ?? 'the default socket'} (${e.code}) while trying to ${action}; is dockerd running? set --docker-host or DOCKER_HOST`, context, err, true, 'E_DOCKER_UNAVAILABLE');
  }
  if (e.statusCode === 404 && /image/i.test(detail)) {
    return new DockerError(`image not found${where} while trying to ${action}: ${detail}; build or load it on this host, or check the tag in the app spec`, context, undefined, false, 'E_IMAGE');
  }
  if (/port is already allocated|address already in use/i.test(detail)) {
    return new DockerError(`host port in use${where}: ${detail}; another process holds it, or a pinned hostPort clashes`, context);
  }
  if (e.statusCode === 409) return new DockerError(`conflict${where} while trying to ${action}: ${detail}`, context);
  const transient = e.statusCode === undefined || e.statusCode >= 500;
  return new DockerError(`Docker failed to ${action}${where}: ${detail}`, context, undefined, transient);
}
