/**
 * Messages: the Medona message directory (seed 003). Watches and indexes it, lets people review
 * messages and Fonds' outbox offline, writes Fonds' own messages, and purges it with
 * removeMessageTask under the directory lock. See README.md.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { ParsedInput } from '../../../src-shared/api';
import type { Message, MessageAttachment, PurgeReport, PurgeRules, RescanSummary } from '../../../src-shared/domain/message';
import { FondsError } from '../../../src-shared/errors';
import type { Capability, CallContext, Deps } from '../capability';
import { nowIso, timeline } from '../db/store';
import { printable, resolveInside, unsafeRelativePath } from '../paths';
import {
  dotPrefixes,
  isHiddenName,
  messageFileOf,
  messagePath,
  ownerOnDisk,
  READ_NOFOLLOW,
  readMessageOnDisk,
  sidecarOf,
  SIDECAR_EXT,
  unsafeMessageId,
  writeFileAtomic,
} from './directory';
import { parseDuration } from './duration';
import { mapLimit, reindexOne, rescan, type MovedFile } from './indexer';
import { DirectoryLock, LOCK_FILE } from './lock';
import { buildMedonaXml, buildMessageJson, parseMessage } from './parse';
import { prettyPrintMessage } from './parse-worker';
import { runPurge } from './purge';
import { parsePurgeRules } from './purge-rules';
import { getMessageRow, listMessages, messageFacets, rowToMessage, upsertMessageRow } from './store';

export { messagesMigrations } from './migrations';

export const RESCAN_JOB = 'messages.rescan';
export const PURGE_JOB = 'messages.purge';
/** A schedule shorter than this runs this often. */
const MIN_SCHEDULE_MS = 60_000;
/** Shown in `messages.get`; longer files are cut. */
const MAX_SHOWN_BYTES = 2 * 1024 * 1024;
const MAX_ATTACHMENTS_SHOWN = 1000;
/** A message changed more recently than this is not read yet (it may be half-written). */
const SETTLE_MS = 300;
/** When the OS refuses more watches, rescan this often instead. */
const FALLBACK_RESCAN_MS = 60_000;
/** A dry run's selection can be confirmed this long after it was shown (once). */
export const PREVIEW_TTL_MS = 60 * 60_000;
/** Selections kept at once (each up to every message of the directory): the oldest goes first. */
const MAX_PREVIEWS = 4;

/** The message directory of a configuration (`messageDirectory`, or `<dataDir>/messages`). */
export function messageDirectoryOf(config: Deps['config']): string {
  return path.resolve(config.messageDirectory || path.join(config.dataDir, 'messages'));
}

function triggerOf(ctx: CallContext): PurgeReport['trigger'] {
  return ctx.transport === 'ipc' ? 'ui' : ctx.transport === 'http' ? 'http' : ctx.transport === 'cli' ? 'cli' : 'internal';
}

/** Approximate wall-clock length of a schedule interval. */
function intervalMs(schedule: string): number | undefined {
  const d = parseDuration(schedule);
  if ('error' in d) return undefined;
  const { years, months, weeks, days, hours, minutes, seconds } = d.duration;
  const ms = ((((years * 365 + months * 30 + weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000;
  return Math.max(MIN_SCHEDULE_MS, ms);
}

export function createMessages(deps: Deps): Capability & { readonly directory: string; readonly lock: DirectoryLock } {
  const { store, config, outbox, jobs } = deps;
  const db = store.db;
  const root = messageDirectoryOf(config);
  const lock = new DirectoryLock(root, `Fonds (data ${config.dataDir})`, config.messageLockTtlMs);

  let watcher: FSWatcher | undefined;
  let watching = false;
  let stopped = false;
  let fallbackTimer: NodeJS.Timeout | undefined;
  const watchErrors = new Set<string>();

  // ---- one reindex at a time per message; watcher events coalesced per message ----
  const chains = new Map<string, Promise<unknown>>();
  function serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = chains.get(id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    chains.set(id, next);
    void next.finally(() => {
      if (chains.get(id) === next) chains.delete(id);
    }).catch(() => undefined);
    return next;
  }
  const pending = new Map<string, Set<string>>();
  /** how many times a message was found still being written, in a row */
  const unsettled = new Map<string, number>();
  let flushTimer: NodeJS.Timeout | undefined;
  function schedule(id: string, beside?: string, delayMs = 100): void {
    let set = pending.get(id);
    if (!set) pending.set(id, (set = new Set()));
    if (beside) set.add(beside);
    if (!flushTimer) {
      flushTimer = setTimeout(() => {
        flushTimer = undefined;
        const batch = [...pending.entries()];
        pending.clear();
        void mapLimit(batch, 8, async ([mid, hint]) => {
          if (stopped) return;
          // a folder or file changed less than SETTLE_MS ago may be half-written: read it later
          // (after about 10 s of constant change it is read anyway)
          const tries = unsettled.get(mid) ?? 0;
          const r = await serial(mid, () =>
            reindexOne(root, store, mid, { trigger: 'watch', events: true, besideHint: [...hint], settleMs: tries < 30 ? SETTLE_MS : undefined }),
          ).catch((err: Error) => {
            watchProblem('reindex', err, mid);
            return undefined;
          });
          for (const mv of r?.moved ?? []) movedTo(mv);
          if (r?.change === 'unsettled') {
            unsettled.set(mid, tries + 1);
            for (const h of hint) schedule(mid, h, SETTLE_MS);
            schedule(mid, undefined, SETTLE_MS);
          } else unsettled.delete(mid);
        });
      }, delayMs);
      flushTimer.unref();
    }
  }

  /** A top-level file changed hands: its new owner reads it. */
  function movedTo(mv: MovedFile): void {
    if (!stopped && !unsafeMessageId(mv.owner)) schedule(mv.owner, mv.name);
  }

  /**
   * A top-level folder appeared or went: the top-level files of the messages around it may change
   * hands (`MSG-1.2/` takes `MSG-1.2.zip` from `MSG-1`, and `MSG-1.2.3.zip` from the folder-less
   * `MSG-1.2.3`). Those messages are read again; each hands the files on (`moved`).
   */
  function folderChanged(id: string): void {
    schedule(id);
    for (const p of dotPrefixes(id)) if (!unsafeMessageId(p)) schedule(p);
    // ids starting with `<id>.`: a range, so the index answers (ASCII '/' follows '.')
    const longer = db.prepare('SELECT id FROM messages WHERE is_dir = 0 AND id >= ? AND id < ?').pluck().all(`${id}.`, `${id}/`) as string[];
    for (const l of longer) schedule(l);
  }

  function watchProblem(where: string, err: Error, id?: string): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
    if (watchErrors.has(`${where}:${code}`)) return;
    watchErrors.add(`${where}:${code}`);
    try {
      store.transact((tx) =>
        tx.event({ kind: 'message', objectId: '.directory', type: 'watch.error', payload: { where, code, message: err.message, ...(id ? { id } : {}) } }),
      );
    } catch {
      /* the database is closing */
    }
    if (code === 'ENOSPC' || code === 'EMFILE') void degradeToPolling();
  }

  async function degradeToPolling(): Promise<void> {
    if (fallbackTimer || stopped) return;
    await watcher?.close().catch(() => undefined);
    watcher = undefined;
    watching = false;
    fallbackTimer = setInterval(() => void rescanNow('poll').catch(() => undefined), FALLBACK_RESCAN_MS);
    fallbackTimer.unref();
  }

  /** The message a watched path belongs to (undefined for Fonds' own files). */
  function idOfPath(abs: string): { id: string; beside?: string } | undefined {
    const rel = path.relative(root, abs);
    if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
    const parts = rel.split(path.sep);
    if (parts.some(isHiddenName)) return undefined;
    if (parts.length > 1) return { id: parts[0] };
    const name = parts[0];
    // a top-level file: its message is the longest folder prefix, checked on disk; the file is
    // always named (an `<id>` file without extension is read as a top-level entry of `<id>`)
    return { id: ownerOnDisk(root, name), beside: name };
  }

  async function startWatcher(): Promise<void> {
    await fs.promises.mkdir(root, { recursive: true });
    const w = watch(root, {
      ignoreInitial: true,
      depth: 1,
      followSymlinks: false,
      // half-written files are not read: an event waits until the size is stable
      awaitWriteFinish: { stabilityThreshold: 300, pollInterval: 50 },
      ignored: (p: string) => {
        const rel = path.relative(root, p);
        return rel !== '' && rel.split(path.sep).some(isHiddenName);
      },
    });
    watcher = w;
    w.on('all', (event, p) => {
      if (stopped) return;
      const rel = path.relative(root, p);
      if ((event === 'addDir' || event === 'unlinkDir') && rel && !rel.includes(path.sep)) {
        // a top-level folder added or removed is the message itself, and changes who owns `<id>.*`
        if (!unsafeMessageId(rel)) folderChanged(rel);
        return;
      }
      // deeper folders only change sizes
      const target = event === 'addDir' || event === 'unlinkDir' ? (rel ? { id: rel.split(path.sep)[0] } : undefined) : idOfPath(p);
      if (target) schedule(target.id, target.beside);
    });
    w.on('error', (err) => watchProblem('watch', err instanceof Error ? err : new Error(String(err))));
    await new Promise<void>((resolve) => {
      w.once('ready', () => resolve());
      setTimeout(resolve, 30_000).unref();
    });
    watching = !stopped && watcher === w;
  }

  // ---- rescan: one at a time ----
  let scanning: Promise<RescanSummary> | undefined;
  async function rescanNow(trigger: string, progress?: (done: number, total: number) => void, signal?: AbortSignal): Promise<RescanSummary> {
    while (scanning) await scanning.catch(() => undefined);
    scanning = rescan(root, store, { trigger, progress, signal });
    try {
      return await scanning;
    } finally {
      scanning = undefined;
    }
  }

  // ---- purge rules and schedule ----
  function rules(text?: string): PurgeRules {
    const source = text === undefined ? 'config' : 'input';
    const t = text ?? config.removeMessageTask;
    const parsed = parsePurgeRules(t);
    const next = db
      .prepare(`SELECT min(run_at) FROM jobs WHERE kind = ? AND status = 'queued'`)
      .pluck()
      .get(PURGE_JOB) as string | null;
    return { source, text: t, ...parsed, schedule: config.purgeSchedule, ...(config.purgeSchedule && next ? { nextRun: next } : {}) };
  }

  /*
   * Dry runs' selections, by runId, for `purge.run({confirm: runId})`: a person confirms what a
   * preview showed, and only that may go. Counts above the listing limit are part of it (the
   * preview counted them); a message that matches only later waits for the next preview. Kept in
   * memory: a preview does not outlive the instance that showed it.
   */
  const previews = new Map<string, { now: string; ids: string[]; expiresAt: number }>();
  function keepPreview(runId: string, now: string, ids: string[]): string {
    const t = Date.now();
    for (const [k, v] of previews) if (v.expiresAt <= t) previews.delete(k);
    while (previews.size >= MAX_PREVIEWS) previews.delete(previews.keys().next().value!);
    const expiresAt = t + PREVIEW_TTL_MS;
    previews.set(runId, { now, ids, expiresAt });
    return new Date(expiresAt).toISOString();
  }
  function takePreview(runId: string): { now: string; ids: string[]; expiresAt: number } {
    const p = previews.get(runId);
    previews.delete(runId);
    if (!p || p.expiresAt <= Date.now()) {
      throw new FondsError(
        'NOT_FOUND',
        `confirm: the dry run '${printable(runId)}' is not known here or has expired (a preview can be confirmed once, within ${PREVIEW_TTL_MS / 60_000} minutes, on the instance that ran it); nothing was purged. Run a new dry run and confirm it.`,
        { runId: printable(runId) },
      );
    }
    return p;
  }

  async function purge(opts: {
    dryRun: boolean;
    ids?: string[];
    now?: string;
    confirm?: string;
    limit: number;
    waitForLockMs: number;
    trigger: PurgeReport['trigger'];
  }): Promise<PurgeReport> {
    if (opts.confirm !== undefined) {
      if (opts.dryRun) throw new FondsError('INVALID_INPUT', 'confirm: a confirmation is for a real purge (dryRun: false); a dry run deletes nothing.', { field: 'confirm' });
      if (opts.ids || opts.now) {
        throw new FondsError('INVALID_INPUT', "confirm: give either confirm (a dry run's runId) or ids and now, not both; the dry run's selection and moment are used.", { field: 'confirm' });
      }
    }
    const r = parsePurgeRules(config.removeMessageTask);
    if (r.errors.length) {
      throw new FondsError(
        'CONFIG_INVALID',
        `removeMessageTask (FONDS_REMOVE_MESSAGE_TASK) has ${r.errors.length} problem(s); nothing was purged: ${r.errors.map((e) => e.message).join('; ')}`,
        { key: 'removeMessageTask', errors: r.errors },
      );
    }
    const real = Date.now();
    let now = new Date(real);
    if (opts.now) {
      const t = Date.parse(opts.now);
      // a later 'now' would purge messages younger than their delay
      if (t > real + 1000) throw new FondsError('INVALID_INPUT', `now: ${opts.now} is in the future; a purge counts delays back from now or earlier.`);
      now = new Date(Math.min(t, real));
    }
    if (opts.ids) for (const id of opts.ids) messagePath(root, id);
    const base = { root, store, lock, tasks: r.tasks, limit: opts.limit, waitForLockMs: opts.waitForLockMs, trigger: opts.trigger, onMoved: movedTo };
    if (opts.dryRun) {
      let selection: string[] = [];
      const report = await runPurge({ ...base, dryRun: true, now, ids: opts.ids, onSelection: (ids) => (selection = ids) });
      return { ...report, confirmUntil: keepPreview(report.runId, report.now, selection) };
    }
    if (opts.confirm !== undefined) {
      const confirmed = opts.confirm;
      const preview = takePreview(confirmed);
      try {
        // each message of the selection is checked again under the lock, with the preview's moment
        return await runPurge({ ...base, dryRun: false, now: new Date(preview.now), ids: preview.ids, confirmed });
      } catch (err) {
        // refused before anything was deleted (the lock is held elsewhere): it can be confirmed again
        if (err instanceof FondsError && err.code === 'CONFLICT') previews.set(confirmed, preview);
        throw err;
      }
    }
    return runPurge({ ...base, dryRun: false, now, ids: opts.ids });
  }

  function ensureSchedule(): void {
    const queued = db.prepare(`SELECT id FROM jobs WHERE kind = ? AND status = 'queued'`).pluck().all(PURGE_JOB) as number[];
    const every = config.purgeSchedule ? intervalMs(config.purgeSchedule) : undefined;
    if (!every) {
      for (const id of queued) jobs.cancel(id);
      return;
    }
    if (queued.length) return;
    store.transact((tx) => tx.enqueue({ kind: PURGE_JOB, payload: { scheduled: true }, objectKind: 'message', objectId: '.purge', runAt: new Date(Date.now() + every), maxAttempts: 1 }));
  }

  // ---- Fonds' own writes ----
  async function writeMessage(input: ParsedInput<'messages.write'>): Promise<Message> {
    const id = input.id ?? `FONDS-${randomUUID()}`;
    const folder = messagePath(root, id);
    const file = `${id}.${input.format}`;
    const date = input.date ? new Date(input.date).toISOString() : nowIso();
    let content = input.content;
    if (content === undefined) {
      const fields = { type: input.type, reference: input.reference ?? id, date, requestReference: input.requestReference, sender: input.sender, recipient: input.recipient, comment: input.comment };
      content = input.format === 'xml' ? buildMedonaXml(fields) : buildMessageJson(fields);
    }
    const parsed = parseMessage(content, input.format);
    if (parsed.state !== 'ok') throw new FondsError('INVALID_INPUT', `content: the message is ${parsed.state}: ${parsed.reason ?? ''}`.trim(), { field: 'content' });
    if (parsed.type !== input.type) throw new FondsError('INVALID_INPUT', `content: the message is a ${parsed.type}, not a ${input.type}.`, { field: 'content' });
    const names = new Set<string>();
    for (const a of input.attachments) {
      const why = unsafeRelativePath(a.name);
      if (why) throw new FondsError('PATH_INVALID', `attachments: refused name '${printable(a.name)}': ${why}.`, { name: printable(a.name) });
      if (a.name === file || a.name === `${id}${SIDECAR_EXT}` || a.name.split('/').some(isHiddenName)) {
        throw new FondsError('INVALID_INPUT', `attachments: '${printable(a.name)}' is reserved (the message file, its status sidecar, or a hidden name).`);
      }
      if (names.has(a.name)) throw new FondsError('INVALID_INPUT', `attachments: '${printable(a.name)}' is given twice.`);
      names.add(a.name);
    }
    const held = await lock.acquire(`write ${id}`, 15_000);
    const temp = path.join(root, `.fonds-tmp-${randomUUID()}`);
    try {
      // lstat: a link (even a dangling one) named like the message is there too
      if (fs.lstatSync(folder, { throwIfNoEntry: false }) || getMaybe(id)) throw new FondsError('CONFLICT', `Message '${id}' already exists in ${root}.`, { id });
      await fs.promises.mkdir(temp);
      await fs.promises.writeFile(path.join(temp, file), content, { flag: 'wx' });
      for (const a of input.attachments) {
        const target = resolveInside(temp, a.name);
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await fs.promises.writeFile(target, Buffer.from(a.content, a.encoding), { flag: 'wx' });
      }
      if (input.status) {
        await fs.promises.writeFile(path.join(temp, `${id}${SIDECAR_EXT}`), JSON.stringify({ status: input.status, changedAt: nowIso(), changedBy: lock.describe() }) + '\n');
      }
      held.assertHeld();
      // appears whole, at once, to every watcher of the directory
      await fs.promises.rename(temp, folder);
    } catch (err) {
      await fs.promises.rm(temp, { recursive: true, force: true });
      throw err;
    } finally {
      await held.release();
    }
    const r = await serial(id, () => reindexOne(root, store, id, { trigger: 'write', events: false, force: true }));
    for (const mv of r.moved) movedTo(mv);
    store.transact((tx) =>
      tx.event({ kind: 'message', objectId: id, type: 'written', payload: { type: input.type, format: input.format, attachments: input.attachments.length, status: input.status ?? null } }),
    );
    return rowToMessage(r.row!);
  }

  function getMaybe(id: string) {
    return db.prepare('SELECT id FROM messages WHERE id = ?').get(id);
  }

  async function setStatus(id: string, status: string, ctx: CallContext) {
    messagePath(root, id);
    const row = getMessageRow(db, id);
    const changedAt = nowIso();
    const by = `${lock.describe()} via ${ctx.transport}`;
    let sidecarNote: string | undefined;
    // the sidecar tells the other instances; the index keeps the decision even if it cannot be written
    const held = await lock.acquire(`status ${id}`, 3_000).catch((err: Error) => {
      sidecarNote = err.message;
      return undefined;
    });
    if (held) {
      try {
        const rel = sidecarOf({ id, isDir: row.is_dir === 1 });
        const there = fs.lstatSync(path.join(root, rel), { throwIfNoEntry: false });
        // a link in the sidecar's place is left as it is (links are never replaced nor deleted)
        if (there && !there.isFile()) sidecarNote = `${rel} is not a regular file (a symbolic link?); it was left as it is, the status is kept in this index only`;
        else await writeFileAtomic(path.join(root, rel), JSON.stringify({ status, changedAt, changedBy: by }) + '\n');
      } catch (err) {
        sidecarNote = `the status sidecar could not be written: ${(err as Error).message}`;
      } finally {
        await held.release();
      }
    }
    return serial(id, async () => {
      const updated = store.transact((tx) => {
        const current = getMessageRow(tx.db, id);
        const next = { ...current, status, status_source: 'review' as const, status_changed_at: changedAt };
        upsertMessageRow(tx.db, next);
        tx.event({
          kind: 'message',
          objectId: id,
          type: 'status',
          payload: { from: current.status, to: status, source: 'review', by: ctx.transport, ...(sidecarNote ? { note: sidecarNote } : {}) },
        });
        return next;
      });
      return rowToMessage(updated);
    });
  }

  async function detail(id: string) {
    messagePath(root, id);
    const row = getMessageRow(db, id);
    const disk = readMessageOnDisk(root, id, JSON.parse(row.beside) as string[]);
    let content = '';
    let truncated = false;
    let unformatted: string | undefined;
    const mf = disk && messageFileOf(disk);
    if (mf) {
      const abs = resolveInside(root, mf.rel);
      // a link put in the file's place since it was listed is not opened
      const fh = await fs.promises.open(abs, READ_NOFOLLOW);
      let shown = 0;
      try {
        const size = (await fh.stat()).size;
        const buf = Buffer.alloc(Math.min(size, MAX_SHOWN_BYTES));
        shown = buf.length;
        await fh.read(buf, 0, buf.length, 0);
        truncated = size > MAX_SHOWN_BYTES;
        content = buf.toString('utf8').replace(/^\uFEFF/, '');
      } finally {
        await fh.close();
      }
      // large XML is pretty-printed on a worker; if it fails or is late the text stays as written,
      // and the detail says why (XML that is not well-formed is shown as written too, silently)
      if (!truncated) ({ text: content, unformatted } = await prettyPrintMessage(content, mf.format, shown));
    }
    const skip = new Set([mf?.rel, sidecarOf({ id, isDir: row.is_dir === 1 })]);
    const attachments: MessageAttachment[] = (disk?.files ?? [])
      .filter((f) => !skip.has(f.rel))
      .slice(0, MAX_ATTACHMENTS_SHOWN)
      .map((f) => ({ path: f.rel, size: f.size, beside: !f.rel.includes('/') }));
    return { message: rowToMessage(row), content, truncated, ...(unformatted ? { unformatted } : {}), attachments };
  }

  const requireOutbox = (id: number) => outbox.get(id);

  return {
    directory: root,
    lock,
    jobs: {
      [RESCAN_JOB]: {
        run: async (ctx) => {
          await rescanNow('start', (done, total) => ctx.progress({ files: done, bytes: 0, totalFiles: total }), ctx.signal);
        },
        failed: (_ctx, error) => {
          store.transact((tx) => tx.event({ kind: 'message', objectId: '.directory', type: 'rescan.failed', payload: { directory: root, message: error.message } }));
        },
      },
      [PURGE_JOB]: {
        run: async () => {
          try {
            await purge({ dryRun: false, limit: 0, waitForLockMs: 30_000, trigger: 'schedule' });
          } catch (err) {
            store.transact((tx) =>
              tx.event({ kind: 'message', objectId: '.purge', type: 'purge.refused', payload: { trigger: 'schedule', message: (err as Error).message } }),
            );
          } finally {
            ensureSchedule();
          }
        },
      },
    },
    async start() {
      // an unreachable directory (a share not mounted) must not stop the rest of Fonds
      const reachable = await fs.promises.mkdir(root, { recursive: true }).then(
        () => true,
        (err: Error) => {
          store.transact((tx) => tx.event({ kind: 'message', objectId: '.directory', type: 'directory.unavailable', payload: { directory: root, message: err.message } }));
          return false;
        },
      );
      // reconcile what other instances changed while this one was closed (a durable job: resumable)
      const queued = db.prepare(`SELECT count(*) FROM jobs WHERE kind = ? AND status IN ('queued','running')`).pluck().get(RESCAN_JOB) as number;
      if (!queued) store.transact((tx) => tx.enqueue({ kind: RESCAN_JOB, objectKind: 'message', objectId: '.directory', priority: 5, maxAttempts: 3 }));
      ensureSchedule();
      if (config.messageWatch && reachable) await startWatcher().catch((err: Error) => watchProblem('start', err));
    },
    async stop() {
      stopped = true;
      if (flushTimer) clearTimeout(flushTimer);
      if (fallbackTimer) clearInterval(fallbackTimer);
      await watcher?.close().catch(() => undefined);
      await Promise.allSettled([...chains.values()]);
      await scanning?.catch(() => undefined);
    },
    handlers: {
      'messages.list': (input) => listMessages(db, input),
      'messages.facets': () => messageFacets(db, root, watching),
      'messages.get': ({ id }) => detail(id),
      'messages.timeline': ({ id, offset, limit }) => {
        messagePath(root, id);
        return timeline(db, 'message', id, offset, limit);
      },
      'messages.setStatus': ({ id, status }, ctx) => setStatus(id, status, ctx),
      'messages.write': (input) => writeMessage(input),
      'messages.rescan': () => rescanNow('command'),
      'purge.rules': ({ text }) => rules(text),
      'purge.run': ({ dryRun, ids, now, confirm, limit, waitForLockMs }, ctx) => purge({ dryRun, ids, now, confirm, limit, waitForLockMs, trigger: triggerOf(ctx) }),
      'outbox.get': ({ id }) => requireOutbox(id),
      'outbox.edit': ({ id, headers, body }) => outbox.edit(id, { headers, body }),
      'outbox.cancel': ({ id }) => outbox.cancel(id),
      'outbox.retry': ({ id }) => outbox.retry(id),
      'outbox.sendNow': ({ id }) => outbox.retry(id),
    },
  };
}

export { LOCK_FILE };
