/**
 * BagIt (RFC 8493) validation and creation. Validation reports EVERY problem it finds, each with
 * the file (relative to the bag) and a rule id, in the manner of bagit-python; it never throws on
 * a bad bag, and never reads a path that resolves outside the bag. Hashing is injected (`hashFile`)
 * so the intake pipeline can reuse the hashes of its single read pass.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TextDecoder } from 'node:util';
import { isInside, MAX_NAME_BYTES, toPosix } from '../paths';

export const BagAlgorithms = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const;
export type BagAlgorithm = (typeof BagAlgorithms)[number];
const HEX_LENGTH: Record<BagAlgorithm, number> = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 };

export interface BagProblem {
  /** relative to the bag root; '' for the bag itself */
  file: string;
  rule: string;
  message: string;
}

export type HashFile = (absPath: string, algorithms: BagAlgorithm[], signal?: AbortSignal) => Promise<Partial<Record<BagAlgorithm, string>>>;
export type CopyFile = (source: string, target: string, algorithms: BagAlgorithm[], signal?: AbortSignal) => Promise<Partial<Record<BagAlgorithm, string>>>;

export interface BagDeclaration {
  version: string;
  encoding: string;
  info: Array<[string, string]>;
  manifestAlgorithms: BagAlgorithm[];
  tagManifestAlgorithms: BagAlgorithm[];
  fetch: Array<{ url: string; length: string; path: string }>;
  payloadOxum?: { bytes: number; files: number };
}

export interface BagReport {
  valid: boolean;
  errors: BagProblem[];
  warnings: BagProblem[];
  declaration?: BagDeclaration;
  payloadFiles: number;
  payloadBytes: number;
}

interface Problems {
  errors: BagProblem[];
  warnings: BagProblem[];
}

const isAlgorithm = (a: string): a is BagAlgorithm => (BagAlgorithms as readonly string[]).includes(a);

export async function isBag(dir: string): Promise<boolean> {
  const st = await fs.promises.lstat(path.join(dir, 'bagit.txt')).catch(() => undefined);
  return !!st?.isFile();
}

async function readBytes(file: string): Promise<Buffer | undefined> {
  try {
    const st = await fs.promises.lstat(file);
    if (!st.isFile()) return undefined;
    return await fs.promises.readFile(file);
  } catch {
    return undefined;
  }
}

/** A TextDecoder for the declared tag-file encoding; UTF-16 follows its BOM (big-endian without one). */
function decoderFor(encoding: string, bytes: Buffer): TextDecoder {
  const e = encoding.trim().toLowerCase();
  if (e === 'utf-16' || e === 'utf16') {
    const le = bytes[0] === 0xff && bytes[1] === 0xfe;
    return new TextDecoder(le ? 'utf-16le' : 'utf-16be');
  }
  try {
    return new TextDecoder(e || 'utf-8');
  } catch {
    return new TextDecoder('utf-8');
  }
}

function decode(bytes: Buffer, encoding: string): string {
  return decoderFor(encoding, bytes).decode(bytes).replace(/^\uFEFF/, '');
}

function lines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

/** `Label: value` lines, with continuation lines (leading white space) joined; labels trimmed. */
function parseTagLines(text: string): { entries: Array<[string, string]>; bad: number[] } {
  const entries: Array<[string, string]> = [];
  const bad: number[] = [];
  lines(text).forEach((line, i) => {
    if (line.trim() === '') return;
    if (/^[ \t]/.test(line) && entries.length) {
      entries[entries.length - 1][1] += ' ' + line.trim();
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      bad.push(i + 1);
      return;
    }
    entries.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  });
  return { entries, bad };
}

/** RFC 8493 §2.1.3: only CR, LF and % are percent-encoded in manifest and fetch paths. */
function decodePath(p: string): string {
  return p.replace(/%0A|%0D|%25/gi, (m) => ({ '%0a': '\n', '%0d': '\r', '%25': '%' })[m.toLowerCase()]!);
}

export function encodePath(p: string): string {
  return p.replace(/%/g, '%25').replace(/\n/g, '%0A').replace(/\r/g, '%0D');
}

/** Why a manifest or fetch path cannot be used, as a rule and a message; undefined when it is safe. */
function pathProblem(p: string): { rule: string; why: string } | undefined {
  if (p.length === 0) return { rule: 'manifest-path-invalid', why: 'the path is empty' };
  if (p.includes('\0')) return { rule: 'manifest-path-invalid', why: 'the path contains a NUL byte' };
  if (p.includes('\\')) return { rule: 'manifest-path-invalid', why: 'the path contains a backslash (not a BagIt separator)' };
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return { rule: 'manifest-path-outside-bag', why: 'the path is absolute' };
  if (p.startsWith('~')) return { rule: 'manifest-path-outside-bag', why: "the path starts with '~' (a home directory)" };
  const parts = p.split('/');
  if (parts.includes('..')) return { rule: 'manifest-path-outside-bag', why: "the path contains '..' and would leave the bag" };
  if (parts.some((s) => s === '')) return { rule: 'manifest-path-invalid', why: 'the path has an empty component' };
  if (parts.some((s) => Buffer.byteLength(s) > MAX_NAME_BYTES)) return { rule: 'manifest-path-invalid', why: `a name is longer than ${MAX_NAME_BYTES} bytes` };
  return undefined;
}

interface ManifestEntry {
  path: string;
  hash: string;
  line: number;
}

interface Manifest {
  file: string;
  algorithm: BagAlgorithm;
  entries: Map<string, ManifestEntry>;
}

function parseManifest(file: string, algorithm: BagAlgorithm, text: string, p: Problems, payload: boolean): Manifest {
  const entries = new Map<string, ManifestEntry>();
  let markerWarned = false;
  lines(text).forEach((raw, i) => {
    const line = raw.replace(/^\uFEFF/, '');
    if (line.trim() === '') return;
    const m = /^([^\s]+)[ \t]+(.+)$/.exec(line);
    if (!m) {
      p.errors.push({ file, rule: 'manifest-line-malformed', message: `${file} line ${i + 1}: expected '<checksum> <path>'` });
      return;
    }
    let rel = m[2];
    if (rel.startsWith('*')) {
      rel = rel.slice(1);
      if (!markerWarned) {
        markerWarned = true;
        p.warnings.push({ file, rule: 'md5sum-binary-marker', message: `${file}: lines use md5sum's '*' binary-mode marker before the path (made with md5sum tools, not a BagIt tool)` });
      }
    }
    rel = decodePath(rel.replace(/^\.\//, ''));
    const hash = m[1].toLowerCase();
    const bad = pathProblem(rel);
    if (bad) {
      p.errors.push({ file, rule: bad.rule, message: `${file} line ${i + 1}: '${visible(rel)}' refused: ${bad.why}; it is not read` });
      return;
    }
    if (payload && !rel.startsWith('data/')) {
      p.errors.push({ file, rule: 'manifest-path-outside-payload', message: `${file} line ${i + 1}: '${rel}' is not under data/; a payload manifest lists payload files only` });
      return;
    }
    if (!new RegExp(`^[0-9a-f]{${HEX_LENGTH[algorithm]}}$`).test(hash)) {
      p.errors.push({ file, rule: 'checksum-malformed', message: `${file} line ${i + 1}: '${m[1]}' is not a ${algorithm} checksum (${HEX_LENGTH[algorithm]} hexadecimal digits)` });
      return;
    }
    const key = rel.normalize('NFC');
    const prior = entries.get(key);
    if (prior) {
      if (prior.hash !== hash) {
        p.errors.push({ file, rule: 'duplicate-manifest-entry', message: `${file}: '${rel}' is listed twice with different checksums (lines ${prior.line} and ${i + 1})` });
      } else {
        p.warnings.push({ file, rule: 'duplicate-manifest-entry', message: `${file}: '${rel}' is listed twice (lines ${prior.line} and ${i + 1})` });
      }
      return;
    }
    entries.set(key, { path: rel, hash, line: i + 1 });
  });
  return { file, algorithm, entries };
}

function visible(s: string): string {
  return s.replace(/[\u0000-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

interface Parsed {
  declaration?: BagDeclaration;
  manifests: Manifest[];
  tagManifests: Manifest[];
}

async function parseBag(root: string, p: Problems): Promise<Parsed> {
  const bagitBytes = await readBytes(path.join(root, 'bagit.txt'));
  let version = '';
  let encoding = 'UTF-8';
  if (!bagitBytes) {
    p.errors.push({ file: 'bagit.txt', rule: 'bagit-txt-missing', message: 'bagit.txt is missing: this folder is not a BagIt bag' });
  } else {
    if (bagitBytes[0] === 0xef && bagitBytes[1] === 0xbb && bagitBytes[2] === 0xbf) {
      p.errors.push({ file: 'bagit.txt', rule: 'bom-in-bagit-txt', message: 'bagit.txt starts with a byte-order mark, which RFC 8493 forbids' });
    }
    const { entries, bad } = parseTagLines(new TextDecoder('utf-8').decode(bagitBytes).replace(/^\uFEFF/, ''));
    for (const n of bad) p.errors.push({ file: 'bagit.txt', rule: 'bagit-txt-malformed', message: `bagit.txt line ${n}: expected 'Label: value'` });
    const get = (label: string) => entries.find(([k]) => k === label)?.[1];
    version = get('BagIt-Version') ?? '';
    encoding = get('Tag-File-Character-Encoding') ?? '';
    if (!/^\d+\.\d+$/.test(version)) p.errors.push({ file: 'bagit.txt', rule: 'bagit-version-missing', message: `bagit.txt: BagIt-Version is ${version ? `'${version}', not M.N` : 'missing'}` });
    if (!encoding) {
      p.errors.push({ file: 'bagit.txt', rule: 'encoding-missing', message: 'bagit.txt: Tag-File-Character-Encoding is missing' });
      encoding = 'UTF-8';
    } else {
      try {
        decoderFor(encoding, Buffer.alloc(0));
      } catch {
        p.errors.push({ file: 'bagit.txt', rule: 'encoding-unknown', message: `bagit.txt: unknown Tag-File-Character-Encoding '${encoding}'` });
      }
    }
  }

  const names = (await fs.promises.readdir(root).catch(() => [] as string[])).sort();
  const manifests: Manifest[] = [];
  const tagManifests: Manifest[] = [];
  for (const name of names) {
    const m = /^(tag)?manifest-([A-Za-z0-9]+)\.txt$/.exec(name);
    if (!m) continue;
    const algorithm = m[2].toLowerCase();
    if (!isAlgorithm(algorithm)) {
      p.warnings.push({ file: name, rule: 'unknown-algorithm', message: `${name}: algorithm '${m[2]}' is not supported (md5, sha1, sha224, sha256, sha384, sha512); the file is ignored` });
      continue;
    }
    const bytes = await readBytes(path.join(root, name));
    if (!bytes) {
      p.errors.push({ file: name, rule: 'manifest-unreadable', message: `${name}: not a regular file` });
      continue;
    }
    const parsed = parseManifest(name, algorithm, decode(bytes, encoding), p, !m[1]);
    (m[1] ? tagManifests : manifests).push(parsed);
  }
  if (!manifests.length && bagitBytes) {
    p.errors.push({ file: '', rule: 'manifest-missing', message: 'the bag has no payload manifest (manifest-<algorithm>.txt)' });
  }

  const infoName = version && versionBelow(version, 0, 96) ? 'package-info.txt' : 'bag-info.txt';
  const infoBytes = (await readBytes(path.join(root, infoName))) ?? (await readBytes(path.join(root, infoName === 'bag-info.txt' ? 'package-info.txt' : 'bag-info.txt')));
  let info: Array<[string, string]> = [];
  let payloadOxum: BagDeclaration['payloadOxum'];
  if (!infoBytes) {
    p.warnings.push({ file: infoName, rule: 'bag-info-missing', message: `${infoName} is missing (optional, but it carries Payload-Oxum and Bagging-Date)` });
  } else {
    const parsed = parseTagLines(decode(infoBytes, encoding));
    info = parsed.entries;
    for (const n of parsed.bad) p.errors.push({ file: infoName, rule: 'bag-info-malformed', message: `${infoName} line ${n}: expected 'Label: value'` });
    const oxum = info.find(([k]) => k === 'Payload-Oxum')?.[1];
    if (oxum !== undefined) {
      const m = /^(\d+)\.(\d+)$/.exec(oxum);
      if (m) payloadOxum = { bytes: Number(m[1]), files: Number(m[2]) };
      else p.errors.push({ file: infoName, rule: 'payload-oxum-malformed', message: `${infoName}: Payload-Oxum '${oxum}' is not '<bytes>.<files>'` });
    } else {
      p.warnings.push({ file: infoName, rule: 'payload-oxum-missing', message: `${infoName}: no Payload-Oxum, so completeness cannot be checked quickly` });
    }
  }

  const fetch: BagDeclaration['fetch'] = [];
  const fetchBytes = await readBytes(path.join(root, 'fetch.txt'));
  if (fetchBytes) {
    lines(decode(fetchBytes, encoding)).forEach((line, i) => {
      if (!line.trim()) return;
      const m = /^(\S+)[ \t]+(\S+)[ \t]+(.+)$/.exec(line);
      if (!m) {
        p.errors.push({ file: 'fetch.txt', rule: 'fetch-line-malformed', message: `fetch.txt line ${i + 1}: expected '<url> <length> <path>'` });
        return;
      }
      const rel = decodePath(m[3]);
      const bad = pathProblem(rel);
      if (bad) {
        p.errors.push({ file: 'fetch.txt', rule: bad.rule, message: `fetch.txt line ${i + 1}: '${visible(rel)}' refused: ${bad.why}` });
        return;
      }
      fetch.push({ url: m[1], length: m[2], path: rel });
    });
    p.warnings.push({
      file: 'fetch.txt',
      rule: 'fetch-txt-present',
      message: `fetch.txt lists ${fetch.length} file(s) to download (${fetch.slice(0, 3).map((f) => f.url).join(', ')}${fetch.length > 3 ? ', …' : ''}); Fonds never downloads them`,
    });
  }

  const algorithms = manifests.map((m) => m.algorithm);
  if (algorithms.length && algorithms.every((a) => a === 'md5' || a === 'sha1')) {
    p.warnings.push({ file: '', rule: 'weak-algorithm', message: `the payload is only protected by ${algorithms.join(' and ')}; add a sha256 or sha512 manifest` });
  }
  const declaration: BagDeclaration | undefined = bagitBytes
    ? { version, encoding, info, manifestAlgorithms: algorithms, tagManifestAlgorithms: tagManifests.map((m) => m.algorithm), fetch, ...(payloadOxum ? { payloadOxum } : {}) }
    : undefined;
  return { declaration, manifests, tagManifests };
}

function versionBelow(version: string, major: number, minor: number): boolean {
  const [a, b] = version.split('.').map(Number);
  return a < major || (a === major && b < minor);
}

/** Parses the tag files only (no hashing): version, encoding, bag-info, algorithms, fetch list. */
export async function readBagDeclaration(root: string): Promise<{ declaration?: BagDeclaration; errors: BagProblem[]; warnings: BagProblem[] }> {
  const p: Problems = { errors: [], warnings: [] };
  const { declaration } = await parseBag(root, p);
  return { declaration, ...p };
}

interface PayloadFile {
  rel: string;
  abs: string;
  size: number;
}

/** Every file under data/, without following links; links are errors. */
async function walkPayload(root: string, p: Problems, signal?: AbortSignal): Promise<Map<string, PayloadFile>> {
  const files = new Map<string, PayloadFile>();
  const dataDir = path.join(root, 'data');
  const st = await fs.promises.lstat(dataDir).catch(() => undefined);
  if (!st?.isDirectory()) {
    p.errors.push({ file: 'data', rule: 'payload-directory-missing', message: 'the payload directory data/ is missing' });
    return files;
  }
  const stack = [dataDir];
  while (stack.length) {
    signal?.throwIfAborted();
    const dir = stack.pop()!;
    for (const d of await fs.promises.readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, d.name);
      const rel = toPosix(path.relative(root, abs));
      if (d.isSymbolicLink()) {
        p.errors.push({ file: rel, rule: 'symlink-in-payload', message: `${rel}: is a symbolic link; links are not followed, the payload must hold real files` });
      } else if (d.isDirectory()) stack.push(abs);
      else if (d.isFile()) {
        const s = await fs.promises.lstat(abs);
        files.set(rel.normalize('NFC'), { rel, abs, size: s.size });
      } else {
        p.errors.push({ file: rel, rule: 'special-file-in-payload', message: `${rel}: is not a regular file` });
      }
    }
  }
  return files;
}

/**
 * Validates a bag: bagit.txt, tag files in their declared encoding, Payload-Oxum first (fast
 * completeness), then completeness against every payload manifest, then fixity (one hashFile call
 * per file with every algorithm that lists it), then tag manifests.
 */
export async function validateBag(
  root: string,
  opts: { hashFile: HashFile; signal?: AbortSignal; onProgress?: (p: { files: number; bytes: number }) => void },
): Promise<BagReport> {
  const p: Problems = { errors: [], warnings: [] };
  const { signal } = opts;
  const parsed = await parseBag(root, p);
  const payload = await walkPayload(root, p, signal);
  let payloadBytes = 0;
  for (const f of payload.values()) payloadBytes += f.size;

  // 1. Payload-Oxum: the fast completeness check, before any hashing
  const oxum = parsed.declaration?.payloadOxum;
  if (oxum && (oxum.bytes !== payloadBytes || oxum.files !== payload.size)) {
    p.errors.push({
      file: 'bag-info.txt',
      rule: 'payload-oxum-mismatch',
      message: `Payload-Oxum says ${oxum.bytes} bytes in ${oxum.files} files; data/ holds ${payloadBytes} bytes in ${payload.size} files`,
    });
  }

  // 2. completeness
  const fetched = new Set(parsed.declaration?.fetch.map((f) => f.path.normalize('NFC')) ?? []);
  for (const m of parsed.manifests) {
    for (const [key, e] of m.entries) {
      if (!payload.has(key) && !fetched.has(key)) {
        p.errors.push({ file: e.path, rule: 'payload-file-missing', message: `${e.path}: listed in ${m.file} but not in the bag` });
      }
    }
    for (const [key, f] of payload) {
      if (!m.entries.has(key)) p.errors.push({ file: f.rel, rule: 'payload-file-not-in-manifest', message: `${f.rel}: in data/ but not listed in ${m.file}` });
    }
  }

  // 3. fixity, one read per file with every algorithm that lists it
  let doneFiles = 0;
  let doneBytes = 0;
  for (const [key, f] of payload) {
    signal?.throwIfAborted();
    const listing = parsed.manifests.filter((m) => m.entries.has(key));
    if (!listing.length) continue;
    if (!isInside(root, f.abs)) continue;
    let hashes: Partial<Record<BagAlgorithm, string>>;
    try {
      hashes = await opts.hashFile(f.abs, listing.map((m) => m.algorithm), signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      p.errors.push({ file: f.rel, rule: 'payload-file-unreadable', message: `${f.rel}: ${(err as Error).message}` });
      continue;
    }
    for (const m of listing) {
      const expected = m.entries.get(key)!.hash;
      const actual = hashes[m.algorithm];
      if (actual !== expected) {
        p.errors.push({ file: f.rel, rule: 'checksum-mismatch', message: `${f.rel}: ${m.algorithm} is ${actual}, but ${m.file} says ${expected}` });
      }
    }
    doneFiles++;
    doneBytes += f.size;
    opts.onProgress?.({ files: doneFiles, bytes: doneBytes });
  }

  // 4. tag manifests
  for (const m of parsed.tagManifests) {
    for (const e of m.entries.values()) {
      signal?.throwIfAborted();
      const abs = path.resolve(root, e.path);
      if (!isInside(root, abs)) continue;
      const st = await fs.promises.lstat(abs).catch(() => undefined);
      if (!st?.isFile()) {
        p.errors.push({ file: e.path, rule: 'tag-file-missing', message: `${e.path}: listed in ${m.file} but missing` });
        continue;
      }
      const hashes = await opts.hashFile(abs, [m.algorithm], signal);
      if (hashes[m.algorithm] !== e.hash) {
        p.errors.push({ file: e.path, rule: 'tag-checksum-mismatch', message: `${e.path}: ${m.algorithm} is ${hashes[m.algorithm]}, but ${m.file} says ${e.hash}` });
      }
    }
  }

  return { valid: p.errors.length === 0, errors: p.errors, warnings: p.warnings, declaration: parsed.declaration, payloadFiles: payload.size, payloadBytes };
}

/** Streams a file through node:crypto in this thread: the default for small jobs and tests. */
export async function hashFileInProcess(absPath: string, algorithms: BagAlgorithm[], signal?: AbortSignal): Promise<Partial<Record<BagAlgorithm, string>>> {
  const hashes = algorithms.map((a) => createHash(a));
  await pipeline(fs.createReadStream(absPath, { signal }), async function (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) for (const h of hashes) h.update(chunk);
  });
  return Object.fromEntries(algorithms.map((a, i) => [a, hashes[i].digest('hex')]));
}

/** Copies while hashing, in this thread; the intake pipeline passes a worker-pool version. */
export async function copyFileInProcess(source: string, target: string, algorithms: BagAlgorithm[], signal?: AbortSignal): Promise<Partial<Record<BagAlgorithm, string>>> {
  const hashes = algorithms.map((a) => createHash(a));
  await pipeline(
    fs.createReadStream(source, { signal }),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        for (const h of hashes) h.update(chunk);
        yield chunk;
      }
    },
    fs.createWriteStream(target, { flags: 'wx' }),
  );
  return Object.fromEntries(algorithms.map((a, i) => [a, hashes[i].digest('hex')]));
}

async function writeAtomic(file: string, content: string): Promise<void> {
  const temp = `${file}.tmp-${randomUUID()}`;
  await fs.promises.writeFile(temp, content, { flag: 'wx' });
  await fs.promises.rename(temp, file);
}

/**
 * Creates a BagIt 1.0 bag at `destination` from the files under `source`: every byte read once
 * (copy and sha512 + md5 in the same pass), manifests, bag-info (Payload-Oxum, Bagging-Date),
 * tag manifests, and bagit.txt written LAST, so an interrupted run never looks like a bag.
 */
export async function createBag(
  source: string,
  destination: string,
  opts: { copyFile?: CopyFile; info?: Array<[string, string]>; signal?: AbortSignal; onProgress?: (p: { files: number; bytes: number }) => void } = {},
): Promise<{ files: number; bytes: number }> {
  const src = path.resolve(source);
  const dest = path.resolve(destination);
  const st = await fs.promises.stat(src).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`${src}: not a folder`);
  if (isInside(src, dest)) throw new Error(`${dest}: the bag cannot be created inside the folder it bags`);
  const existing = await fs.promises.readdir(dest).catch(() => undefined);
  if (existing && existing.length) throw new Error(`${dest}: already exists and is not empty`);
  const copy = opts.copyFile ?? copyFileInProcess;
  const algorithms: BagAlgorithm[] = ['sha512', 'md5'];
  const rows: Record<BagAlgorithm, string[]> = { md5: [], sha1: [], sha224: [], sha256: [], sha384: [], sha512: [] };
  let files = 0;
  let bytes = 0;
  const stack = [src];
  await fs.promises.mkdir(path.join(dest, 'data'), { recursive: true });
  while (stack.length) {
    opts.signal?.throwIfAborted();
    const dir = stack.pop()!;
    for (const d of (await fs.promises.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const abs = path.join(dir, d.name);
      const rel = toPosix(path.relative(src, abs));
      if (d.isDirectory()) {
        await fs.promises.mkdir(path.join(dest, 'data', rel), { recursive: true });
        stack.push(abs);
      } else if (d.isFile()) {
        const hashes = await copy(abs, path.join(dest, 'data', rel), algorithms, opts.signal);
        const size = (await fs.promises.stat(abs)).size;
        for (const a of algorithms) rows[a].push(`${hashes[a]}  ${encodePath(`data/${rel}`)}`);
        files++;
        bytes += size;
        opts.onProgress?.({ files, bytes });
      }
      // links and special files are not bagged: a bag holds real files only
    }
  }
  const tagHashes: Record<string, Partial<Record<BagAlgorithm, string>>> = {};
  const put = async (name: string, content: string) => {
    tagHashes[name] = Object.fromEntries(algorithms.map((a) => [a, createHash(a).update(content).digest('hex')]));
    await writeAtomic(path.join(dest, name), content);
  };
  for (const a of algorithms) await put(`manifest-${a}.txt`, rows[a].sort().join('\n') + '\n');
  const date = new Date().toISOString().slice(0, 10);
  const info: Array<[string, string]> = [['Bag-Software-Agent', 'Fonds'], ['Bagging-Date', date], ['Payload-Oxum', `${bytes}.${files}`], ...(opts.info ?? [])];
  await put('bag-info.txt', info.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n');
  const bagit = 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n';
  tagHashes['bagit.txt'] = Object.fromEntries(algorithms.map((a) => [a, createHash(a).update(bagit).digest('hex')]));
  for (const a of algorithms) {
    const listed = Object.keys(tagHashes).sort().map((name) => `${tagHashes[name][a]}  ${name}`);
    await writeAtomic(path.join(dest, `tagmanifest-${a}.txt`), listed.join('\n') + '\n');
  }
  await writeAtomic(path.join(dest, 'bagit.txt'), bagit);
  return { files, bytes };
}
