import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FondsError } from '../../../src-shared/errors';
import { ioMessage, type HashPool } from '../fixity/hash-pool';
import { resolveInside } from '../paths';
import type { Fixity, PutOptions, Storage } from './storage';

/**
 * Stored data in a local folder. A copy goes to a temporary name in the target folder through the
 * hash pool (read once: hashed and written in the same pass); the worker then reads the written
 * copy back through the file system and hashes it (MD5; the intake pass proved the source's
 * SHA-256), and only then is it renamed. `verify` uses that read-back, or re-reads the stored file.
 * Durability: 'file' fsyncs each file before its rename; 'batch' (default) makes a batch of copies
 * durable with one sync before they are recorded as verified; 'none' leaves it to the OS.
 */
export class LocalStorage implements Storage {
  readonly kind = 'local' as const;
  readonly label: string;
  /** folders known to exist: one mkdir per folder, not per file */
  private readonly made = new Set<string>();
  /** copies read back by the worker right after writing them, awaiting `verify` */
  private readonly readBack = new Map<string, { size: number; md5: string }>();

  constructor(
    private readonly root: string,
    private readonly pool: HashPool,
    private readonly durability: 'file' | 'batch' | 'none' = 'batch',
  ) {
    this.label = root;
    fs.mkdirSync(root, { recursive: true });
  }

  private pathOf(key: string): string {
    return resolveInside(this.root, key);
  }

  async put(key: string, source: string, opts: PutOptions = {}): Promise<Fixity> {
    const target = this.pathOf(key);
    const folder = path.dirname(target);
    if (!this.made.has(folder)) {
      await mkdirOrExplain(folder);
      if (this.made.size > 10_000) this.made.clear();
      this.made.add(folder);
    }
    const temp = path.join(path.dirname(target), `.fonds-part-${randomUUID()}`);
    try {
      const { size, hashes, copyMd5 } = await this.pool.hash({
        verifyCopy: true,
        path: source,
        algorithms: opts.expected ? ['md5'] : ['md5', 'sha256'],
        copyTo: temp,
        fsync: this.durability === 'file',
        signal: opts.signal,
        onBytes: opts.onBytes,
        sizeHint: opts.sizeHint,
      });
      await fs.promises.rename(temp, target);
      if (copyMd5) this.readBack.set(key, { size, md5: copyMd5 });
      const sha256 = opts.expected ? (hashes.md5 === opts.expected.md5 && size === opts.expected.size ? opts.expected.sha256 : '') : hashes.sha256!;
      return { size, md5: hashes.md5!, sha256 };
    } catch (err) {
      await fs.promises.rm(temp, { force: true });
      throw err;
    }
  }

  async verify(key: string, expected: Fixity, opts: PutOptions = {}): Promise<{ ok: true } | { ok: false; reason: string }> {
    const target = this.pathOf(key);
    const back = this.readBack.get(key);
    this.readBack.delete(key);
    if (back) {
      // the copy was read back from the file system by the worker, right after it was written
      if (back.size !== expected.size) return { ok: false, reason: `${key}: ${back.size} bytes stored, ${expected.size} expected` };
      if (back.md5 !== expected.md5) return { ok: false, reason: `${key}: stored MD5 ${back.md5} differs from ${expected.md5}` };
      return { ok: true };
    }
    const st = await fs.promises.stat(target).catch(() => undefined);
    if (!st) return { ok: false, reason: `${key}: missing from storage after the copy` };
    if (st.size !== expected.size) return { ok: false, reason: `${key}: ${st.size} bytes stored, ${expected.size} expected` };
    const { hashes } = await this.pool.hash({ path: target, algorithms: ['md5'], signal: opts.signal, onBytes: opts.onBytes, sizeHint: expected.size });
    if (hashes.md5 !== expected.md5) return { ok: false, reason: `${key}: stored MD5 ${hashes.md5} differs from ${expected.md5}` };
    return { ok: true };
  }

  async flush(): Promise<void> {
    if (this.durability !== 'batch') return;
    await new Promise<void>((resolve) => spawn('sync', { stdio: 'ignore' }).once('exit', () => resolve()).once('error', () => resolve()));
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const st = await fs.promises.stat(this.pathOf(key)).catch(() => undefined);
    return st?.isFile() ? { size: st.size } : undefined;
  }

  async read(key: string): Promise<Readable> {
    return fs.createReadStream(this.pathOf(key));
  }

  async delete(key: string): Promise<void> {
    this.readBack.delete(key);
    await fs.promises.rm(this.pathOf(key), { force: true });
  }

  async sweep(prefix: string): Promise<number> {
    const top = this.pathOf(prefix);
    const entries = await fs.promises.readdir(top, { recursive: true, withFileTypes: true }).catch(() => []);
    const temps = entries.filter((e) => e.isFile() && e.name.startsWith('.fonds-part-'));
    await Promise.all(temps.map((e) => fs.promises.rm(path.join(e.parentPath, e.name), { force: true })));
    return temps.length;
  }
}

async function mkdirOrExplain(dir: string): Promise<void> {
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
    throw new FondsError('IO_ERROR', ioMessage(dir, e.code ?? 'EIO', e.message), { errno: e.code });
  }
}
