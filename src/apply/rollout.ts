import { waitHealthy } from '../health/gate.js';
import type { AppPlan, DesiredTarget, ReplicaRef } from '../plan/types.js';
import { serverAddressOf } from '../runtime/address.js';
import type { LiveContainer } from '../runtime/types.js';
import { replicaName, toCreateSpec } from './container-spec.js';
import type { ApplyRun } from './run.js';
import type { HookContext, Member, Phase, RolloutHooks } from './types.js';
import { plural } from '../util/text.js';

/** A failed health gate, after the rollout was undone: the previous replicas serve again. */
export class RolledBackError extends Error {
  constructor(readonly gateMessage: string) {
    super(`new version failed its health check and was rolled back (previous containers keep serving): ${gateMessage}`);
  }
}

/**
 * The steps every strategy is built from (start, gate, switch, drain, retire, roll back) over one
 * app's replicas: `ready` (desired version, healthy), `old` (previous version, serving until
 * retired) and `fresh` (started by this rollout). Strategies decide the order; this keeps the rules:
 * nothing serves before it passed its gate, old replicas are stopped (not removed) until success,
 * and a failed gate puts everything back as it was.
 */
export class RolloutContext {
  readonly app: string;
  readonly target: DesiredTarget;
  ready: Member[] = [];
  old: Member[];
  fresh: Member[] = [];
  /** What was done, for the outcome. */
  readonly done: string[] = [];
  readonly #plan: AppPlan;
  readonly #run: ApplyRun;
  readonly #stoppedOld: Member[] = [];
  readonly #usedReplicas = new Set<number>();

  constructor(run: ApplyRun, plan: AppPlan, target: DesiredTarget) {
    this.#run = run;
    this.#plan = plan;
    this.app = plan.app;
    this.target = target;
    this.old = plan.replicas.replace.map(memberOf);
  }

  /** Desired replica count. */
  get want(): number {
    return this.target.replicas;
  }

  get clock(): ApplyRun['deps']['clock'] {
    return this.#run.deps.clock;
  }

  progress(phase: Phase, message: string): void {
    this.#run.progress(this.app, phase, message);
  }

  /** Route entry first; then dead replicas go (no traffic reaches them) and unconfirmed ones are gated. */
  async prepare(): Promise<void> {
    const { route } = this.target;
    const servers = this.#run.routeOf(this.app)?.servers ?? [];
    this.#run.stageRoute(this.app, route && { app: route.app, host: route.host, path: route.path, stripPrefix: route.stripPrefix, proxyOptions: route.proxyOptions, servers });
    const { runtime } = this.#run.deps;
    for (const c of this.#plan.replicas.removeStopped) {
      this.progress('remove', `removing ${c.name} (${c.status})`);
      await runtime.remove(c.id);
      this.done.push(`removed stopped ${c.name}`);
    }
    this.ready = this.#plan.replicas.keep.map(memberOf);
    for (const c of this.#plan.replicas.verify) {
      const gate = await waitHealthy(this.target.healthCheck, memberOf(c), runtime, this.clock);
      if (gate.healthy) this.ready.push(gate.container);
      else {
        await runtime.remove(c.id);
        this.done.push(`removed unhealthy ${c.name}`);
      }
    }
    // A replica of the desired version being replaced (it fails its health check) keeps its name until retired.
    const sameVersion = this.#plan.replicas.replace.filter((r) => r.specHash === this.target.specHash);
    for (const m of [...this.ready, ...this.#plan.replicas.scaleDown, ...sameVersion]) this.#usedReplicas.add(m.replica);
    if (this.ready.length < this.want) await this.#ensureImage();
  }

  async #ensureImage(): Promise<void> {
    const { runtime, clock } = this.#run.deps;
    const image = this.target.image;
    if (await runtime.hasImage(image)) return;
    this.progress('pull', `pulling ${image}`);
    let lastShown = 0;
    await runtime.pull(image, (p) => {
      if (clock.now() - lastShown < 1000) return;
      lastShown = clock.now();
      this.progress('pull', `${p.status}${p.fraction !== undefined ? ` ${Math.round(p.fraction * 100)}%` : ''}`);
    });
  }

  /** Starts `count` new replicas and gates them all; a failed gate rolls the whole app back (throws). */
  async start(count: number): Promise<Member[]> {
    if (count <= 0) return [];
    const { runtime } = this.#run.deps;
    const batch: Member[] = [];
    const numbers: number[] = [];
    for (let i = 0; i < count; i++) {
      let replica = 0;
      while (this.#usedReplicas.has(replica)) replica++;
      this.#usedReplicas.add(replica);
      numbers.push(replica);
    }
    try {
      await this.#hook('beforeStart', numbers.map((n) => replicaName(this.target.template, n)));
    } catch (err) {
      // A hook that refuses mid-rollout leaves a half-replaced app: undo it like a failed gate.
      if (this.fresh.length || this.#stoppedOld.length) await this.rollback(`beforeStart hook refused: ${(err as Error).message}`);
      throw err;
    }
    for (const replica of numbers) {
      this.progress('start', `starting replica ${replica} (${this.target.image})`);
      const member = this.#fromLive(await runtime.run(toCreateSpec(this.target.template, replica)));
      this.fresh.push(member);
      batch.push(member);
    }
    this.progress('wait', `waiting for ${plural(count, 'replica')} to be healthy`);
    const gates = await Promise.all(batch.map((m) => waitHealthy(this.target.healthCheck, m, runtime, this.clock)));
    const failed = gates.find((g) => !g.healthy);
    if (failed && !failed.healthy) await this.rollback(failed.reason);
    this.done.push(`started ${count}`);
    return batch;
  }

  /** Re-gates fresh replicas for `seconds` (canary pauses): any failure rolls back. */
  async watch(seconds: number): Promise<void> {
    const until = this.clock.now() + seconds * 1000;
    const hc = this.target.healthCheck ? { ...this.target.healthCheck, successThreshold: 1 } : undefined;
    while (this.clock.now() < until) {
      for (const m of this.fresh) {
        const gate = await waitHealthy(hc, m, this.#run.deps.runtime, this.clock);
        if (!gate.healthy) await this.rollback(`canary ${m.name}: ${gate.reason}`);
      }
      await this.clock.sleep(Math.min(1000, Math.max(0, until - this.clock.now())));
    }
  }

  /** Sends the app's traffic to `serving` (one test + reload when it changed). */
  async switchTo(serving: Member[], weights?: ReadonlyMap<string, number>): Promise<void> {
    this.#run.setServers(this.app, serving, weights);
    if (!(await this.#run.syncProxy(this.app))) return;
    this.progress('switch', `nginx now sends traffic to ${plural(serving.length, 'replica')}`);
    this.done.push('route switched');
    await this.#hook('afterSwitch', serving.map((m) => m.name));
  }

  /** Takes `out` out of the upstream (one reload), then retires them. */
  async takeOut(out: Member[], keep: Member[]): Promise<void> {
    if (out.length === 0) return;
    this.#run.setServers(this.app, keep);
    await this.#run.syncProxy(this.app);
    await this.retire(out);
  }

  /** Replicas already out of the upstream: wait for their in-flight requests, then stop (not remove) them. */
  async retire(out: Member[]): Promise<void> {
    if (out.length === 0) return;
    const drainMs = (this.target.route?.drainSeconds ?? 0) * 1000;
    if (drainMs > 0) {
      this.progress('drain', `draining ${out.length} for ${drainMs / 1000}s`);
      await this.clock.sleep(drainMs);
    }
    for (const m of out) {
      this.progress('stop', `stopping ${m.name}`);
      await this.#run.deps.runtime.stop(m.id, m.graceSeconds);
      this.#stoppedOld.push(m);
    }
  }

  /** Old replicas restarted and gated, traffic back on them, new ones removed; then throws RolledBackError. */
  async rollback(reason: string): Promise<never> {
    this.progress('rolled-back', `health gate failed: ${reason}; rolling back`);
    await this.#restorePrevious();
    await this.#hook('onRollback', this.fresh.map((m) => m.name), reason);
    throw new RolledBackError(reason);
  }

  /**
   * A step failed for another reason than a health gate (nginx refused the route, Docker failed):
   * undone the same way, best effort: the route as nginx served it, the old replicas back, the
   * new ones removed. Returns what could not be undone.
   */
  async abandon(): Promise<string[]> {
    const problems: string[] = [];
    await this.#restorePrevious((step, err) => problems.push(`${step}: ${(err as Error).message}`));
    if (this.fresh.length) this.done.push(`removed ${plural(this.fresh.length, 'new replica')}`);
    return problems;
  }

  /** Old replicas restarted and gated, traffic back on them, new ones removed. */
  async #restorePrevious(onError?: (step: string, err: unknown) => void): Promise<void> {
    const { runtime } = this.#run.deps;
    const attempt = async (step: string, fn: () => Promise<unknown>): Promise<void> => {
      if (!onError) return void (await fn());
      await fn().catch((err: unknown) => onError(step, err));
    };
    const restored: Member[] = [];
    for (const m of this.#stoppedOld) {
      await attempt(`restart ${m.name}`, async () => {
        const again = this.#fromLive(await runtime.start(m.id), m.graceSeconds);
        const gate = await waitHealthy(this.target.healthCheck, again, runtime, this.clock);
        if (gate.healthy) restored.push(again);
      });
    }
    this.#stoppedOld.length = 0;
    this.#run.restoreRoute(this.app);
    this.#run.setServers(this.app, [...this.ready, ...this.old, ...restored]);
    await attempt('route', () => this.#run.syncProxy(this.app));
    for (const m of this.fresh) await attempt(`remove ${m.name}`, () => runtime.remove(m.id));
  }

  /** No older version to replace: start what is missing, drop extras. */
  async scaleInPlace(): Promise<void> {
    await this.start(this.want - this.ready.length);
    await this.dropExtras();
    await this.switchTo([...this.ready, ...this.fresh]);
  }

  /** Replicas of the desired version beyond the replica count leave (highest numbers first). */
  async dropExtras(): Promise<void> {
    await this.takeOut(this.#plan.replicas.scaleDown.map(memberOf), [...this.ready, ...this.fresh]);
  }

  /** Success: the old replicas were only stopped so a rollback could restart them. */
  async finish(): Promise<void> {
    for (const m of this.#stoppedOld) await this.#run.deps.runtime.remove(m.id);
    if (this.#stoppedOld.length) this.done.push(`replaced ${this.#stoppedOld.length}`);
    await this.#run.syncProxy(this.app);
  }

  #fromLive(c: LiveContainer, graceSeconds = this.target.template.stopGracePeriodSeconds): Member {
    const address = serverAddressOf(c, this.target.route?.port);
    return { id: c.id, name: c.name, replica: c.replica, ports: c.ports, graceSeconds, ...(address && { address }) };
  }

  async #hook(point: keyof RolloutHooks, replicas: string[], reason?: string): Promise<void> {
    const ctx: HookContext = { env: this.#run.env, revision: this.#run.plan.revision, app: this.app, strategy: this.target.strategy.type, replicas, ...(reason && { reason }) };
    for (const hooks of this.#run.deps.hooks ?? []) {
      try {
        await hooks[point]?.(ctx);
      } catch (err) {
        // Only a failing beforeStart stops the rollout: nothing new runs when it objects.
        if (point === 'beforeStart') throw err;
        this.#run.deps.onHookError?.(point, this.app, err);
      }
    }
  }
}

function memberOf(r: ReplicaRef): Member {
  return { id: r.id, name: r.name, replica: r.replica, ports: r.ports, graceSeconds: r.graceSeconds, ...(r.address && { address: r.address }) };
}
