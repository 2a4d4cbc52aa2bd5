import { parseGiteaWebhook } from './gitea/webhook.js';
import { parseGitHubWebhook } from './github/webhook.js';
import { parseGitLabWebhook } from './gitlab/webhook.js';
import type { RemoteForgeName, WebhookParser } from './types.js';

/**
 * One parser per remote forge, served at POST /api/v1/webhooks/<forge> (the local forge sends no
 * webhooks: berth watches its refs instead). A new forge is a folder and a line here.
 */
export const WEBHOOK_PARSERS: Record<RemoteForgeName, WebhookParser> = {
  github: parseGitHubWebhook,
  gitea: parseGiteaWebhook,
  gitlab: parseGitLabWebhook,
};

/** True when `name` is a forge with a webhook parser. */
export function isWebhookForge(name: string): name is RemoteForgeName {
  return Object.hasOwn(WEBHOOK_PARSERS, name);
}
