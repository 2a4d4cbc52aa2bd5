import { BerthError } from '../../errors.js';
import { execProvider } from './exec.js';
import { grpcProvider } from './grpc.js';
import { httpProvider } from './http.js';
import { redisProvider } from './redis.js';
import { tcpProvider } from './tcp.js';
import { BUILTIN_OWNER, type HealthCheckProvider, type RegisteredProvider } from './types.js';

export type { HealthCheckProvider, HealthCheckResult, HealthCheckTarget, RegisteredProvider } from './types.js';
export { BUILTIN_OWNER } from './types.js';

/** The providers berth ships: one per built-in `healthCheck` field. */
export const BUILTIN_PROVIDERS: readonly HealthCheckProvider[] = [httpProvider, tcpProvider, execProvider, grpcProvider, redisProvider];

/** The names of the built-in protocols (also the `healthCheck` fields that select them). */
export const BUILTIN_PROTOCOLS: readonly string[] = BUILTIN_PROVIDERS.map((p) => p.protocol);

/** What a protocol name may look like: as `healthCheck.provider.protocol` in the App schema. */
const PROTOCOL_NAME = /^[a-z][a-z0-9-]{0,39}$/;

interface Entry {
  provider: HealthCheckProvider;
  owner: string;
}

/**
 * The health-check providers of one berth process, by protocol. Built-ins are there from the
 * start; plugins add theirs at run time with `register` and take them away with what it returns
 * (when the plugin stops). A plugin may not take a built-in's name, nor another plugin's.
 */
export class HealthProviders {
  readonly #byProtocol = new Map<string, Entry>();

  constructor(builtins: readonly HealthCheckProvider[] = BUILTIN_PROVIDERS) {
    for (const p of builtins) this.#add(p, BUILTIN_OWNER);
  }

  /** Adds `provider` for `owner` (a plugin's name); returns the function that removes it again. */
  register(provider: HealthCheckProvider, owner: string): () => void {
    if (owner === BUILTIN_OWNER) throw new BerthError('E_USAGE', `"${BUILTIN_OWNER}" is not a plugin name; built-in providers are passed to the constructor`, { owner });
    this.#add(provider, owner);
    const entry = this.#byProtocol.get(provider.protocol);
    return () => {
      if (this.#byProtocol.get(provider.protocol) === entry) this.#byProtocol.delete(provider.protocol);
    };
  }

  /** The provider of `protocol`, if any is registered. */
  get(protocol: string): HealthCheckProvider | undefined {
    return this.#byProtocol.get(protocol)?.provider;
  }

  /** Every registered provider with its owner, sorted by protocol. */
  list(): RegisteredProvider[] {
    return [...this.#byProtocol.values()]
      .map(({ provider, owner }) => ({ protocol: provider.protocol, owner, ...(provider.describe && { describe: provider.describe }) }))
      .sort((a, b) => (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
  }

  /** Plugins with providers and their protocols, for messages: `mq (amqp, mqtt)`, or `none`. */
  describePlugins(): string {
    const byOwner = new Map<string, string[]>();
    for (const p of this.list()) if (p.owner !== BUILTIN_OWNER) byOwner.set(p.owner, [...(byOwner.get(p.owner) ?? []), p.protocol]);
    if (byOwner.size === 0) return 'none';
    return [...byOwner.entries()].map(([owner, protocols]) => `${owner} (${protocols.join(', ')})`).join(', ');
  }

  #add(provider: HealthCheckProvider, owner: string): void {
    const { protocol } = provider;
    if (typeof protocol !== 'string' || !PROTOCOL_NAME.test(protocol)) {
      throw new BerthError('E_USAGE', `health-check provider of ${owner} has an invalid protocol name ${JSON.stringify(protocol)}; use lower-case letters, digits and '-', starting with a letter`, { owner, protocol });
    }
    if (typeof provider.check !== 'function') throw new BerthError('E_USAGE', `health-check provider "${protocol}" of ${owner} has no check() function`, { owner, protocol });
    const existing = this.#byProtocol.get(protocol);
    if (existing) {
      const whose = existing.owner === BUILTIN_OWNER ? 'a built-in protocol' : `already provided by plugin "${existing.owner}"`;
      throw new BerthError('E_CONFLICT', `plugin "${owner}" cannot provide health-check protocol "${protocol}": it is ${whose}`, { owner, protocol, existingOwner: existing.owner });
    }
    this.#byProtocol.set(protocol, { provider, owner });
  }
}

/** The process's providers: the built-ins, plus what running plugins register. probeOnce uses it by default. */
export const healthProviders = new HealthProviders();
