import type { CommentSync, Forge, PullRequestRef, StatusRequest } from '../types.js';

/** Where git notes live: GitSource (refs/notes/berth) in production, a Map in tests. */
export interface NotesStore {
  readNote(sha: string): Promise<string | undefined>;
  writeNote(sha: string, text: string): Promise<void>;
}

/**
 * The embedded forge of a local config repo: commit statuses as git notes in refs/notes/berth, one
 * line per context, so `git notes --ref berth show <sha>` shows them:
 *   berth/production: success — applied 3 apps (2025-01-01T12:00:00.000Z) https://berth.example/…
 * A bare local repository has no pull requests, so there is nothing to comment on: `pullRequestsFor`
 * answers none and `upsertComment` does nothing.
 */
export class GitNotesForge implements Forge {
  readonly name = 'local';
  /** Nothing is posted; GitHub's limit keeps a plan split the same way as on a forge. */
  readonly maxCommentChars = 65_536;

  constructor(
    private readonly notes: NotesStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async setStatus(status: StatusRequest): Promise<void> {
    const { sha, context, state, description, targetUrl } = status;
    const lines = ((await this.notes.readNote(sha)) ?? '').split('\n').filter((l) => l && !l.startsWith(`${context}: `));
    // berth's own descriptions are one line already (fitDescription), but this format is only sound if
    // every status is: a second line would start no context, so it would never be replaced or removed.
    lines.push(`${context}: ${state} — ${description.replaceAll(/[\r\n]+/g, ' ')} (${this.now().toISOString()})${targetUrl ? ` ${targetUrl}` : ''}`);
    await this.notes.writeNote(sha, lines.sort().join('\n') + '\n');
  }

  async pullRequestsFor(_branch: string): Promise<PullRequestRef[]> {
    return [];
  }

  async upsertComment(_number: number, _marker: string, _parts: string[]): Promise<CommentSync> {
    return { created: 0, updated: 0, deleted: 0, unchanged: 0 };
  }
}
