import { UsageError } from '../errors.js';
import { chainSecretSources, envSecretSource, fileSecretSource, type SecretSource } from '../render/secrets.js';

/** Options every command understands; each also reads a BERTH_* environment variable. */
export interface GlobalOptions {
  repo: string;
  env?: string;
  output: 'text' | 'json' | 'yaml';
  secretsFile?: string;
  logLevel: string;
  /** validate: also require a value for every declared secret. */
  requireSecrets?: boolean;
}

export function secretSourceFor(opts: Pick<GlobalOptions, 'secretsFile'>): SecretSource {
  return opts.secretsFile ? chainSecretSources(fileSecretSource(opts.secretsFile), envSecretSource()) : envSecretSource();
}

export function requireEnv(opts: Pick<GlobalOptions, 'env'>): string {
  if (!opts.env) throw new UsageError('--env ENV is required (or set BERTH_ENV)');
  return opts.env;
}
