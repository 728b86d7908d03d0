import fs from 'node:fs';
import path from 'node:path';
import { toPosix } from '../paths';

export interface WalkEntry {
  /** '/'-separated, relative to the walk's base */
  rel: string;
  abs: string;
  /** 'unreadable': a name that could not be examined, or a folder that could not be listed (see `error`) */
  kind: 'file' | 'dir' | 'symlink' | 'other' | 'unreadable';
  size: number;
  /**
   * the modification time in nanoseconds, exactly as the file system keeps it: the hash pool's
   * fstat at open is compared with it for equality (see check.ts), so it is never rounded to ms
   */
  mtimeNs: bigint;
  /** for 'unreadable': the errno code (ENAMETOOLONG, EACCES, ENOENT...) and the system's message */
  error?: { code: string; message: string; listing: boolean };
}

/**
 * Walks a file or folder depth-first, yielding entries as it reads directories (fs.opendir), so a
 * tree of 100k files is never listed in memory at once. Symbolic links are reported, not followed.
 * `rel` is relative to `base` (the dropped item's parent, or the item itself for a lone folder).
 *
 * One name that cannot be examined (a path too long for the system, a permission denied, a file
 * removed since its folder was listed) or one folder that cannot be listed is yielded as an
 * 'unreadable' entry and the walk goes on: the check then fails naming it, instead of the whole
 * check stopping on a raw errno. Only the walk's root itself must be readable.
 */
export async function* walk(root: string, base: string, signal?: AbortSignal): AsyncGenerator<WalkEntry> {
  const st = await fs.promises.lstat(root, { bigint: true });
  const entry = (abs: string, s: fs.BigIntStats): WalkEntry => ({
    rel: toPosix(path.relative(base, abs)),
    abs,
    kind: s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other',
    size: s.isFile() ? Number(s.size) : 0,
    mtimeNs: s.mtimeNs,
  });
  const unreadable = (abs: string, err: unknown, listing: boolean): WalkEntry => ({
    rel: toPosix(path.relative(base, abs)),
    abs,
    kind: 'unreadable',
    size: 0,
    mtimeNs: 0n,
    error: { code: (err as NodeJS.ErrnoException).code ?? 'EIO', message: (err as Error).message, listing },
  });
  if (!st.isDirectory()) {
    yield entry(root, st);
    return;
  }
  if (path.resolve(root) !== path.resolve(base)) yield entry(root, st);
  const stack: string[] = [root];
  while (stack.length) {
    if (signal?.aborted) return;
    const dir = stack.pop()!;
    let handle: fs.Dir;
    try {
      handle = await fs.promises.opendir(dir, { bufferSize: 256 });
    } catch (err) {
      yield unreadable(dir, err, true);
      continue;
    }
    const subdirs: string[] = [];
    let chunk: string[] = [];
    // lstat a chunk of names at once: sequential stats dominate a walk of many small files
    const flush = async function* () {
      const stats = await Promise.allSettled(chunk.map((abs) => fs.promises.lstat(abs, { bigint: true })));
      for (let i = 0; i < chunk.length; i++) {
        const s = stats[i];
        if (s.status === 'rejected') {
          yield unreadable(chunk[i], s.reason, false);
          continue;
        }
        const e = entry(chunk[i], s.value);
        if (e.kind === 'dir') subdirs.push(chunk[i]);
        yield e;
      }
      chunk = [];
    };
    try {
      for await (const d of handle) {
        chunk.push(path.join(dir, d.name));
        if (chunk.length >= 128) yield* flush();
      }
    } catch (err) {
      // the listing broke off (an I/O error, the folder removed): what was listed is still walked
      yield unreadable(dir, err, true);
    }
    if (chunk.length) yield* flush();
    // visit in name order for stable, readable reports
    subdirs.sort().reverse();
    stack.push(...subdirs);
  }
}
