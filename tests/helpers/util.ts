import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const repoRoot = path.resolve(__dirname, '../..');
export const sharedDir = path.resolve(repoRoot, '../shared');
export const fixturesDir = path.join(sharedDir, 'fixtures', 'bagit-conformance');

/** A fresh temporary folder, removed by the caller's cleanup. */
export function tempDir(prefix = 'fonds-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes files given as { 'rel/path': content } under root. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const full = path.join(root, rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
  }
}

/** Times in whole seconds (utimes stores them exactly): when a file was listed, and a later one. */
export const LISTED_AT = 1714979289; // 2024-05-06T07:08:09Z
export const LATER_AT = 1893553445; // 2030-01-02T03:04:05Z

/** A sparse file of `bytes` at `p`: no disk space, but every byte to read; modified at `mtime` (s) when given. */
export function sparseFile(p: string, bytes: number, mtime?: number): string {
  fs.writeFileSync(p, '');
  fs.truncateSync(p, bytes);
  if (mtime !== undefined) fs.utimesSync(p, mtime, mtime);
  return p;
}

/** Writes `bytes` over the start of the file at `p`, its size unchanged (a copy tool filling a preallocated file), then sets its mtime (s). */
export function fillInPlace(p: string, bytes: string | Buffer, mtime: number): void {
  const b = Buffer.from(bytes);
  const fd = fs.openSync(p, 'r+');
  try {
    fs.writeSync(fd, b, 0, b.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  fs.utimesSync(p, mtime, mtime);
}

/**
 * Temporary folders removed after each test: `const dir = tempDirs(afterEach)` then `dir()`.
 */
export function tempDirs(afterEach: (fn: () => void) => void): () => string {
  const made: string[] = [];
  afterEach(() => made.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  return () => {
    const d = tempDir();
    made.push(d);
    return d;
  };
}

/** Waits until `predicate` holds, polling. */
export async function waitFor<T>(fn: () => T | Promise<T>, predicate: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (predicate(v)) return v;
    if (Date.now() > until) throw new Error(`condition not met after ${timeoutMs} ms; last value: ${JSON.stringify(v)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** True when CI=true: a missing service or browser must fail, not skip. */
export const inCI = process.env.CI === 'true';

/** Says loudly why a test is skipped (or throws in CI, where skipping is not allowed). */
export function requireOrSkip(available: boolean, what: string): boolean {
  if (available) return true;
  if (inCI) throw new Error(`${what} is required when CI=true`);
  console.warn(`\n*** SKIPPED: ${what} is not available on this machine ***\n`);
  return false;
}

/** The PATCH stored_data body of seed 002, read from the seed itself. */
export function seedPatchBody(): { edition: { from: string; to: string }; extent: import('geojson').MultiPolygon } {
  const seed = fs.readdirSync(path.join(sharedDir, 'seeds')).find((f) => f.startsWith('002_'))!;
  const text = fs.readFileSync(path.join(sharedDir, 'seeds', seed), 'utf8');
  const after = text.slice(text.indexOf('??? PATCH'));
  const block = /```json\n([\s\S]*?)\n```/.exec(after)![1];
  return JSON.parse(block);
}

/**
 * An outbox transport from an async function: the message is confirmed when `fn` resolves,
 * refused with its error when it rejects (a promise that never settles: never confirmed).
 */
export function transportOf(fn: (item: import('../../src-shared/api').OutboxItem) => Promise<void> | void): import('../../src-main/service/db/outbox').OutboxTransport {
  return {
    send: (item, done) => {
      Promise.resolve()
        .then(() => fn(item))
        .then(
          () => done(),
          (err: unknown) => done(err ?? new Error('refused')),
        );
    },
  };
}
