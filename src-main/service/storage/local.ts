import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FondsError } from '../../../src-shared/errors';
import { ioMessage, type HashPool } from '../fixity/hash-pool';
import { resolveInside } from '../paths';
import type { Fixity, PutOptions, Storage, Stored, Verification } from './storage';

export type Durability = 'file' | 'batch' | 'none';

/**
 * Copies are written to `<root>/.fonds-part-<tag>-<uuid>`, at the root of the storage, where
 * no stored file ever is: every key is `<top folder>/<path>` (a stored data id, a dissemination
 * folder), delivered names only ever appear below the top folder, and a top folder named like a
 * temporary file is refused. So a crash sweep can remove what matches without ever touching a
 * delivered file, whatever its name (`.fonds-part-notes.txt` included). `<tag>` names the top
 * folder, so that sweeping one stored data leaves the copies in flight of another alone.
 */
const TEMP_PREFIX = '.fonds-part-';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.source;

/** The top folder as it appears in temporary names: itself when short and plain (a UUID), else a digest. */
function tagOf(top: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(top) ? top : createHash('sha256').update(top).digest('hex').slice(0, 32);
}

/**
 * What the copy pass hashes: SHA-256, compared with the intake's. Equal SHA-256 means equal bytes,
 * so the intake's MD5 is the copy's MD5 too. Hashing MD5 again in the same pass made copy + verify
 * of large files about 25% slower on the bench machine (MD5 450 MB/s, SHA-256 with SHA-NI 1.1 GB/s).
 */
const COPY_HASHES = ['sha256'] as const;

/**
 * Stored data in a local folder. A copy goes through the hash pool to a temporary name at the
 * storage root (the source is read once: hashed MD5 + SHA-256 and written in the same pass); its
 * hashes must equal the intake's; the temporary file is then read back and its SHA-256 checked;
 * only then is it renamed to its final name. So the final name only ever holds a whole, verified
 * copy, and an older version there stays until the new one is proven.
 * Durability: 'batch' (default) makes a batch of copies durable with one file-system sync before
 * they are recorded as verified; 'file' fsyncs each file and its folder; 'none' leaves it to the OS.
 */
export class LocalStorage implements Storage {
  readonly kind = 'local' as const;
  readonly label: string;
  readonly verification = 'copy re-read before its rename, SHA-256 equal';
  /** many small files in flight keep the hash workers busy; each large one only holds a 1 MiB buffer */
  readonly parallelFiles = 256;
  /** folders known to exist: one mkdir per folder, not per file */
  private readonly made = new Set<string>();
  /** final names written since the last flush (only fsynced one by one where no syncfs exists) */
  private unflushed: string[] = [];

  constructor(
    private readonly root: string,
    private readonly pool: HashPool,
    private readonly durability: Durability = 'batch',
  ) {
    // the folder is made on the first copy: a storage folder that cannot be made (unplugged disk,
    // permission) fails the execution that needs it, with the reason, never the service start
    this.label = path.resolve(root);
  }

  private pathOf(key: string): string {
    if (key.startsWith(TEMP_PREFIX)) {
      throw new FondsError('PATH_INVALID', `Refused key '${key.slice(0, 80)}': names starting with ${TEMP_PREFIX} at the top of the storage are its temporary files.`, { path: key.slice(0, 80) });
    }
    return resolveInside(this.root, key);
  }

  async put(key: string, source: string, expected: Fixity, opts: PutOptions = {}): Promise<Stored> {
    const name = opts.name ?? key;
    const target = this.pathOf(key);
    const folder = path.dirname(target);
    if (!this.made.has(folder)) {
      await mkdirOrExplain(folder, name, this.label);
      if (this.made.size > 10_000) this.made.clear();
      this.made.add(folder);
    }
    // at the root, not beside the target: see TEMP_PREFIX (the rename stays on one file system)
    const temp = path.join(this.label, `${TEMP_PREFIX}${tagOf(key.split('/')[0])}-${randomUUID()}`);
    try {
      let copied;
      try {
        // one worker task: read the source once (hash + write the copy), then read the copy back
        copied = await this.pool.hash({
          path: source,
          algorithms: COPY_HASHES,
          copyTo: temp,
          fsync: this.durability === 'file',
          verifyCopy: true,
          verifyAlgorithm: 'sha256',
          signal: opts.signal,
          onBytes: opts.onBytes,
          sizeHint: opts.sizeHint ?? expected.size,
        });
      } catch (err) {
        throw await this.explain(err, name, source);
      }
      const got = { size: copied.size, md5: copied.hashes.md5 ?? expected.md5, sha256: copied.hashes.sha256! };
      if (got.size !== expected.size || got.md5 !== expected.md5 || got.sha256 !== expected.sha256) throw sourceChanged(name, got, expected);
      if (copied.copySize !== expected.size || copied.copyHash !== expected.sha256) {
        throw new FondsError(
          'CHECK_FAILED',
          `${name}: the copy in ${this.label} does not match the delivered file when read back (${copied.copySize} bytes, SHA-256 ${copied.copyHash}; expected ${expected.size} bytes, ${expected.sha256}). Nothing was replaced; the source is kept.`,
          { failure: 'verification', stored: false },
        );
      }
      try {
        await fs.promises.rename(temp, target);
        if (this.durability === 'file' && process.platform !== 'win32') await fsyncPath(folder, true);
      } catch (err) {
        throw await this.explain(err, name, source);
      }
      if (this.durability === 'batch') this.unflushed.push(target);
      return { fixity: expected, proof: this.verification };
    } catch (err) {
      await fs.promises.rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async verify(key: string, expected: Fixity, opts: PutOptions = {}): Promise<Verification> {
    const name = opts.name ?? key;
    const target = this.pathOf(key);
    const st = await fs.promises.stat(target).catch(() => undefined);
    if (!st?.isFile()) return { ok: false, reason: `${name}: missing from ${this.label}` };
    if (st.size !== expected.size) return { ok: false, reason: `${name}: ${st.size} bytes stored, ${expected.size} expected` };
    const { hashes } = await this.pool.hash({ path: target, algorithms: ['sha256'], signal: opts.signal, onBytes: opts.onBytes, sizeHint: expected.size });
    if (hashes.sha256 !== expected.sha256) return { ok: false, reason: `${name}: stored SHA-256 ${hashes.sha256} differs from ${expected.sha256}` };
    return { ok: true, proof: 're-read, SHA-256 equal' };
  }

  /**
   * One sync of the storage's file system for the whole batch (`sync -f`, i.e. syncfs, on Linux);
   * where that is not available, an fsync of each file written since the last flush and of its folder.
   */
  async flush(): Promise<void> {
    if (this.durability !== 'batch') return;
    const written = this.unflushed;
    this.unflushed = [];
    if (!written.length) return;
    if (process.platform === 'linux' && (await run('sync', ['-f', this.label]))) return;
    if (process.platform === 'darwin' && (await run('sync', []))) return;
    const folders = new Set<string>();
    let next = 0;
    const fsyncSome = async () => {
      while (next < written.length) {
        const file = written[next++];
        folders.add(path.dirname(file));
        await fsyncPath(file);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, written.length) }, fsyncSome));
    if (process.platform !== 'win32') for (const f of folders) await fsyncPath(f, true); // Windows cannot open a folder to sync it
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const st = await fs.promises.stat(this.pathOf(key)).catch(() => undefined);
    return st?.isFile() ? { size: st.size } : undefined;
  }

  async read(key: string): Promise<Readable> {
    return fs.createReadStream(this.pathOf(key));
  }

  async delete(key: string): Promise<void> {
    await fs.promises.rm(this.pathOf(key), { force: true });
  }

  /**
   * Removes the temporary copies that puts under the top folder `prefix` (a stored data id) left
   * when they were cut short. Only files at the storage root named exactly like this storage's
   * temporary files are touched, never anything under a top folder (see TEMP_PREFIX).
   */
  async sweep(prefix: string): Promise<number> {
    this.pathOf(prefix);
    if (prefix.includes('/')) throw new FondsError('INTERNAL', `sweep: '${prefix}' is not a top folder of the storage (a stored data id).`);
    const mine = new RegExp(`^${TEMP_PREFIX.replace(/\./g, '\\.')}${tagOf(prefix)}-${UUID}$`);
    const entries = await fs.promises.readdir(this.label, { withFileTypes: true }).catch(() => []);
    const temps = entries.filter((e) => e.isFile() && mine.test(e.name));
    await Promise.all(temps.map((e) => fs.promises.rm(path.join(this.label, e.name), { force: true })));
    return temps.length;
  }

  /**
   * Says which side of a copy failed. The pool names the source in its messages; a full disk, a
   * read-only file system or a denied write are the storage's, and the message must say so.
   */
  private async explain(err: unknown, name: string, source: string): Promise<unknown> {
    if (!(err instanceof FondsError) && !(err instanceof Error && 'code' in err)) return err;
    const errno = err instanceof FondsError ? String(err.details?.errno ?? '') : String((err as NodeJS.ErrnoException).code ?? '');
    if (!errno || (err instanceof FondsError && err.code !== 'IO_ERROR')) return err;
    let storageSide = ['ENOSPC', 'EDQUOT', 'EROFS', 'EFBIG', 'EEXIST', 'EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EXDEV'].includes(errno);
    if (!storageSide && ['EACCES', 'EPERM', 'ENOENT'].includes(errno)) {
      storageSide = await fs.promises.access(source, fs.constants.R_OK).then(
        () => true,
        () => false,
      );
    }
    const why = ioMessage('', errno, (err as Error).message).replace(/^: /, '');
    if (!storageSide) return new FondsError('IO_ERROR', `${name}: cannot read the delivered file ${source}: ${why}. Nothing was stored.`, { errno, side: 'source' });
    const detail =
      errno === 'EISDIR' || errno === 'ENOTEMPTY' || errno === 'ENOTDIR'
        ? `a folder and a file of the stored data have the same name (${why})`
        : errno === 'EXDEV'
          ? `its folder is on another file system than ${this.label} (a mount or a link inside the storage), and copies are renamed into place from there`
          : why;
    return new FondsError('IO_ERROR', `${name}: cannot be written to the storage ${this.label}: ${detail}.`, { errno, side: 'storage' });
  }
}

function sourceChanged(name: string, got: Fixity, expected: Fixity): FondsError {
  return new FondsError(
    'CHECK_FAILED',
    `${name}: the delivered file changed since it was checked (now ${got.size} bytes, SHA-256 ${got.sha256}; checked: ${expected.size} bytes, SHA-256 ${expected.sha256}). Nothing was stored; the source is kept. Check the upload again.`,
    { failure: 'source-changed' },
  );
}

/** fsync of a file (opened for writing: Windows flushes only then) or a folder (POSIX only). */
async function fsyncPath(p: string, folder = false): Promise<void> {
  const fh = await fs.promises.open(p, folder ? 'r' : 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Runs a command; true when it exited 0. */
function run(cmd: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

async function mkdirOrExplain(dir: string, name: string, root: string): Promise<void> {
  try {
    await fs.promises.mkdir(dir, { recursive: true });
  } catch (err) {
    let e = err as NodeJS.ErrnoException;
    // a recursive mkdir reports ENOENT for what is really EROFS, EACCES...: ask the first missing folder plainly
    if (e.code === 'ENOENT') {
      let missing = dir;
      while (!fs.existsSync(path.dirname(missing)) && path.dirname(missing) !== missing) missing = path.dirname(missing);
      try {
        await fs.promises.mkdir(missing);
      } catch (plain) {
        e = plain as NodeJS.ErrnoException;
      }
    }
    const why = e.code === 'EEXIST' || e.code === 'ENOTDIR' ? 'a file of the stored data has the name of a folder' : ioMessage('', e.code ?? 'EIO', e.message).replace(/^: /, '');
    throw new FondsError('IO_ERROR', `${name}: cannot be written to the storage ${root}: ${why} (making ${dir}).`, { errno: e.code, side: 'storage' });
  }
}
