import fs from 'node:fs';
import path from 'node:path';
import { FondsError } from '../../src-shared/errors';

/** Longest file name component most file systems allow, in bytes. */
export const MAX_NAME_BYTES = 255;
/** Longest relative path we accept from outside. */
export const MAX_PATH_BYTES = 4096;

/**
 * Why a relative path from outside (manifest line, upload name, message id, S3 key) cannot be
 * used, or undefined when it is safe: relative, '/'-separated, no '..', no '~' start, no NUL,
 * no empty or over-long component.
 */
export function unsafeRelativePath(rel: string): string | undefined {
  if (rel.length === 0) return 'the path is empty';
  if (rel.includes('\0')) return 'the path contains a NUL byte';
  if (Buffer.byteLength(rel) > MAX_PATH_BYTES) return `the path is longer than ${MAX_PATH_BYTES} bytes`;
  if (rel.startsWith('/') || /^[A-Za-z]:/.test(rel) || rel.startsWith('\\')) return 'the path is absolute';
  if (rel.startsWith('~')) return "the path starts with '~' (a home directory)";
  if (rel.includes('\\')) return 'the path contains a backslash';
  const parts = rel.split('/');
  for (const part of parts) {
    if (part === '..') return "the path contains '..'";
    if (part === '') return 'the path contains an empty component';
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) return `a name in the path is longer than ${MAX_NAME_BYTES} bytes`;
  }
  return undefined;
}

/** Resolves `rel` under `root`, or throws naming the path and the rule it broke. */
export function resolveInside(root: string, rel: string): string {
  const why = unsafeRelativePath(rel);
  if (why) throw new FondsError('PATH_INVALID', `Refused path '${printable(rel)}': ${why}.`, { path: printable(rel) });
  const base = path.resolve(root);
  const full = path.resolve(base, rel);
  if (full !== base && !full.startsWith(base + path.sep)) {
    throw new FondsError('PATH_OUTSIDE_ROOT', `Refused path '${printable(rel)}': it leaves ${base}.`, { path: printable(rel) });
  }
  return full;
}

/** True when `child` (absolute) is `root` or inside it. */
export function isInside(root: string, child: string): boolean {
  const base = path.resolve(root);
  const full = path.resolve(child);
  return full === base || full.startsWith(base + path.sep);
}

/** Follows links of an existing path and checks the target stays inside `root` (also resolved). */
export async function realpathInside(root: string, full: string): Promise<boolean> {
  const [realRoot, realFull] = await Promise.all([fs.promises.realpath(root), fs.promises.realpath(full)]);
  return isInside(realRoot, realFull);
}

/** Makes control characters visible in messages. */
export function printable(p: string): string {
  return p.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Relative path with '/' separators, whatever the platform. */
export function toPosix(rel: string): string {
  return rel.split(path.sep).join('/');
}
