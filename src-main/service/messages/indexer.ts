/**
 * Turns what is on disk into index rows: one message at a time (watcher, purge, writes) or the
 * whole directory (rescan on start, `messages.rescan`), reconciling additions, changes and removals
 * made by other instances while this one was closed.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RescanSummary } from '../../../src-shared/domain/message';
import { nowIso, type Store, type Tx } from '../db/store';
import {
  groupTopLevel,
  linksInPlaceOfMessage,
  messageFileOf,
  messagePath,
  ownerOnDisk,
  readFileNoFollow,
  readMessageOnDisk,
  readSidecar,
  type MessageOnDisk,
} from './directory';
import { parseMessage, type ParsedMessage } from './parse';
import { PARSE_OFF_THREAD_BYTES, parseXmlOffThread } from './parse-worker';
import { findMessageRow, upsertMessageRow, type MessageRow } from './store';

/** A message file larger than this is not parsed (indexed as unparseable, with the reason). */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

const iso = (ms: number) => new Date(ms).toISOString();

/** The message file when it is XML large enough to be parsed off the main thread (see parse-worker.ts). */
function largeXmlFile(disk: MessageOnDisk): string | undefined {
  const mf = messageFileOf(disk);
  const f = mf && disk.files.find((x) => x.rel === mf.rel);
  if (!mf || !f || mf.format !== 'xml' || f.size < PARSE_OFF_THREAD_BYTES || f.size > MAX_MESSAGE_BYTES) return undefined;
  return linksInPlaceOfMessage(disk).length ? undefined : mf.rel;
}

/** Parses a large XML message file on the worker thread; undefined for the others (`buildRow` reads them). */
export async function parseLargeMessage(root: string, disk: MessageOnDisk): Promise<ParsedMessage | undefined> {
  const rel = largeXmlFile(disk);
  if (!rel) return undefined;
  let content: string;
  try {
    content = readFileNoFollow(path.join(root, rel));
  } catch (err) {
    return { state: 'unparseable', reason: `${rel} could not be read: ${(err as Error).message}` };
  }
  if (content.charCodeAt(0) === 0xfeff) content = content.slice(1);
  return parseXmlOffThread(content);
}

/**
 * Builds the index row of a message from disk; never throws on the message's content. `offThread`
 * is the message file already parsed by `parseLargeMessage`.
 */
export function buildRow(root: string, disk: MessageOnDisk, prev: MessageRow | undefined, offThread?: ParsedMessage): MessageRow {
  const now = nowIso();
  const notes: string[] = [];
  const mf = messageFileOf(disk);
  const mfile = mf && disk.files.find((f) => f.rel === mf.rel);
  const links = linksInPlaceOfMessage(disk);
  let parsed: ReturnType<typeof parseMessage>;
  if (links.length) {
    // what a link points to (outside the directory, perhaps) is never read as a message, and an
    // unparseable message is never selected by a purge
    const named = links.map((f) => `${f.rel} is a ${f.link}`).join(', ');
    parsed = { state: 'unparseable', reason: `${named}: links are never followed, so this message is not read and never purged` };
  } else if (!mf || !mfile) {
    const expected = disk.isDir ? `${disk.id}/${disk.id}.xml or ${disk.id}/${disk.id}.json` : `${disk.id}.xml or ${disk.id}.json`;
    parsed = { state: 'unparseable', reason: `no message file: expected ${expected}` };
  } else if (offThread) {
    parsed = offThread;
  } else if (mfile.size > MAX_MESSAGE_BYTES) {
    parsed = { state: 'unparseable', reason: `${mf.rel} has ${mfile.size} bytes, more than the ${MAX_MESSAGE_BYTES} a message file may have` };
  } else {
    try {
      let content = readFileNoFollow(path.join(root, mf.rel));
      if (content.charCodeAt(0) === 0xfeff) content = content.slice(1);
      parsed = parseMessage(content, mf.format);
    } catch (err) {
      parsed = { state: 'unparseable', reason: `${mf.rel} could not be read: ${(err as Error).message}` };
    }
  }
  if (parsed.reason) notes.push(parsed.reason);
  if (disk.partial) notes.push(`more than ${disk.files.length} files: size and count are partial`);

  // the status: the latest decision wins (the message's own status is the oldest)
  const { sidecar, problem } = readSidecar(root, disk);
  if (problem) notes.push(problem);
  let status: string | null = parsed.status ?? null;
  let source: MessageRow['status_source'] = status ? 'message' : null;
  let changedAt: string | null = null;
  const reviewMs = prev?.status_source === 'review' && prev.status_changed_at ? Date.parse(prev.status_changed_at) : -Infinity;
  if (sidecar && sidecar.changedMs > reviewMs) {
    status = sidecar.status;
    source = 'sidecar';
    changedAt = iso(sidecar.changedMs);
  } else if (prev?.status_source === 'review' && prev.status) {
    status = prev.status;
    source = 'review';
    changedAt = prev.status_changed_at;
  }

  const dateMs = (!links.length && mfile?.mtimeMs) || disk.changedMs;
  return {
    id: disk.id,
    state: parsed.state,
    type: parsed.type ?? null,
    schema: parsed.schema ?? null,
    status,
    status_source: source,
    status_changed_at: changedAt,
    date: parsed.date ?? iso(dateMs),
    date_source: parsed.date ? 'message' : 'file',
    reference: parsed.reference ?? null,
    request_reference: parsed.requestReference ?? null,
    reply_code: parsed.replyCode ?? null,
    sender: parsed.sender ?? null,
    recipient: parsed.recipient ?? null,
    comment: parsed.comment ?? null,
    format: (!links.length && mf?.format) || null,
    file: (!links.length && mf?.rel) || null,
    is_dir: disk.isDir ? 1 : 0,
    beside: JSON.stringify(disk.beside),
    files: disk.files.length,
    size: disk.size,
    fingerprint: disk.fingerprint,
    reason: notes.length ? notes.join('; ').slice(0, 2000) : null,
    last_change: iso(disk.changedMs),
    indexed_at: now,
  };
}

export type IndexChange = 'added' | 'changed' | 'unchanged' | 'removed' | 'absent' | 'unsettled';

/** What a change means for the event log. */
export function recordChange(tx: Tx, change: IndexChange, row: MessageRow | undefined, prev: MessageRow | undefined, trigger: string): void {
  if (change === 'added' && row) {
    tx.event({ kind: 'message', objectId: row.id, type: 'indexed', payload: { trigger, state: row.state, type: row.type, status: row.status, ...(row.reason ? { reason: row.reason } : {}) } });
  } else if (change === 'changed' && row) {
    tx.event({ kind: 'message', objectId: row.id, type: 'changed', payload: { trigger, state: row.state, type: row.type, size: row.size, ...(row.reason ? { reason: row.reason } : {}) } });
    if (prev && prev.status !== row.status) {
      tx.event({ kind: 'message', objectId: row.id, type: 'status', payload: { from: prev.status, to: row.status, source: row.status_source, trigger } });
    }
  } else if (change === 'removed' && prev) {
    tx.event({ kind: 'message', objectId: prev.id, type: 'removed', payload: { trigger, type: prev.type, status: prev.status } });
  }
}

/** A top-level file that now belongs to another message (a folder with a longer prefix appeared, or went). */
export interface MovedFile {
  name: string;
  owner: string;
}

/**
 * Re-reads one message from disk and updates its row. `besideHint` names top-level files that may
 * belong to it (from a watcher event); the ones already indexed are always checked again, and
 * ownership is decided with the folders present now: a file that now belongs to another message
 * leaves this one and is returned in `moved`, for the caller to re-read that message.
 */
export async function reindexOne(
  root: string,
  store: Store,
  id: string,
  opts: { besideHint?: string[]; trigger: string; events: boolean; force?: boolean; settleMs?: number },
): Promise<{ change: IndexChange; row?: MessageRow; prev?: MessageRow; moved: MovedFile[] }> {
  const prev = findMessageRow(store.db, id);
  const known = prev ? (JSON.parse(prev.beside) as string[]) : [];
  const beside: string[] = [];
  const moved: MovedFile[] = [];
  for (const name of new Set([...known, ...(opts.besideHint ?? [])])) {
    const owner = ownerOnDisk(root, name);
    if (owner === id) beside.push(name);
    else moved.push({ name, owner });
  }
  const r = await reindexWith(root, store, id, prev, beside.sort(), opts);
  return { ...r, moved };
}

async function reindexWith(
  root: string,
  store: Store,
  id: string,
  prev: MessageRow | undefined,
  beside: string[],
  opts: { trigger: string; events: boolean; force?: boolean; settleMs?: number },
): Promise<{ change: IndexChange; row?: MessageRow; prev?: MessageRow }> {
  const disk = readMessageOnDisk(root, id, beside);
  if (!disk) {
    if (!prev) return { change: 'absent' };
    store.transact((tx) => {
      tx.db.prepare('DELETE FROM messages WHERE id = ?').run(id);
      if (opts.events) recordChange(tx, 'removed', undefined, prev, opts.trigger);
    });
    return { change: 'removed', prev };
  }
  if (prev && !opts.force && prev.fingerprint === disk.fingerprint && prev.beside === JSON.stringify(disk.beside)) return { change: 'unchanged', row: prev, prev };
  // still being written (a folder just created, a file still growing): the caller comes back later
  if (opts.settleMs && Date.now() - disk.changedMs < opts.settleMs) return { change: 'unsettled', prev };
  const row = buildRow(root, disk, prev, await parseLargeMessage(root, disk));
  const change: IndexChange = prev ? 'changed' : 'added';
  store.transact((tx) => {
    // the row may have changed while the disk was read (a review): keep the newest decision
    const latest = findMessageRow(tx.db, id);
    if (latest?.status_source === 'review' && latest.status_changed_at && (!row.status_changed_at || latest.status_changed_at > row.status_changed_at)) {
      row.status = latest.status;
      row.status_source = 'review';
      row.status_changed_at = latest.status_changed_at;
    }
    upsertMessageRow(tx.db, row);
    if (opts.events) recordChange(tx, change, row, prev, opts.trigger);
  });
  return { change, row, prev };
}

/** Whether anything of a row's message is still on disk: its folder or one of its top-level files. */
function stillOnDisk(root: string, row: MessageRow): boolean {
  const exists = (p: string) => fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
  if (row.is_dir && exists(messagePath(root, row.id))) return true;
  return (JSON.parse(row.beside) as string[]).some((name) => exists(path.join(root, name)));
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      signal?.throwIfAborted();
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export interface RescanOptions {
  trigger: string;
  signal?: AbortSignal;
  progress?: (done: number, total: number) => void;
}

/**
 * Reconciles the whole index with the directory. Unchanged messages (same fingerprint) are not
 * read again. The first scan of a directory records one summary event; later scans also record
 * each message added, changed or removed.
 */
export async function rescan(root: string, store: Store, opts: RescanOptions): Promise<RescanSummary> {
  const t0 = Date.now();
  await fs.promises.mkdir(root, { recursive: true });
  const db = store.db;
  const entries = await fs.promises.readdir(root, { withFileTypes: true });
  const groups = [...groupTopLevel(entries.map((e) => ({ name: e.name, isDir: e.isDirectory() }))).values()];
  const known = new Map<string, string>();
  for (const r of db.prepare('SELECT id, fingerprint FROM messages').iterate() as IterableIterator<{ id: string; fingerprint: string }>) known.set(r.id, r.fingerprint);
  const firstScan = known.size === 0;
  const summary: RescanSummary = { directory: root, total: 0, added: 0, changed: 0, removed: 0, unchanged: 0, unparseable: 0, unknown: 0, ms: 0 };

  let batch: Array<{ row: MessageRow; prev?: MessageRow; change: IndexChange }> = [];
  /*
   * Rows are read now and written in batches a little later; meanwhile the watcher, a purge or
   * another command may have removed or re-read a message. Right before each write (in the same
   * synchronous transaction, so nothing else runs in between): a message no longer on disk is not
   * written back (its row, if any, goes), and a row written after this scan read the disk is
   * newer than what the scan has. A deletion after this point reaches the watcher after the write.
   */
  const flush = () => {
    if (!batch.length) return;
    const todo = batch;
    batch = [];
    store.transact((tx) => {
      for (const b of todo) {
        const latest = findMessageRow(tx.db, b.row.id);
        if (!stillOnDisk(root, b.row)) {
          if (b.prev) summary.changed--;
          else summary.added--;
          summary.total--;
          if (b.row.state === 'unparseable') summary.unparseable--;
          if (b.row.state === 'unknown') summary.unknown--;
          if (latest) {
            tx.db.prepare('DELETE FROM messages WHERE id = ?').run(latest.id);
            summary.removed++;
            recordChange(tx, 'removed', undefined, latest, opts.trigger);
          }
          continue;
        }
        if (latest && latest.indexed_at > b.row.indexed_at) continue;
        if (latest?.status_source === 'review' && latest.status_changed_at && (!b.row.status_changed_at || latest.status_changed_at > b.row.status_changed_at)) {
          b.row.status = latest.status;
          b.row.status_source = 'review';
          b.row.status_changed_at = latest.status_changed_at;
        }
        upsertMessageRow(tx.db, b.row);
        if (!firstScan) recordChange(tx, b.change, b.row, b.prev, opts.trigger);
      }
    });
  };

  // synchronous slices of a few milliseconds, yielding in between (see readMessageOnDisk)
  const SLICE_MS = 15;
  let sliceStart = Date.now();
  for (let done = 0; done < groups.length; done++) {
    if (Date.now() - sliceStart >= SLICE_MS) {
      await new Promise((r) => setImmediate(r));
      opts.signal?.throwIfAborted();
      opts.progress?.(done, groups.length);
      sliceStart = Date.now();
    }
    const g = groups[done];
    const disk = readMessageOnDisk(root, g.id, g.beside, g.isDir);
    if (!disk) continue;
    summary.total++;
    const fp = known.get(g.id);
    known.delete(g.id);
    if (fp === disk.fingerprint) {
      summary.unchanged++;
      continue;
    }
    const prev = fp === undefined ? undefined : findMessageRow(db, g.id);
    const row = buildRow(root, disk, prev, largeXmlFile(disk) ? await parseLargeMessage(root, disk) : undefined);
    if (row.state === 'unparseable') summary.unparseable++;
    if (row.state === 'unknown') summary.unknown++;
    if (prev) summary.changed++;
    else summary.added++;
    batch.push({ row, prev, change: prev ? 'changed' : 'added' });
    if (batch.length >= 500) flush();
  }
  flush();
  opts.progress?.(groups.length, groups.length);

  // indexed but not seen: gone, unless it appeared after the listing (checked on disk one by one;
  // files moving between messages were grouped by the listing already)
  for (const id of known.keys()) {
    opts.signal?.throwIfAborted();
    const r = await reindexOne(root, store, id, { trigger: opts.trigger, events: true });
    if (r.change === 'removed') summary.removed++;
    else if (r.change !== 'absent') summary.total++;
  }
  summary.ms = Date.now() - t0;
  store.transact((tx) =>
    tx.event({
      kind: 'message',
      objectId: '.directory',
      type: 'rescan.finished',
      payload: { ...summary, trigger: opts.trigger },
    }),
  );
  return summary;
}
