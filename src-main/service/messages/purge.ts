/**
 * The purge (seed 003, medona/message/deleteMessageDirectoryPurge): select the messages whose type
 * and status match a task and whose date is older than now minus the task's delay, then delete
 * their folder and `<id>.*` files, each checked again on disk under the directory lock.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { isFinalStatus, type PurgeItem, type PurgeReport, type PurgeTask } from '../../../src-shared/domain/message';
import { FondsError } from '../../../src-shared/errors';
import type { Store } from '../db/store';
import { messagePath, ownerOnDisk } from './directory';
import { parseDuration, subtractDuration } from './duration';
import { reindexOne, type MovedFile } from './indexer';
import type { DirectoryLock } from './lock';
import { resolveInside } from '../paths';
import type { MessageRow } from './store';

/** The fields selection looks at. */
export interface PurgeCandidate {
  id: string;
  state: string;
  type: string | null;
  status: string | null;
  date: string | null;
}

export interface TaskCutoff {
  task: PurgeTask;
  cutoff: Date;
}

export function cutoffs(tasks: readonly PurgeTask[], now: Date): TaskCutoff[] {
  return tasks.map((task) => {
    const d = parseDuration(task.delay);
    if ('error' in d) throw new FondsError('CONFIG_INVALID', `task '${task.name}', delay: ${d.error}`, { key: 'removeMessageTask' });
    return { task, cutoff: subtractDuration(now, d.duration) };
  });
}

/**
 * The task that selects this message, or undefined. A message is selected only when it was
 * understood ('ok'), its type is one of the task's, its status is one of the task's AND final for
 * its type, and its date is strictly before the task's cutoff. The first matching task wins.
 */
export function matchTask(m: PurgeCandidate, tasks: readonly TaskCutoff[]): TaskCutoff | undefined {
  if (m.state !== 'ok' || !m.type || !m.status || !m.date) return undefined;
  const status = m.status.toLowerCase();
  if (!isFinalStatus(m.type, status)) return undefined;
  const t = Date.parse(m.date);
  if (Number.isNaN(t)) return undefined;
  return tasks.find(
    (c) => (c.task.types as readonly string[]).includes(m.type!) && (c.task.statuses as readonly string[]).includes(status) && t < c.cutoff.getTime(),
  );
}

/** Every selected message with its task, in the order given. */
export function selectForPurge<M extends PurgeCandidate>(messages: readonly M[], tasks: readonly TaskCutoff[]): Array<{ message: M; match: TaskCutoff }> {
  const out: Array<{ message: M; match: TaskCutoff }> = [];
  for (const message of messages) {
    const match = matchTask(message, tasks);
    if (match) out.push({ message, match });
  }
  return out;
}

function reasonOf(m: PurgeCandidate, c: TaskCutoff): string {
  return `${m.type} ${m.status} dated ${m.date}, older than ${c.task.delay} (before ${c.cutoff.toISOString()}): task '${c.task.name}'`;
}

export interface PurgeRunOptions {
  root: string;
  store: Store;
  lock: DirectoryLock;
  tasks: PurgeTask[];
  dryRun: boolean;
  now: Date;
  ids?: string[];
  /** the dry run whose selection `ids` is (`purge.run({confirm})`), for the report and the events */
  confirmed?: string;
  limit: number;
  waitForLockMs: number;
  trigger: PurgeReport['trigger'];
  /** called after each deletion (progress) */
  onItem?: (done: number, total: number) => void;
  /** a dry run's whole selection (also the messages the report does not list), to confirm later */
  onSelection?: (ids: string[]) => void;
  /** a top-level file found to belong to another message now: that message is to be read again */
  onMoved?: (moved: MovedFile) => void;
}

/**
 * Deletes a message's folder and `<id>.*` files; throws on a refused path. Each is looked at again
 * just before: a top-level file that now belongs to another message (its folder appeared since) and
 * anything that is not a regular file (a link, never deleted) stay; they are returned, with why.
 */
async function deleteMessageFiles(root: string, row: MessageRow): Promise<Array<{ name: string; why: string }>> {
  const targets: string[] = [];
  const kept: Array<{ name: string; why: string }> = [];
  const lstat = (p: string) => fs.lstatSync(p, { throwIfNoEntry: false });
  const folder = messagePath(root, row.id);
  if (row.is_dir) {
    const st = lstat(folder);
    if (st?.isDirectory()) targets.push(folder);
    else if (st) kept.push({ name: row.id, why: 'not a folder any more' });
  }
  for (const name of JSON.parse(row.beside) as string[]) {
    if (!name.startsWith(`${row.id}.`)) continue; // only <id>.* beside the folder
    const abs = resolveInside(root, name);
    const st = lstat(abs);
    if (!st) continue;
    if (!st.isFile()) {
      kept.push({ name, why: `${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: never deleted` });
      continue;
    }
    const owner = ownerOnDisk(root, name);
    if (owner !== row.id) {
      kept.push({ name, why: `belongs to message ${owner} now` });
      continue;
    }
    targets.push(abs);
  }
  // the beside files first: an interrupted purge leaves the folder, which a rescan still shows
  for (const t of targets.reverse()) await fs.promises.rm(t, { recursive: true, force: true });
  return kept;
}

/** Runs a purge or a dry run and returns its report. Events are written for a real purge only. */
export async function runPurge(o: PurgeRunOptions): Promise<PurgeReport> {
  const startedAt = new Date().toISOString();
  const runId = randomUUID();
  const cuts = cutoffs(o.tasks, o.now);
  const types = [...new Set(o.tasks.flatMap((t) => t.types))];
  const db = o.store.db;
  // only what selection and the report need: 100,000 rows stay small
  let rows: Array<PurgeCandidate & { size: number; files: number }> = [];
  if (types.length) {
    const idFilter = o.ids ? `AND id IN (SELECT value FROM json_each(?))` : '';
    rows = db
      .prepare(
        `SELECT id, state, type, status, date, size, files FROM messages WHERE state = 'ok' AND status IS NOT NULL AND date IS NOT NULL
         AND type IN (SELECT value FROM json_each(?)) ${idFilter} ORDER BY date, id`,
      )
      .all(JSON.stringify(types), ...(o.ids ? [JSON.stringify(o.ids)] : [])) as typeof rows;
  }
  const selected = selectForPurge(rows, cuts);
  const items: PurgeItem[] = [];
  const perTask = new Map(cuts.map((c) => [c.task.name, { messages: 0, bytes: 0 }]));
  const totals = { messages: 0, bytes: 0, files: 0, skipped: 0 };
  const add = (item: PurgeItem) => {
    if (item.skipped) totals.skipped++;
    else {
      totals.messages++;
      totals.bytes += item.bytes;
      totals.files += item.files;
      const t = perTask.get(item.task)!;
      t.messages++;
      t.bytes += item.bytes;
    }
    if (items.length < o.limit) items.push(item);
  };

  if (o.dryRun) {
    for (const { message: m, match } of selected) {
      add({ id: m.id, type: m.type!, status: m.status!, date: m.date!, task: match.task.name, reason: reasonOf(m, match), bytes: m.size, files: m.files, deleted: false });
    }
    o.onSelection?.(selected.map((x) => x.message.id));
  } else if (o.ids) {
    // what a person confirmed but the index no longer selects is said, not silently dropped
    const chosen = new Set(selected.map((x) => x.message.id));
    const find = db.prepare('SELECT type, status, date FROM messages WHERE id = ?');
    for (const id of new Set(o.ids)) {
      if (chosen.has(id)) continue;
      const cur = find.get(id) as Pick<MessageRow, 'type' | 'status' | 'date'> | undefined;
      add({
        id,
        type: cur?.type ?? '',
        status: cur?.status ?? '',
        date: cur?.date ?? '',
        task: '',
        reason: '',
        bytes: 0,
        files: 0,
        deleted: false,
        skipped: cur ? `no longer selected by any task (now ${cur.type ?? 'of no known type'} ${cur.status ?? 'without status'}, dated ${cur.date ?? 'never'})` : 'no longer in the index (removed from the directory)',
      });
    }
  }
  if (!o.dryRun && selected.length) {
    const lock = await o.lock.acquire(`purge ${runId}`, o.waitForLockMs);
    try {
      let done = 0;
      for (const { message: m, match } of selected) {
        const base = { id: m.id, type: m.type!, status: m.status!, date: m.date!, task: match.task.name, reason: reasonOf(m, match), bytes: 0, files: 0, deleted: false };
        try {
          lock.assertHeld();
        } catch (err) {
          add({ ...base, skipped: (err as Error).message });
          continue;
        }
        // read it again from disk: another instance may have purged it, or its status changed
        const fresh = await reindexOne(o.root, o.store, m.id, { trigger: 'purge', events: true, force: true });
        for (const mv of fresh.moved) o.onMoved?.(mv);
        if (!fresh.row) {
          add({ ...base, skipped: 'no longer on disk (already purged by another instance, or removed)' });
          continue;
        }
        const again = matchTask(fresh.row, [match]);
        if (!again) {
          add({ ...base, status: fresh.row.status ?? '', skipped: `no longer matches task '${match.task.name}' (now ${fresh.row.type} ${fresh.row.status ?? 'without status'}, dated ${fresh.row.date})` });
          continue;
        }
        const row = fresh.row;
        let kept: Array<{ name: string; why: string }>;
        try {
          kept = await deleteMessageFiles(o.root, row);
        } catch (err) {
          await reindexOne(o.root, o.store, m.id, { trigger: 'purge', events: true }).catch(() => undefined);
          add({ ...base, skipped: `could not be deleted: ${(err as Error).message}` });
          continue;
        }
        const item: PurgeItem = { ...base, status: row.status!, date: row.date!, reason: reasonOf(row, match), bytes: row.size, files: row.files, deleted: true };
        o.store.transact((tx) => {
          tx.db.prepare('DELETE FROM messages WHERE id = ?').run(row.id);
          tx.event({
            kind: 'message',
            objectId: row.id,
            type: 'purged',
            payload: {
              runId,
              trigger: o.trigger,
              ...(o.confirmed ? { confirmed: o.confirmed } : {}),
              task: match.task.name,
              delay: match.task.delay,
              cutoff: match.cutoff.toISOString(),
              type: row.type,
              status: row.status,
              date: row.date,
              bytes: row.size,
              files: row.files,
              reason: item.reason,
              ...(kept.length ? { kept: kept.map((k) => `${k.name}: ${k.why}`) } : {}),
            },
          });
        });
        // what stayed (a link, another message's file) is indexed again under its owner
        if (kept.length) {
          const again = await reindexOne(o.root, o.store, row.id, { trigger: 'purge', events: true, besideHint: kept.map((k) => k.name) }).catch(() => undefined);
          for (const mv of again?.moved ?? []) o.onMoved?.(mv);
        }
        add(item);
        o.onItem?.(++done, selected.length);
      }
    } finally {
      await lock.release();
    }
  }

  const report: PurgeReport = {
    runId,
    dryRun: o.dryRun,
    trigger: o.trigger,
    ...(o.confirmed ? { confirmed: o.confirmed } : {}),
    now: o.now.toISOString(),
    startedAt,
    finishedAt: new Date().toISOString(),
    tasks: cuts.map((c) => ({ name: c.task.name, delay: c.task.delay, cutoff: c.cutoff.toISOString(), ...perTask.get(c.task.name)! })),
    items,
    itemsOmitted: totals.messages + totals.skipped - items.length,
    totals,
  };
  if (!o.dryRun) {
    o.store.transact((tx) =>
      tx.event({
        kind: 'message',
        objectId: '.purge',
        type: 'purge.finished',
        payload: { runId, trigger: o.trigger, ...(o.confirmed ? { confirmed: o.confirmed } : {}), now: report.now, tasks: report.tasks, totals, startedAt, finishedAt: report.finishedAt },
      }),
    );
  }
  return report;
}
