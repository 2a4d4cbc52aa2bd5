import { parseGiteaWebhook } from './gitea/webhook.js';
import { parseGitHubWebhook } from './github/webhook.js';
import { parseGitLabWebhook } from './gitlab/webhook.js';
import type { WebhookParser } from './types.js';

/** The forges that send webhooks (the local forge has none: berth watches its refs instead). */
export type WebhookForge = 'github' | 'gitea' | 'gitlab';

/** One parser per forge, served at POST /api/v1/webhooks/<forge>. A new forge is a folder and a line here. */
export const WEBHOOK_PARSERS: Record<WebhookForge, WebhookParser> = {
  github: parseGitHubWebhook,
  gitea: parseGiteaWebhook,
  gitlab: parseGitLabWebhook,
};

export function isWebhookForge(name: string): name is WebhookForge {
  return Object.hasOwn(WEBHOOK_PARSERS, name);
}
