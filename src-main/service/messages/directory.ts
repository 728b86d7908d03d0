/**
 * The message directory's layout, as Maarch RM writes it (seed 003):
 *
 *   <messageDirectory>/<messageId>/<messageId>.xml   (or .json) the message
 *   <messageDirectory>/<messageId>/...               its attachments
 *   <messageDirectory>/<messageId>/<messageId>.status  Fonds' status sidecar (see README.md)
 *   <messageDirectory>/<messageId>.zip               archives beside the folder (any <messageId>.*)
 *
 * A top-level file belongs to the message whose folder is its longest '.'-prefix
 * (`MSG-1.zip` → `MSG-1`); a file with no such folder is a message of its own, named without its
 * last extension (a lone `MSG-2.xml` is message `MSG-2`). Names starting with '.' are Fonds'
 * (lock, temporary folders) or hidden, and never messages. Symbolic links are never followed: one
 * at the place of a message file or sidecar makes its message unparseable (never read, never
 * purged), and a purge never deletes one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { FondsError } from '../../../src-shared/errors';
import { printable, resolveInside, unsafeRelativePath } from '../paths';

export const SIDECAR_EXT = '.status';
/** A message folder with more files than this is listed partly (size and count are then lower bounds). */
export const MAX_FILES_PER_MESSAGE = 100_000;

export function isHiddenName(name: string): boolean {
  return name.startsWith('.');
}

/**
 * Why `id` cannot name a message folder, or undefined: one path component, not hidden, no NUL,
 * no '..', not absolute.
 */
export function unsafeMessageId(id: string): string | undefined {
  const why = unsafeRelativePath(id);
  if (why) return why;
  if (id.includes('/')) return "a message id is a single name, without '/'";
  if (isHiddenName(id)) return "a message id does not start with '.'";
  return undefined;
}

/** The absolute folder of a message, after checking the id stays inside the directory. */
export function messagePath(root: string, id: string): string {
  const why = unsafeMessageId(id);
  if (why) throw new FondsError('PATH_INVALID', `Refused message id '${printable(id)}': ${why}.`, { id: printable(id) });
  return resolveInside(root, id);
}

/** The message a top-level file belongs to, given the folders present. */
export function ownerOfTopLevelFile(name: string, folders: ReadonlySet<string>): string {
  for (let i = name.lastIndexOf('.'); i > 0; i = name.lastIndexOf('.', i - 1)) {
    if (folders.has(name.slice(0, i))) return name.slice(0, i);
  }
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/** The '.'-prefixes of a name, longest first (`MSG-1.2.zip` → `MSG-1.2`, `MSG-1`). */
export function dotPrefixes(name: string): string[] {
  const out: string[] = [];
  for (let i = name.lastIndexOf('.'); i > 0; i = name.lastIndexOf('.', i - 1)) out.push(name.slice(0, i));
  return out;
}

/**
 * The message a top-level file belongs to with the folders on disk now (a folder `MSG-1.2/` that
 * appeared takes `MSG-1.2.zip` from `MSG-1`). Only the name's own prefixes are looked at: a few
 * lstat calls, no listing of the directory. Links are not folders.
 */
export function ownerOnDisk(root: string, name: string): string {
  const folders = new Set<string>();
  for (const candidate of dotPrefixes(name)) {
    if (unsafeMessageId(candidate)) continue;
    if (lstatOrUndefined(path.join(root, candidate))?.isDirectory()) folders.add(candidate);
  }
  return ownerOfTopLevelFile(name, folders);
}

export interface TopLevelMessage {
  id: string;
  isDir: boolean;
  /** top-level files `<id>.*` (and symbolic links, never followed) */
  beside: string[];
}

/** Groups the top-level entries of the directory into messages. */
export function groupTopLevel(entries: Array<{ name: string; isDir: boolean }>): Map<string, TopLevelMessage> {
  const folders = new Set(entries.filter((e) => e.isDir && !isHiddenName(e.name)).map((e) => e.name));
  const out = new Map<string, TopLevelMessage>();
  for (const f of folders) out.set(f, { id: f, isDir: true, beside: [] });
  for (const e of entries) {
    if (e.isDir || isHiddenName(e.name)) continue;
    const id = ownerOfTopLevelFile(e.name, folders);
    if (unsafeMessageId(id)) continue;
    let m = out.get(id);
    if (!m) out.set(id, (m = { id, isDir: false, beside: [] }));
    m.beside.push(e.name);
  }
  for (const m of out.values()) m.beside.sort();
  return out;
}

export interface DiskFile {
  /** relative to the message directory, '/'-separated */
  rel: string;
  size: number;
  mtimeMs: number;
  /**
   * set when the entry is not a regular file (its lstat): it is listed, never read, followed or
   * deleted; at the place of the message file or the sidecar it makes the message unparseable
   */
  link?: 'symbolic link' | 'special file';
}

const kindOf = (st: fs.Stats): DiskFile['link'] => (st.isSymbolicLink() ? 'symbolic link' : 'special file');

export interface MessageOnDisk {
  id: string;
  isDir: boolean;
  /**
   * every regular file of the folder, then the beside files; a link (or other special entry) is
   * listed only beside the folder or at the place of the message file or sidecar (`link` set)
   */
  files: DiskFile[];
  beside: string[];
  size: number;
  /** newest mtime/ctime of the message's files and folders */
  changedMs: number;
  /** count:size:newest change; equal fingerprints are not read again */
  fingerprint: string;
  /** set when the folder had more than MAX_FILES_PER_MESSAGE files */
  partial: boolean;
}

/**
 * Lists a message on disk (its folder, recursively, and the beside files named in `beside`),
 * without following links. Undefined when nothing of it exists. Synchronous on purpose: a message
 * is a few small files, and the thread pool's round trips cost more than the calls themselves
 * (callers yield between batches).
 */
export function readMessageOnDisk(root: string, id: string, beside: readonly string[], isDirHint?: boolean): MessageOnDisk | undefined {
  const folder = messagePath(root, id);
  const files: DiskFile[] = [];
  let changedMs = 0;
  let partial = false;
  // `isDirHint` comes from the directory listing (d_type, links not followed): no lstat needed
  const isDir = isDirHint ?? !!lstatOrUndefined(folder)?.isDirectory();
  const reservedInFolder = new Set([`${id}.xml`, `${id}.json`, `${id}${SIDECAR_EXT}`]);
  if (isDir) {
    const stack = [''];
    while (stack.length) {
      const sub = stack.pop()!;
      const abs = sub ? path.join(folder, sub) : folder;
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(abs, { withFileTypes: true });
      } catch {
        continue;
      }
      if (entries.length === 0) {
        const dst = lstatOrUndefined(abs);
        if (dst) changedMs = Math.max(changedMs, dst.mtimeMs, dst.ctimeMs);
      }
      for (const e of entries) {
        const relInFolder = sub ? `${sub}/${e.name}` : e.name;
        if (e.isDirectory()) {
          stack.push(relInFolder);
          continue;
        }
        if (!e.isFile()) {
          // links, sockets: never followed nor counted, except where the message file or the
          // sidecar is expected: there it is listed so that the message says why it is not read
          if (!sub && reservedInFolder.has(e.name)) {
            const lst = lstatOrUndefined(path.join(abs, e.name));
            if (lst && !lst.isFile() && !lst.isDirectory()) {
              files.push({ rel: `${id}/${e.name}`, size: 0, mtimeMs: lst.mtimeMs, link: kindOf(lst) });
              changedMs = Math.max(changedMs, lst.mtimeMs, lst.ctimeMs);
            }
          }
          continue;
        }
        if (files.length >= MAX_FILES_PER_MESSAGE) {
          partial = true;
          continue;
        }
        const fst = lstatOrUndefined(path.join(abs, e.name));
        if (!fst?.isFile()) continue;
        files.push({ rel: `${id}/${relInFolder}`, size: fst.size, mtimeMs: fst.mtimeMs });
        changedMs = Math.max(changedMs, fst.mtimeMs, fst.ctimeMs);
      }
    }
  }
  const present: string[] = [];
  for (const name of beside) {
    if (unsafeRelativePath(name) || name.includes('/')) continue;
    const bst = lstatOrUndefined(path.join(root, name));
    if (!bst || bst.isDirectory()) continue;
    present.push(name);
    files.push(bst.isFile() ? { rel: name, size: bst.size, mtimeMs: bst.mtimeMs } : { rel: name, size: 0, mtimeMs: bst.mtimeMs, link: kindOf(bst) });
    changedMs = Math.max(changedMs, bst.mtimeMs, bst.ctimeMs);
  }
  if (!isDir && present.length === 0) return undefined;
  const size = files.reduce((a, f) => a + f.size, 0);
  return { id, isDir, files, beside: present, size, changedMs, fingerprint: `${files.length}:${size}:${Math.round(changedMs)}`, partial };
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  return fs.lstatSync(p, { throwIfNoEntry: false });
}

function messageFileCandidates(m: Pick<MessageOnDisk, 'id' | 'isDir'>): Array<[string, 'xml' | 'json']> {
  return m.isDir
    ? [
        [`${m.id}/${m.id}.xml`, 'xml'],
        [`${m.id}/${m.id}.json`, 'json'],
      ]
    : [
        [`${m.id}.xml`, 'xml'],
        [`${m.id}.json`, 'json'],
      ];
}

/** The message file: `<id>/<id>.xml|.json`, or a lone `<id>.xml|.json` beside; regular files only. */
export function messageFileOf(m: MessageOnDisk): { rel: string; format: 'xml' | 'json' } | undefined {
  for (const [rel, format] of messageFileCandidates(m)) if (m.files.some((f) => f.rel === rel && !f.link)) return { rel, format };
  return undefined;
}

export function sidecarOf(m: Pick<MessageOnDisk, 'id' | 'isDir'>): string {
  return m.isDir ? `${m.id}/${m.id}${SIDECAR_EXT}` : `${m.id}${SIDECAR_EXT}`;
}

/**
 * Links (or other special entries) where the message itself is read from: the message file, the
 * sidecar, or a top-level entry named like the message's folder. Any of them makes the message
 * unparseable, so that what a link points to is never read as, nor purged with, a message.
 */
export function linksInPlaceOfMessage(m: MessageOnDisk): DiskFile[] {
  const reserved = new Set([...messageFileCandidates(m).map(([rel]) => rel), sidecarOf(m), m.id]);
  return m.files.filter((f) => f.link && reserved.has(f.rel));
}

/** Read flags that refuse a symbolic link in the last component (where the OS has O_NOFOLLOW). */
export const READ_NOFOLLOW = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0);

/** Reads a file of the directory as UTF-8 without following a link at its place. */
export function readFileNoFollow(abs: string): string {
  const fd = fs.openSync(abs, READ_NOFOLLOW);
  try {
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

const sidecarSchema = z.object({
  status: z.string().regex(/^[A-Za-z][A-Za-z_-]{0,49}$/),
  changedAt: z.string().optional(),
  changedBy: z.string().max(500).optional(),
});
export type Sidecar = z.infer<typeof sidecarSchema>;

/**
 * Reads the status sidecar: JSON {status, changedAt, changedBy}, or a bare status word.
 * Undefined when absent or unreadable (an unreadable sidecar is ignored, the reason returned).
 */
export function readSidecar(root: string, m: MessageOnDisk): { sidecar?: Sidecar & { changedMs: number }; problem?: string } {
  const rel = sidecarOf(m);
  const f = m.files.find((x) => x.rel === rel);
  if (!f) return {};
  if (f.link) return { problem: `${rel} is a ${f.link}, not a regular file; ignored (links are never followed)` };
  if (f.size > 64 * 1024) return { problem: `${rel} is larger than 64 KiB; ignored` };
  let raw: string;
  try {
    raw = readFileNoFollow(path.join(root, rel)).trim();
  } catch (err) {
    return { problem: `${rel}: ${(err as Error).message}` };
  }
  let value: unknown = raw;
  if (raw.startsWith('{')) {
    try {
      value = JSON.parse(raw);
    } catch {
      return { problem: `${rel} is not valid JSON; ignored` };
    }
  } else value = { status: raw };
  const parsed = sidecarSchema.safeParse(value);
  if (!parsed.success) return { problem: `${rel} does not hold a status; ignored` };
  const at = parsed.data.changedAt ? Date.parse(parsed.data.changedAt) : NaN;
  return { sidecar: { ...parsed.data, status: parsed.data.status.toLowerCase(), changedMs: Number.isNaN(at) ? f.mtimeMs : at } };
}

/** Writes a file atomically (temporary file in the same folder, then rename). */
export async function writeFileAtomic(file: string, content: string | Buffer): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await fs.promises.writeFile(temp, content, { flag: 'wx' });
    await fs.promises.rename(temp, file);
  } catch (err) {
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
}
