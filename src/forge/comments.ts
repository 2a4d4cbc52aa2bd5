import { ForgeError } from './errors.js';
import type { CommentSync, Forge, ForgeName } from './types.js';

/** One comment on a pull request, as the forge lists it. */
export interface ForgeComment {
  id: number;
  body: string;
  /** Who wrote it, named as `self` names the token's user (a login; GitLab: the user id). */
  author: string;
}

/** The comment calls of one pull request on one forge: what `syncComments` needs, nothing more. */
export interface CommentApi {
  readonly forge: ForgeName;
  /** The largest body the forge takes, in characters. */
  readonly maxChars: number;
  /** The user the token acts as: only its comments can be berth's. */
  self(): Promise<string>;
  /** Every comment of the pull request (all pages). */
  list(): Promise<ForgeComment[]>;
  create(body: string): Promise<void>;
  update(id: number, body: string): Promise<void>;
  remove(id: number): Promise<void>;
}

/** What a forge client supplies for pull request comments: the token's user, and the four calls on pull request `number`. */
export interface CommentCalls {
  self(): Promise<string>;
  list(number: number): Promise<ForgeComment[]>;
  create(number: number, body: string): Promise<void>;
  update(number: number, id: number, body: string): Promise<void>;
  remove(number: number, id: number): Promise<void>;
}

/**
 * `Forge.upsertComment` from a client's comment calls: the sync is the same on every forge. The
 * token's user is asked for once and kept; a failed lookup is asked again on the next sync.
 */
export function upsertWith(forge: ForgeName, maxChars: number, calls: CommentCalls): Forge['upsertComment'] {
  let self: Promise<string> | undefined;
  const selfOnce = (): Promise<string> => {
    self ??= calls.self().catch((err: unknown) => {
      self = undefined;
      throw err;
    });
    return self;
  };
  return (number, marker, parts) =>
    syncComments(
      { forge, maxChars, self: selfOnce, list: () => calls.list(number), create: (body) => calls.create(number, body), update: (id, body) => calls.update(number, id, body), remove: (id) => calls.remove(number, id) },
      marker,
      parts,
    );
}

/** The hidden first line of part `index` (1-based) of berth's comment `marker`. */
export function partHeader(marker: string, index: number): string {
  return `<!-- ${marker} part ${index} -->\n`;
}

const HEADER = /^<!-- (.*) part (\d+) -->\r?\n/;

/** Forges may hand a body back with CRLF line ends or without its trailing newline: neither is a change. */
function same(a: string, b: string): boolean {
  const norm = (s: string): string => s.replaceAll('\r\n', '\n').trimEnd();
  return norm(a) === norm(b);
}

/**
 * Makes a pull request carry exactly `parts` as berth's comments marked `marker`: part i is found by
 * its hidden first line and updated in place only when its text changed; missing parts are created;
 * surplus parts (the plan got shorter) and duplicates (two berths raced) are deleted. Only comments
 * the token's own user wrote count: anyone can post a comment that starts with the marker, and
 * berth must neither try to edit it nor delete its own real part as that comment's duplicate.
 * A part longer than the forge takes is refused before anything is sent: splitting is the caller's job.
 */
export async function syncComments(api: CommentApi, marker: string, parts: readonly string[]): Promise<CommentSync> {
  if (/-->|\r|\n/.test(marker)) throw new ForgeError(`${api.forge}: comment marker ${JSON.stringify(marker)} may not contain "-->" or a line break`, { forge: api.forge, operation: 'sync comments' }, { transient: false });
  const bodies = parts.map((part, i) => partHeader(marker, i + 1) + part);
  bodies.forEach((body, i) => {
    if (body.length > api.maxChars) {
      throw new ForgeError(`${api.forge}: comment part ${i + 1} has ${body.length} characters; the forge takes at most ${api.maxChars}: split the text into more parts`, { forge: api.forge, operation: 'sync comments', part: i + 1 }, { transient: false });
    }
  });

  const self = await api.self();
  const existing = new Map<number, ForgeComment>();
  const surplus: ForgeComment[] = [];
  for (const comment of await api.list()) {
    const m = HEADER.exec(comment.body);
    if (!m || m[1] !== marker || comment.author !== self) continue;
    const index = Number(m[2]);
    if (index >= 1 && index <= bodies.length && !existing.has(index)) existing.set(index, comment);
    else surplus.push(comment);
  }

  const result: CommentSync = { created: 0, updated: 0, deleted: 0, unchanged: 0 };
  for (const [i, body] of bodies.entries()) {
    const current = existing.get(i + 1);
    if (!current) {
      await api.create(body);
      result.created++;
    } else if (same(current.body, body)) {
      result.unchanged++;
    } else {
      await api.update(current.id, body);
      result.updated++;
    }
  }
  for (const comment of surplus) {
    await api.remove(comment.id);
    result.deleted++;
  }
  return result;
}
