import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GitNotesForge, type NotesStore } from '../../src/forge/local/git-notes.js';
import { GitSource } from '../../src/source/git.js';

function memoryNotes(): NotesStore & { notes: Map<string, string> } {
  const notes = new Map<string, string>();
  return { notes, readNote: async (sha) => notes.get(sha), writeNote: async (sha, text) => void notes.set(sha, text) };
}

const SHA = 'c'.repeat(40);
const at = () => new Date('2025-03-01T10:00:00.000Z');

describe('local forge (git notes)', () => {
  it('keeps one line per context, replaced on each status, with the target URL when there is one', async () => {
    const store = memoryNotes();
    const forge = new GitNotesForge(store, at);
    await forge.setStatus({ sha: SHA, context: 'berth/production', state: 'pending', description: 'applying 2 apps' });
    await forge.setStatus({ sha: SHA, context: 'berth/production/drift', state: 'failure', description: 'web: 1 replica\nmissing' });
    await forge.setStatus({ sha: SHA, context: 'berth/production', state: 'success', description: 'applied 2 apps', targetUrl: 'https://berth.example.com/api/v1/status' });
    assert.equal(
      store.notes.get(SHA),
      'berth/production/drift: failure — web: 1 replica missing (2025-03-01T10:00:00.000Z)\n' + 'berth/production: success — applied 2 apps (2025-03-01T10:00:00.000Z) https://berth.example.com/api/v1/status\n',
    );
  });

  it('writes refs/notes/berth in a real repository: git notes shows one line per context, the latest status each', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-notes-'));
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } });
    git('init', '-q', '-b', 'main');
    writeFileSync(path.join(dir, 'berth.yaml'), 'apiVersion: berth/v1\n');
    git('add', '.');
    git('commit', '-q', '-m', 'init');
    const sha = git('rev-parse', 'HEAD').trim();
    const forge = new GitNotesForge(new GitSource(dir, { stateDir: mkdtempSync(path.join(os.tmpdir(), 'berth-state-')) }), at);
    await forge.setStatus({ sha, context: 'berth/staging', state: 'success', description: 'in sync: nothing to change' });
    assert.equal(git('notes', '--ref', 'berth', 'show', sha), 'berth/staging: success — in sync: nothing to change (2025-03-01T10:00:00.000Z)\n');
    await forge.setStatus({ sha, context: 'berth/production', state: 'pending', description: 'applying 2 apps' });
    await forge.setStatus({ sha, context: 'berth/production', state: 'failure', description: 'api: health check failed' });
    assert.equal(
      git('notes', '--ref', 'berth', 'show', sha),
      'berth/production: failure — api: health check failed (2025-03-01T10:00:00.000Z)\n' + 'berth/staging: success — in sync: nothing to change (2025-03-01T10:00:00.000Z)\n',
    );
  });
});
