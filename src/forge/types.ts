/** Commit-status states berth reports (forges map them to their own words). */
export type CommitState = 'pending' | 'success' | 'failure' | 'error';

/** Sets a status on a commit of the config repo: git notes, or a forge's status API. */
export interface CommitStatusReporter {
  readonly name: string;
  report(sha: string, context: string, state: CommitState, description: string): Promise<void>;
}
