import type { LiveState, ProxyDriver, RuntimeDriver } from './types.js';

/** Live state of one environment: berth's containers (one list call) and the proxy config berth last wrote. */
export async function observe(env: string, runtime: RuntimeDriver, proxy: ProxyDriver): Promise<LiveState> {
  const [containers, proxyConfig] = await Promise.all([runtime.list(env), proxy.read(env)]);
  containers.sort((a, b) => (a.app < b.app ? -1 : a.app > b.app ? 1 : a.replica - b.replica || a.created - b.created));
  return { env, containers, proxy: proxyConfig };
}
