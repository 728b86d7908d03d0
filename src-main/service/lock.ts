import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FondsError } from '../../src-shared/errors';

export const LOCK_FILE = 'fonds.lock';
/**
 * An empty or unparsable lock younger than this may be one another process is writing right now
 * (where the file system cannot make hard links, the lock is created, then written); it is never
 * taken over. Older, it is what a power cut leaves (a file created, its content never written).
 */
const GARBLED_GRACE_MS = 10_000;
/** How long a start waits for a young garbled lock to be completed before it refuses. */
const GARBLED_WAIT_MS = 500;
/** link() errors of file systems without hard links (FAT, exFAT, some network shares). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

interface Holder {
  pid: number;
  host: string;
  since?: string;
  token?: string;
}

type Seen =
  | { kind: 'absent' }
  | { kind: 'holder'; raw: string; id: string; holder: Holder }
  | { kind: 'garbled'; raw: string; id: string; ageMs: number }
  | { kind: 'unreadable'; why: string };

/**
 * Tokens of the data-directory locks this process holds, on globalThis so that every copy of this
 * module loaded in the process sees them: a lock carrying this process's pid is ours only if its
 * token is here (after a restart in a container the new process often has the dead one's pid).
 */
const registry = globalThis as unknown as Record<symbol, Set<string> | undefined>;
const HELD = Symbol.for('fonds.dataDirLocks');
const held: Set<string> = (registry[HELD] ??= new Set<string>());

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The lock as it is now: content, and an identity that changes whenever the file is replaced. */
function readLock(file: string): Seen {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'unreadable', why: (err as Error).message };
  }
  let raw: string;
  let st: fs.Stats;
  try {
    // the same open file for both: a lock replaced (renamed over) meanwhile cannot mix the two
    st = fs.fstatSync(fd);
    raw = fs.readFileSync(fd, 'utf8');
  } catch (err) {
    return { kind: 'unreadable', why: (err as Error).message };
  } finally {
    fs.closeSync(fd);
  }
  const id = createHash('sha256').update(`${st.ino}:${st.mtimeMs}:${raw}`).digest('hex').slice(0, 24);
  try {
    const h = JSON.parse(raw) as Partial<Holder>;
    if (Number.isInteger(h.pid) && h.pid! > 0 && typeof h.host === 'string' && h.host) {
      return { kind: 'holder', raw, id, holder: h as Holder };
    }
  } catch {
    /* garbled: judged by its age */
  }
  return { kind: 'garbled', raw, id, ageMs: Date.now() - st.mtimeMs };
}

/**
 * One Fonds per data directory: the SQLite file, the job leases and the staging folders assume it.
 *
 * The lock `fonds.lock` holds {pid, host, since, token}. It is written whole to a temporary file
 * first and then hard-linked to its name, so that no process ever sees it empty (the link fails if
 * a lock exists). A lock is refused, naming its holder, when it is held by a live process on this
 * host, by this very process (a second service on the same folder), or by another host (whose
 * processes cannot be seen from here: the person is told how to remove it if it is stale). A lock
 * left by a dead process of this host, or one left empty by a power cut, is taken over atomically:
 * under a marker file that only one process can create for that lock, the lock is read again and,
 * if still the same, replaced by a rename; then read once more to confirm.
 */
export function lockDataDir(dataDir: string): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, LOCK_FILE);
  const host = os.hostname();
  const since = new Date().toISOString();
  const token = randomUUID();
  const mine = JSON.stringify({ pid: process.pid, host, since, token });
  const temp = path.join(dataDir, `${LOCK_FILE}.${token}.tmp`);
  const deleteHint = (who: string) => `If ${who}, delete ${file} and start again.`;

  /** Creates the lock if there is none; false when one exists. */
  const create = (): boolean => {
    try {
      fs.linkSync(temp, file);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'EEXIST') return false;
      if (!NO_HARD_LINKS.has(code)) throw err;
    }
    // no hard links here: create, then write (a reader may see it empty for an instant: the grace period)
    try {
      fs.writeFileSync(file, mine, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  };

  /** Replaces the lock whose identity is `staleId`, if it still is that one; true when the lock is now ours. */
  const takeOver = (staleId: string): boolean => {
    const marker = `${file}.takeover-${staleId}`;
    try {
      fs.writeFileSync(marker, JSON.stringify({ pid: process.pid, host, since }), { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = fs.statSync(marker, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > GARBLED_GRACE_MS) {
        throw new FondsError(
          'CONFLICT',
          `Could not lock the data directory ${dataDir}: a process that was taking over the stale lock ${file} stopped half-way (${marker} remains). ${deleteHint('no Fonds is using this folder')} Delete ${marker} too.`,
          { lock: file },
        );
      }
      return false; // another process is taking it over right now: read the lock again
    }
    try {
      const again = readLock(file);
      if (again.kind === 'absent' || again.kind === 'unreadable' || again.id !== staleId) return false;
      fs.renameSync(temp, file);
      const after = readLock(file);
      return after.kind === 'holder' && after.raw === mine;
    } finally {
      fs.rmSync(marker, { force: true });
    }
  };

  fs.writeFileSync(temp, mine, { flag: 'wx' });
  try {
    const started = Date.now();
    for (let attempt = 0; attempt < 100; attempt++) {
      if (create()) return release(file, mine, token);
      const seen = readLock(file);
      if (seen.kind === 'absent') continue; // released meanwhile
      if (seen.kind === 'unreadable') {
        throw new FondsError('CONFLICT', `Could not lock the data directory ${dataDir}: ${file} cannot be read (${seen.why}).`, { lock: file });
      }
      if (seen.kind === 'garbled') {
        if (seen.ageMs < GARBLED_GRACE_MS) {
          if (Date.now() - started < GARBLED_WAIT_MS) {
            sleep(20);
            continue;
          }
          throw new FondsError(
            'CONFLICT',
            `The data directory ${dataDir} is being locked by another process (${file} is not complete yet). Try again in a few seconds. ${deleteHint('it stays so and no Fonds is using this folder')}`,
            { lock: file },
          );
        }
      } else {
        const h = seen.holder;
        const at = `process ${h.pid}${h.since ? `, since ${h.since}` : ''}`;
        if (h.host !== host) {
          // its pid means nothing here: a lock of a live Fonds on another computer sharing this folder must stay
          throw new FondsError(
            'CONFLICT',
            `The data directory ${dataDir} is locked by Fonds on the computer ${h.host} (${at}); a data directory cannot be used from two computers. ${deleteHint(`no Fonds runs on ${h.host} with this folder any more`)}`,
            { lock: file, holder: h },
          );
        }
        if (h.token && held.has(h.token)) {
          throw new FondsError('CONFLICT', `The data directory ${dataDir} is already open in this process (since ${h.since}); close that service first, or use another folder.`, {
            lock: file,
            holder: h,
          });
        }
        if (h.pid !== process.pid && alive(h.pid)) {
          throw new FondsError(
            'CONFLICT',
            `Another Fonds (${at}) is using the data directory ${dataDir}. Close it, or set FONDS_DATA_DIR to another folder. ${deleteHint(`process ${h.pid} is not Fonds`)}`,
            { lock: file, holder: h },
          );
        }
        // a dead process of this host (or an earlier process that had this pid): stale
      }
      if (takeOver(seen.id)) return release(file, mine, token);
      sleep(5 + Math.random() * 10);
    }
    throw new FondsError('CONFLICT', `Could not lock the data directory ${dataDir}: ${file} kept changing; another Fonds may be starting on it.`, { lock: file });
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function release(file: string, mine: string, token: string): () => void {
  held.add(token);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    held.delete(token);
    try {
      if (fs.readFileSync(file, 'utf8') === mine) fs.unlinkSync(file);
    } catch {
      /* already gone */
    }
  };
}
