import type { Problem } from './problems.js';
import type { RevisionRef } from '../source/types.js';
import type { NginxDirectiveValue } from './nginx-directives.js';
import type { SecretValue } from './secrets.js';

/** The flapping guard: at most `heals` heals of one app within `windowSeconds`. */
export interface HealLimit {
  heals: number;
  windowSeconds: number;
}

/** `healLimit` when berth.yaml does not set one: 5 heals of an app per 10 minutes. */
export const DEFAULT_HEAL_LIMIT: HealLimit = { heals: 5, windowSeconds: 600 };

export interface EnvironmentConfig {
  branch: string;
  selfHeal: boolean;
  prune: boolean;
  /** Flapping guard for selfHeal and health-check replacements (DEFAULT_HEAL_LIMIT when unset). */
  healLimit?: HealLimit;
  /** `retired: true`: the environment's desired state is nothing; berth removes its containers, routes and proxy file. */
  retired?: boolean;
  /** Glob patterns of branches whose pushes are planned against this environment and the plan posted (forge). */
  previewBranches?: string[];
  /** What the environment's apps may do beyond running containers (berth.yaml `policy`), defaults filled in. */
  policy: RepoPolicy;
}

/** The repo policy of one environment (berth.yaml `policy`, top level and per environment). */
export interface RepoPolicy {
  /** Host directories (each with everything below) that may be bind-mounted. */
  hostPaths: string[];
  privileged: boolean;
  /** Capabilities apps may add. */
  capabilities: string[];
  /** Allowed image prefixes; undefined: any image. */
  images?: string[];
  /** nginx directives allowed beyond the built-in list. */
  nginxDirectives: string[];
  /** Host ports that may be pinned, as inclusive ranges. */
  hostPorts: [number, number][];
}

/** The policy when berth.yaml sets none: no host paths, nothing privileged, unprivileged host ports, any image. */
export const DEFAULT_POLICY: RepoPolicy = { hostPaths: [], privileged: false, capabilities: [], nginxDirectives: [], hostPorts: [[1024, 65535]] };

export interface RepositoryConfig {
  environments: Record<string, EnvironmentConfig>;
  /** Declared secret names → description. Values never live in the repo. */
  secrets: Record<string, string>;
}

export interface PortSpec {
  name?: string;
  containerPort: number;
  hostPort?: number;
  protocol: 'tcp' | 'udp';
}

/** How a replica's health is checked: exactly one protocol field, then the thresholds. */
export interface HealthCheckSpec {
  http?: { path: string; port: number; expectStatus?: number[] };
  tcp?: { port: number };
  exec?: { command: string[] };
  /** grpc.health.v1.Health/Check on a container port; `service` "" asks about the server as a whole. */
  grpc?: { port: number; service: string };
  /** Redis PING on a container port, after AUTH with the resolved `password.secretRef` when set. */
  redis?: { port: number; password?: SecretValue };
  /** A protocol a plugin provides; render cannot know it, the probe looks it up when it runs. */
  provider?: { protocol: string; port?: number; config: Record<string, unknown> };
  intervalSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
  successThreshold: number;
  startPeriodSeconds: number;
  timeoutTotalSeconds: number;
}

export interface RouteSpec {
  host: string;
  path: string;
  port?: number;
  stripPrefix: boolean;
  drainSeconds: number;
  nginx?: Record<string, NginxDirectiveValue>;
}

export type StrategyType = 'rolling' | 'recreate' | 'blue-green' | 'canary';

export interface StrategySpec {
  type: StrategyType;
  maxSurge: number;
  maxUnavailable: number;
  steps?: { weight: number; pauseSeconds: number }[];
}

export interface VolumeSpec {
  source: string;
  target: string;
  readOnly: boolean;
}

export type EnvValue = string | SecretValue;

/** An app's spec after overlays, defaults and secret resolution. */
export interface RenderedSpec {
  image: string;
  replicas: number;
  command?: string[];
  args?: string[];
  workingDir?: string;
  user?: string;
  env: Record<string, EnvValue>;
  ports: PortSpec[];
  resources?: { cpu?: string; memory?: string };
  volumes: VolumeSpec[];
  restartPolicy: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  stopGracePeriodSeconds: number;
  init: boolean;
  privileged?: boolean;
  capAdd?: string[];
  healthCheck?: HealthCheckSpec;
  route?: RouteSpec;
  strategy: StrategySpec;
  dependsOn: string[];
  scaling?: { min?: number; max?: number; schedule?: { cron: string; replicas: number; timezone?: string }[] };
}

export interface DesiredApp {
  name: string;
  labels: Record<string, string>;
  spec: RenderedSpec;
  /** Stable hash of the container-defining fields (secrets by digest): equal hash ⇔ same container. */
  specHash: string;
  /** Repo file the app came from, and the overlays applied to it, in order. */
  sources: string[];
  /** The replicas the repo says, when a scaler plugin set spec.replicas to another count. */
  scaledFrom?: number;
}

/** One enabled plugin of the environment (a `kind: Plugin` document), its config validated. */
export interface PluginConfig {
  /** metadata.name */
  name: string;
  type?: 'event-handler' | 'health-check' | 'load-balancer' | 'metrics-exporter' | 'scaler' | 'lifecycle-hook' | 'message-queue';
  /** The plugin's manifest name. */
  use: string;
  /** Validated against the plugin's schema, defaults filled; `{ secretRef }` values are SecretValues. */
  config: Record<string, unknown>;
  file: string;
  priority: number;
  required: boolean;
  timeoutSeconds: number;
  isolation: 'inline' | 'worker';
  memoryLimitMb: number;
  integrity?: string;
  /** Names (metadata.name) of the enabled plugins this one starts after. */
  after: string[];
  /** What is wrong with its document (unknown plugin, config against its schema, dependencies): it cannot start. */
  problems?: Problem[];
}

/** What one environment should look like: the output of render, input of plan. */
export interface DesiredState {
  environment: string;
  settings: EnvironmentConfig;
  revision: RevisionRef;
  /** Identity of the revision: its commit sha, or a digest of a plain directory's files. */
  revisionKey: string;
  /** Sorted by name. */
  apps: DesiredApp[];
  plugins: PluginConfig[];
  /** Declared secrets with no value in the secret source (only when render allowed it, for previews). */
  unresolvedSecrets: string[];
}
