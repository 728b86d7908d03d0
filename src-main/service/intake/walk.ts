import fs from 'node:fs';
import path from 'node:path';
import { toPosix } from '../paths';

export interface WalkEntry {
  /** '/'-separated, relative to the walk's base */
  rel: string;
  abs: string;
  kind: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mtimeMs: number;
}

/**
 * Walks a file or folder depth-first, yielding entries as it reads directories (fs.opendir), so a
 * tree of 100k files is never listed in memory at once. Symbolic links are reported, not followed.
 * `rel` is relative to `base` (the dropped item's parent, or the item itself for a lone folder).
 */
export async function* walk(root: string, base: string, signal?: AbortSignal): AsyncGenerator<WalkEntry> {
  const st = await fs.promises.lstat(root);
  const entry = (abs: string, s: fs.Stats): WalkEntry => ({
    rel: toPosix(path.relative(base, abs)),
    abs,
    kind: s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other',
    size: s.isFile() ? s.size : 0,
    mtimeMs: s.mtimeMs,
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
    const handle = await fs.promises.opendir(dir, { bufferSize: 256 });
    const subdirs: string[] = [];
    let chunk: string[] = [];
    // lstat a chunk of names at once: sequential stats dominate a walk of many small files
    const flush = async function* () {
      const stats = await Promise.all(chunk.map((abs) => fs.promises.lstat(abs)));
      for (let i = 0; i < chunk.length; i++) {
        const e = entry(chunk[i], stats[i]);
        if (e.kind === 'dir') subdirs.push(chunk[i]);
        yield e;
      }
      chunk = [];
    };
    for await (const d of handle) {
      chunk.push(path.join(dir, d.name));
      if (chunk.length >= 128) yield* flush();
    }
    if (chunk.length) yield* flush();
    // visit in name order for stable, readable reports
    subdirs.sort().reverse();
    stack.push(...subdirs);
  }
}
