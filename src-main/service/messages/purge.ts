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
import { messagePath } from './directory';
import { parseDuration, subtractDuration } from './duration';
import { reindexOne } from './indexer';
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
  limit: number;
  waitForLockMs: number;
  trigger: PurgeReport['trigger'];
  /** called after each deletion (progress) */
  onItem?: (done: number, total: number) => void;
}

/** Deletes a message's folder and `<id>.*` files; returns nothing, throws on a refused path. */
async function deleteMessageFiles(root: string, row: MessageRow): Promise<void> {
  const targets: string[] = [];
  const folder = messagePath(root, row.id);
  if (row.is_dir) targets.push(folder);
  for (const name of JSON.parse(row.beside) as string[]) {
    if (!name.startsWith(`${row.id}.`)) continue; // only <id>.* beside the folder
    targets.push(resolveInside(root, name));
  }
  // the beside files first: an interrupted purge leaves the folder, which a rescan still shows
  for (const t of targets.reverse()) await fs.promises.rm(t, { recursive: true, force: true });
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
  } else if (selected.length) {
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
        try {
          await deleteMessageFiles(o.root, row);
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
            payload: { runId, trigger: o.trigger, task: match.task.name, delay: match.task.delay, cutoff: match.cutoff.toISOString(), type: row.type, status: row.status, date: row.date, bytes: row.size, files: row.files, reason: item.reason },
          });
        });
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
        payload: { runId, trigger: o.trigger, now: report.now, tasks: report.tasks, totals, startedAt, finishedAt: report.finishedAt },
      }),
    );
  }
  return report;
}
