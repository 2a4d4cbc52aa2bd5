import type { GitSource } from '../../source/git.js';
import type { CommitState, CommitStatusReporter } from '../types.js';

/**
 * Commit statuses as git notes (refs/notes/berth) in a local config repo, one line per context:
 *   git notes --ref berth show <sha>
 */
export class GitNotesReporter implements CommitStatusReporter {
  readonly name = 'git-notes';

  constructor(
    private readonly git: GitSource,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async report(sha: string, context: string, state: CommitState, description: string): Promise<void> {
    const lines = ((await this.git.readNote(sha)) ?? '').split('\n').filter((l) => l && !l.startsWith(`${context}: `));
    lines.push(`${context}: ${state} — ${description} (${this.now().toISOString()})`);
    await this.git.writeNote(sha, lines.sort().join('\n') + '\n');
  }
}
