/**
 * The message directory lock: several Fonds instances (and hosts) share one message directory;
 * purges and Fonds' own writes take this lock so that two never run at once.
 *
 * Protocol (see README.md):
 * - the lock is the file `<messageDirectory>/.fonds.lock`, created atomically with O_EXCL ('wx'),
 *   holding JSON {token, owner, host, pid, purpose, acquiredAt, expiresAt};
 * - the holder renews expiresAt every ttl/3 (write to a temporary file, then rename over);
 * - a lock past its expiry is stale (its holder died or hung): it is taken over under a second,
 *   short-lived lock `.fonds.lock.break` (also O_EXCL), re-reading the stale lock first so that
 *   two instances breaking it at once cannot both win;
 * - before each deletion the holder checks the file still carries its token (`assertHeld`).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { FondsError } from '../../../src-shared/errors';

export const LOCK_FILE = '.fonds.lock';
const BREAK_FILE = '.fonds.lock.break';
/** A break lock older than this was left by a process that died while breaking. */
const BREAK_STALE_MS = 10_000;

const holderSchema = z.object({
  token: z.string(),
  owner: z.string(),
  host: z.string(),
  pid: z.number(),
  purpose: z.string(),
  acquiredAt: z.string(),
  expiresAt: z.string(),
});
export type LockHolder = z.infer<typeof holderSchema>;

export interface HeldLock {
  readonly holder: LockHolder;
  /** throws CONFLICT when the lock was lost (expired and taken over) */
  assertHeld(): void;
  release(): Promise<void>;
}

async function readHolder(file: string): Promise<{ raw: string; holder?: LockHolder; mtimeMs: number } | undefined> {
  try {
    const [raw, st] = await Promise.all([fs.promises.readFile(file, 'utf8'), fs.promises.stat(file)]);
    let holder: LockHolder | undefined;
    try {
      const parsed = holderSchema.safeParse(JSON.parse(raw));
      if (parsed.success) holder = parsed.data;
    } catch {
      /* half-written or foreign: judged by its age below */
    }
    return { raw, holder, mtimeMs: st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DirectoryLock {
  private readonly file: string;
  private readonly breakFile: string;

  /**
   * @param owner names this instance in the lock (a person reads it in a CONFLICT message)
   */
  constructor(
    readonly directory: string,
    private readonly owner: string,
    private readonly ttlMs: number,
  ) {
    this.file = path.join(directory, LOCK_FILE);
    this.breakFile = path.join(directory, BREAK_FILE);
  }

  private body(token: string, purpose: string, acquiredAt: string): LockHolder {
    return {
      token,
      owner: this.owner,
      host: os.hostname(),
      pid: process.pid,
      purpose,
      acquiredAt,
      expiresAt: new Date(Date.now() + this.ttlMs).toISOString(),
    };
  }

  /** This instance, as named in the lock. */
  describe(): string {
    return `${this.owner} on ${os.hostname()}`;
  }

  /** Who holds the lock now, if anyone (stale or not). */
  async current(): Promise<(LockHolder & { stale: boolean }) | undefined> {
    const h = await readHolder(this.file);
    if (!h?.holder) return undefined;
    return { ...h.holder, stale: Date.parse(h.holder.expiresAt) < Date.now() };
  }

  /**
   * Takes the lock, waiting up to `waitMs` for the holder to release it; a stale lock is taken
   * over. Throws CONFLICT naming the holder when it stays held.
   */
  async acquire(purpose: string, waitMs: number): Promise<HeldLock> {
    await fs.promises.mkdir(this.directory, { recursive: true });
    const until = Date.now() + waitMs;
    const token = randomUUID();
    const acquiredAt = new Date().toISOString();
    for (let round = 0; ; round++) {
      const mine = this.body(token, purpose, acquiredAt);
      try {
        await fs.promises.writeFile(this.file, JSON.stringify(mine), { flag: 'wx' });
        return this.held(mine);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const seen = await readHolder(this.file);
      if (seen) {
        const expired = seen.holder ? Date.parse(seen.holder.expiresAt) < Date.now() : Date.now() - seen.mtimeMs > this.ttlMs;
        if (expired && (await this.breakStale(seen.raw))) continue;
        if (Date.now() >= until) {
          const h = seen.holder;
          throw new FondsError(
            'CONFLICT',
            h
              ? `The message directory ${this.directory} is locked by ${h.owner} on ${h.host} (process ${h.pid}) for ${h.purpose} since ${h.acquiredAt}, until ${h.expiresAt} unless renewed. Try again later.`
              : `The message directory ${this.directory} is locked (${LOCK_FILE} is unreadable; it is taken over once older than ${this.ttlMs} ms).`,
            { lock: path.join(this.directory, LOCK_FILE), ...(h ? { holder: h } : {}) },
          );
        }
      }
      await sleep(Math.min(50 + round * 10, 250) + Math.random() * 25);
    }
  }

  /** Removes a stale lock whose content is still `staleRaw`, under the break lock. True if removed. */
  private async breakStale(staleRaw: string): Promise<boolean> {
    try {
      await fs.promises.writeFile(this.breakFile, `${process.pid}@${os.hostname()}`, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fs.promises.stat(this.breakFile).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > BREAK_STALE_MS) await fs.promises.rm(this.breakFile, { force: true });
      return false;
    }
    try {
      const again = await readHolder(this.file);
      if (!again) return true;
      if (again.raw !== staleRaw) return false; // someone else took it over meanwhile
      await fs.promises.rm(this.file, { force: true });
      return true;
    } finally {
      await fs.promises.rm(this.breakFile, { force: true });
    }
  }

  private held(mine: LockHolder): HeldLock {
    let lost: string | undefined;
    let released = false;
    let renewing: Promise<void> | undefined;
    const renew = async () => {
      const now = await readHolder(this.file).catch(() => undefined);
      if (now?.holder?.token !== mine.token) {
        lost = now?.holder ? `taken over by ${now.holder.owner} on ${now.holder.host}` : 'removed';
        return;
      }
      const next = { ...mine, expiresAt: new Date(Date.now() + this.ttlMs).toISOString() };
      const temp = `${this.file}.${mine.token}.tmp`;
      await fs.promises.writeFile(temp, JSON.stringify(next));
      await fs.promises.rename(temp, this.file);
      mine = next;
    };
    const timer = setInterval(() => {
      if (renewing || released) return;
      renewing = renew()
        .catch((err: Error) => {
          lost = `could not be renewed: ${err.message}`;
        })
        .finally(() => (renewing = undefined));
    }, Math.max(50, Math.floor(this.ttlMs / 3)));
    timer.unref();
    return {
      get holder() {
        return mine;
      },
      assertHeld: () => {
        if (released) throw new FondsError('CONFLICT', `The message directory lock was released.`);
        const expired = Date.parse(mine.expiresAt) < Date.now();
        if (lost || expired) {
          throw new FondsError('CONFLICT', `The message directory lock was lost (${lost ?? 'expired'}); stopped before deleting more.`);
        }
      },
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await renewing;
        const now = await readHolder(this.file).catch(() => undefined);
        if (now?.holder?.token === mine.token) await fs.promises.rm(this.file, { force: true });
      },
    };
  }
}
