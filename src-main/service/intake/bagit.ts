/**
 * BagIt (RFC 8493) validation and creation.
 *
 * Validation reports EVERY problem it finds, each with the file (relative to the bag root, '' for
 * the bag itself), a short rule id and a sentence a person can act on, in the manner of
 * bagit-python. It never throws on a bad bag (only on abort or a programming error), never
 * downloads what fetch.txt lists, and never reads a path that leaves the bag: manifest and fetch
 * paths are checked before anything is resolved, the payload is walked without following links,
 * and tag files are read only after their real path is proven to be inside the bag.
 *
 * Hashing is injected (`hashFile`, one call per file with every algorithm that lists it) so the
 * intake pipeline can reuse the hashes of its single read pass or run them in its worker pool.
 * Tag files are read as bytes and decoded explicitly in the declared encoding.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TextDecoder } from 'node:util';
import { FondsError } from '../../../src-shared/errors';
import { isInside, MAX_NAME_BYTES, MAX_PATH_BYTES, printable, toPosix } from '../paths';

// ---------------------------------------------------------------------------------------------
// Types

export const BagAlgorithms = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const;
export type BagAlgorithm = (typeof BagAlgorithms)[number];
const HEX_LENGTH: Record<BagAlgorithm, number> = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 };
const HEX: Record<BagAlgorithm, RegExp> = Object.fromEntries(Object.entries(HEX_LENGTH).map(([a, n]) => [a, new RegExp(`^[0-9a-f]{${n}}$`)])) as Record<BagAlgorithm, RegExp>;
const WEAK_ALGORITHMS: readonly BagAlgorithm[] = ['md5', 'sha1'];

export interface BagProblem {
  /** relative to the bag root; '' for the bag itself */
  file: string;
  /** short kebab-case id, e.g. 'checksum-mismatch' */
  rule: string;
  /** a sentence a person can act on, naming the file */
  message: string;
}

/** Hashes one file with every algorithm asked for; lower-case hex. */
export interface HashFile {
  (absPath: string, algorithms: BagAlgorithm[], signal?: AbortSignal): Promise<Partial<Record<BagAlgorithm, string>>>;
}

/** Copies `source` to `target` (which must not exist) while hashing, reading each byte once. */
export interface CopyFile {
  (source: string, target: string, algorithms: BagAlgorithm[], signal?: AbortSignal): Promise<Partial<Record<BagAlgorithm, string>>>;
}

export interface BagProgress {
  files: number;
  bytes: number;
}

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
  /** every path (relative to the bag root) a payload or tag manifest lists: the files that came with a checksum */
  listed: string[];
}

export interface ValidateBagOptions {
  hashFile: HashFile;
  signal?: AbortSignal;
  onProgress?: (p: BagProgress) => void;
}

export interface CreateBagOptions {
  /** Copy-and-hash in one read (the worker pool's). Preferred over `hashFile` when both are given. */
  copyFile?: CopyFile;
  /** Hashes each copied file in the bag (a second read); without copyFile or hashFile, the copy hashes in-process in one read. */
  hashFile?: HashFile;
  /** Extra bag-info.txt entries, after Bag-Software-Agent, Bagging-Date and Payload-Oxum. */
  info?: Array<[string, string]>;
  signal?: AbortSignal;
  onProgress?: (p: BagProgress) => void;
}

/** How many files are hashed or copied at once. */
const IN_FLIGHT = 4;

const isAlgorithm = (a: string): a is BagAlgorithm => (BagAlgorithms as readonly string[]).includes(a);

class Problems {
  readonly errors: BagProblem[] = [];
  readonly warnings: BagProblem[] = [];
  error(file: string, rule: string, message: string): void {
    this.errors.push({ file, rule, message });
  }
  warn(file: string, rule: string, message: string): void {
    this.warnings.push({ file, rule, message });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading tag files: bytes, then an explicit decode

type TagRead =
  | { kind: 'ok'; bytes: Buffer }
  | { kind: 'absent' }
  | { kind: 'not-file'; what: string }
  | { kind: 'unreadable'; why: string }
  | { kind: 'too-large'; size: number; limit: number };

/**
 * The most a tag file is read of. bagit.txt holds two lines; bag-info.txt a page of metadata;
 * fetch.txt is held in memory as a list. Manifests are read line by line, so only the checksums
 * they list are kept (about 200 bytes a file: 1 GiB is some five million files). Beyond these, a
 * file is reported with the rule and never read: a huge one (hostile or mistaken) would otherwise
 * exhaust memory or exceed what one string can hold (about 512 MiB), failing the whole check.
 */
const TAG_LIMITS = {
  'bagit.txt': 64 * 1024,
  'bag-info': 16 * 1024 * 1024,
  'fetch.txt': 64 * 1024 * 1024,
  manifest: 1024 * 1024 * 1024,
} as const;
/** A manifest line longer than this cannot be '<checksum> <path>' (a path is at most 4096 bytes). */
const MAX_LINE_CHARS = 64 * 1024;
const READ_CHUNK = 1024 * 1024;

const mib = (n: number) => (n >= 1024 * 1024 ? `${Math.round(n / (1024 * 1024))} MiB` : `${Math.round(n / 1024)} KiB`);

/** Opens a regular file at the bag root, without following a link. */
async function openTagFile(
  root: string,
  name: string,
): Promise<{ kind: 'ok'; fh: fs.promises.FileHandle; size: number } | Exclude<TagRead, { kind: 'ok' } | { kind: 'too-large' }>> {
  const abs = path.join(root, name);
  let st: fs.Stats;
  try {
    st = await fs.promises.lstat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'unreadable', why: (err as Error).message };
  }
  if (st.isSymbolicLink()) return { kind: 'not-file', what: 'a symbolic link (links are not followed)' };
  if (st.isDirectory()) return { kind: 'not-file', what: 'a folder' };
  if (!st.isFile()) return { kind: 'not-file', what: 'not a regular file' };
  let fh: fs.promises.FileHandle;
  try {
    // O_NOFOLLOW: a link swapped in since the lstat is refused, not followed
    fh = await fs.promises.open(abs, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') return { kind: 'not-file', what: 'a symbolic link (links are not followed)' };
    return { kind: 'unreadable', why: (err as Error).message };
  }
  const now = await fh.stat().catch(() => undefined);
  if (!now?.isFile()) {
    await fh.close();
    return { kind: 'not-file', what: 'not a regular file' };
  }
  return { kind: 'ok', fh, size: now.size };
}

/** Reads a file at the bag root as bytes, without following a link, at most `limit` bytes. */
async function readTagBytes(root: string, name: string, limit: number): Promise<TagRead> {
  const opened = await openTagFile(root, name);
  if (opened.kind !== 'ok') return opened;
  const { fh, size } = opened;
  try {
    if (size > limit) return { kind: 'too-large', size, limit };
    // one byte more than the limit: a file that grew since its stat is caught too
    const buf = Buffer.alloc(Math.min(size, limit) + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got > limit) return { kind: 'too-large', size: got, limit };
      if (got === buf.length) break;
    }
    return { kind: 'ok', bytes: buf.subarray(0, got) };
  } catch (err) {
    return { kind: 'unreadable', why: (err as Error).message };
  } finally {
    await fh.close();
  }
}

/** The sentence for a tag file over its limit. */
function tooLarge(name: string, r: { size: number; limit: number }): string {
  return `${name}: ${r.size} bytes, more than the ${mib(r.limit)} Fonds reads of this tag file; it is not read. A tag file this large is a mistake or hostile; rewrite the bag`;
}
/** A tag-file character encoding, as this module can decode it. */
type TagCodec = { kind: 'utf-8' } | { kind: 'utf-16'; endian?: 'le' | 'be' } | { kind: 'latin1' } | { kind: 'other'; label: string };

/** The codec for a declared Tag-File-Character-Encoding, or undefined when it is not known. */
function tagCodec(declared: string): TagCodec | undefined {
  const e = declared.trim().toLowerCase();
  if (e === 'utf-8' || e === 'utf8') return { kind: 'utf-8' };
  if (e === 'utf-16' || e === 'utf16') return { kind: 'utf-16' };
  if (e === 'utf-16le' || e === 'utf-16be') return { kind: 'utf-16', endian: e.endsWith('le') ? 'le' : 'be' };
  // true ISO-8859-1 (the WHATWG label maps to windows-1252, which differs in 0x80–0x9F)
  if (['iso-8859-1', 'iso8859-1', 'iso_8859-1', 'latin1', 'latin-1', 'l1'].includes(e)) return { kind: 'latin1' };
  try {
    new TextDecoder(e);
    return { kind: 'other', label: e };
  } catch {
    return undefined;
  }
}

type Bom = 'UTF-8' | 'UTF-16LE' | 'UTF-16BE';

function bomOf(bytes: Buffer): Bom | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'UTF-8';
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return 'UTF-16LE';
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) return 'UTF-16BE';
  return undefined;
}

/** UTF-16 without a byte-order mark: guess from where the NUL bytes of ASCII text fall (big-endian when unsure, RFC 2781). */
function guessUtf16Endian(bytes: Buffer): 'le' | 'be' {
  let even = 0;
  let odd = 0;
  for (let i = 0; i < Math.min(bytes.length, 4096); i++) {
    if (bytes[i] !== 0) continue;
    if (i % 2) odd++;
    else even++;
  }
  return odd > even ? 'le' : 'be';
}

function strictDecode(label: string, bytes: Buffer): { text: string; invalid: boolean } {
  try {
    return { text: new TextDecoder(label, { fatal: true, ignoreBOM: true }).decode(bytes), invalid: false };
  } catch {
    return { text: new TextDecoder(label, { ignoreBOM: true }).decode(bytes), invalid: true };
  }
}

/** Decodes a tag file chunk by chunk (a multi-byte character may straddle two chunks). */
interface TagDecoder {
  decode(chunk: Buffer, final: boolean): string;
  /** reports bytes that are not valid in the declared encoding, once the whole file was decoded */
  finish(): void;
}

/**
 * The decoder of a tag file (not bagit.txt) in the declared encoding, from its first bytes
 * (`head`, which it returns without their byte-order mark). A byte-order mark is expected with
 * UTF-16, tolerated with a warning with UTF-8 (as bagit-python does), and an error with any other
 * encoding (the file is then not in the encoding the bag declares).
 */
function tagDecoder(file: string, head: Buffer, declared: string, codec: TagCodec, p: Problems): { decoder: TagDecoder; body: Buffer } {
  const bom = bomOf(head);
  let body = head;
  let decodeAs: TagCodec = codec;
  if (bom) {
    body = head.subarray(bom === 'UTF-8' ? 3 : 2);
    const bomEndian = bom === 'UTF-16LE' ? 'le' : 'be';
    if (codec.kind === 'utf-16' && bom !== 'UTF-8' && (!codec.endian || codec.endian === bomEndian)) {
      decodeAs = { kind: 'utf-16', endian: bomEndian };
    } else if (codec.kind === 'utf-8' && bom === 'UTF-8') {
      p.warn(file, 'bom-in-tag-file', `${file}: starts with a UTF-8 byte-order mark, which RFC 8493 does not use for UTF-8 tag files; it is ignored, but the tool that wrote it should be fixed`);
    } else {
      p.error(file, 'bom-in-tag-file', `${file}: starts with a ${bom} byte-order mark, but bagit.txt declares the tag files to be ${declared}; re-encode ${file} in ${declared} or correct Tag-File-Character-Encoding`);
      decodeAs = bom === 'UTF-8' ? { kind: 'utf-8' } : { kind: 'utf-16', endian: bomEndian };
    }
  }
  if (decodeAs.kind === 'latin1') return { body, decoder: { decode: (chunk) => chunk.toString('latin1'), finish: () => undefined } };
  const label = decodeAs.kind === 'utf-8' ? 'utf-8' : decodeAs.kind === 'utf-16' ? `utf-16${decodeAs.endian ?? guessUtf16Endian(body)}` : decodeAs.label;
  // the lenient decoder gives the text; a strict one beside it only tells whether every byte was valid
  const lenient = new TextDecoder(label, { ignoreBOM: true });
  let strict: TextDecoder | undefined = new TextDecoder(label, { fatal: true, ignoreBOM: true });
  let invalid = false;
  return {
    body,
    decoder: {
      decode(chunk, final) {
        if (strict) {
          try {
            strict.decode(chunk, { stream: !final });
          } catch {
            invalid = true;
            strict = undefined;
          }
        }
        return lenient.decode(chunk, { stream: !final });
      },
      finish() {
        if (invalid) {
          p.error(file, 'tag-file-encoding-invalid', `${file}: is not valid ${declared} text (the encoding bagit.txt declares); undecodable bytes were replaced, so checksums and paths read from it may be wrong`);
        }
      },
    },
  };
}

/** Decodes a whole tag file (not bagit.txt) in the declared encoding; see tagDecoder. */
function decodeTagFile(file: string, bytes: Buffer, declared: string, codec: TagCodec, p: Problems): string {
  const { decoder, body } = tagDecoder(file, bytes, declared, codec, p);
  const text = decoder.decode(body, true);
  decoder.finish();
  return text;
}

/**
 * Reads a tag file at the bag root line by line (lines end in CR LF, LF or CR), decoded in the
 * declared encoding, never holding the whole file: `onLine` gets each line and its number. A file
 * over `limit` bytes is not read (or no further, if it grew), a line over MAX_LINE_CHARS is
 * reported and skipped.
 */
async function readTagLines(
  root: string,
  name: string,
  limit: number,
  declared: string,
  codec: TagCodec,
  p: Problems,
  onLine: (line: string, n: number) => void,
): Promise<Exclude<TagRead, { kind: 'ok' }> | { kind: 'ok' }> {
  const opened = await openTagFile(root, name);
  if (opened.kind !== 'ok') return opened;
  const { fh, size } = opened;
  if (size > limit) {
    await fh.close();
    return { kind: 'too-large', size, limit };
  }
  let decoder: TagDecoder | undefined;
  let carry = '';
  let n = 0;
  let skipping = false;
  const feed = (text: string, final: boolean) => {
    let t = carry + text;
    // a CR at the end may be the first half of CR LF: keep it for the next chunk
    let hold = '';
    if (!final && t.endsWith('\r')) {
      t = t.slice(0, -1);
      hold = '\r';
    }
    const lines = t.split(/\r\n|\r|\n/);
    carry = final ? '' : lines.pop()! + hold;
    const tooLong = (at: number) => p.error(name, 'tag-line-too-long', `${name} line ${at}: is longer than ${MAX_LINE_CHARS} characters, which no tag file line can be; it is skipped`);
    for (const line of lines) {
      n++;
      if (skipping) skipping = false; // the end of an over-long line, already reported
      else if (line.length > MAX_LINE_CHARS) tooLong(n);
      else onLine(line, n);
    }
    // a line with no end in sight is not kept growing in memory: reported, and skipped up to its end
    if (carry.length - hold.length > MAX_LINE_CHARS) {
      if (!skipping) tooLong(n + 1);
      skipping = true;
      carry = hold;
    }
  };
  try {
    const buf = Buffer.alloc(READ_CHUNK);
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit) return { kind: 'too-large', size: total, limit };
      let chunk: Buffer = buf.subarray(0, bytesRead);
      if (!decoder) {
        const first = tagDecoder(name, chunk, declared, codec, p);
        decoder = first.decoder;
        chunk = first.body;
      }
      feed(decoder.decode(chunk, false), false);
    }
    feed(decoder ? decoder.decode(Buffer.alloc(0), true) : '', true);
    decoder?.finish();
    return { kind: 'ok' };
  } catch (err) {
    return { kind: 'unreadable', why: (err as Error).message };
  } finally {
    await fh.close();
  }
}

/** Lines end in CR LF, LF or CR (RFC 8493 §2.1). */
function splitLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

/** `Label: value` lines; continuation lines (leading white space) are joined; labels trimmed; repeated labels kept. */
function parseTagLines(text: string): { entries: Array<[string, string]>; bad: number[] } {
  const entries: Array<[string, string]> = [];
  const bad: number[] = [];
  splitLines(text).forEach((line, i) => {
    if (line.trim() === '') return;
    if (/^[ \t]/.test(line)) {
      if (entries.length) entries[entries.length - 1][1] = `${entries[entries.length - 1][1]} ${line.trim()}`.trim();
      else bad.push(i + 1);
      return;
    }
    const colon = line.indexOf(':');
    const label = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!label) {
      bad.push(i + 1);
      return;
    }
    entries.push([label, line.slice(colon + 1).trim()]);
  });
  return { entries, bad };
}

const findTag = (entries: Array<[string, string]>, label: string) => entries.filter(([k]) => k.toLowerCase() === label.toLowerCase()).map(([, v]) => v);

// ---------------------------------------------------------------------------------------------
// Paths in manifests and fetch.txt

/** RFC 8493 §2.1.3: only CR, LF and % are percent-encoded in manifest and fetch paths; any other %xx stays literal. */
export function decodePath(p: string): string {
  return p.replace(/%0A|%0D|%25/gi, (m) => (m === '%25' ? '%' : m.toUpperCase() === '%0A' ? '\n' : '\r'));
}

/** The inverse of decodePath, for writing manifests. */
export function encodePath(p: string): string {
  return p.replace(/%/g, '%25').replace(/\n/g, '%0A').replace(/\r/g, '%0D');
}

/**
 * Why a (decoded) manifest or fetch path must not be used, or undefined when it is safe to
 * resolve under the bag root. Checked before any resolution, so a refused path is never read.
 */
export function bagPathProblem(p: string): { rule: 'manifest-path-outside-bag' | 'manifest-path-invalid'; why: string } | undefined {
  const outside = (why: string) => ({ rule: 'manifest-path-outside-bag' as const, why });
  const invalid = (why: string) => ({ rule: 'manifest-path-invalid' as const, why });
  if (p.length === 0) return invalid('the path is empty');
  if (p.includes('\0')) return invalid('the path contains a NUL byte');
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.startsWith('\\\\')) return outside('the path is absolute');
  if (p.startsWith('~')) return outside("the path starts with '~' (a home folder)");
  const parts = p.split('/');
  if (parts.includes('..')) return outside("the path has a '..' segment and would leave the bag");
  if (p.includes('\\')) {
    // `\.\./` (an escaped '..') and `..\` (a Windows separator) both mean "parent folder" to some tool
    const asEscapes = p.replace(/\\(.)/gs, '$1');
    const asWindows = p.replace(/\\/g, '/');
    const meaning = asEscapes.split('/').includes('..') ? asEscapes : asWindows.split('/').includes('..') ? asWindows : undefined;
    return invalid(
      meaning
        ? `the path contains backslashes; read as escapes or Windows separators it is '${printable(meaning)}', which would leave the bag`
        : 'the path contains a backslash, which is not a BagIt path separator',
    );
  }
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) return invalid(`the path is longer than ${MAX_PATH_BYTES} bytes`);
  if (parts.some((s) => s === '')) return invalid("the path has an empty segment ('//' or a trailing '/')");
  if (parts.some((s) => Buffer.byteLength(s) > MAX_NAME_BYTES)) return invalid(`a name in the path is longer than ${MAX_NAME_BYTES} bytes`);
  if (parts.every((s) => s === '.')) return invalid('the path names the bag folder itself, not a file');
  return undefined;
}

/** Drops '.' segments (a leading './' is common and harmless). */
function normalizeBagPath(p: string): string {
  return p
    .split('/')
    .filter((s) => s !== '.')
    .join('/');
}

/** The key a path is matched by: NFC, so a bag written on macOS (NFD names) matches its manifest. */
const keyOf = (rel: string) => rel.normalize('NFC');

// ---------------------------------------------------------------------------------------------
// Manifests

interface ManifestEntry {
  path: string;
  hash: string;
  line: number;
}

interface Manifest {
  file: string;
  algorithm: BagAlgorithm;
  /** by keyOf(path) */
  entries: Map<string, ManifestEntry>;
}

/** Parses a manifest one line at a time (it is streamed, see readTagLines); `done` gives it whole. */
function manifestParser(file: string, algorithm: BagAlgorithm, p: Problems, payload: boolean): { line(line: string, n: number): void; done(): Manifest } {
  const entries = new Map<string, ManifestEntry>();
  let markers = 0;
  let firstMarker = 0;
  const line = (text: string, n: number) => {
    if (text.trim() === '') return;
    const m = /^(\S+)[ \t]+(.*)$/.exec(text);
    if (!m || m[2] === '') {
      p.error(file, 'manifest-line-malformed', `${file} line ${n}: expected '<checksum> <path>', found '${printable(text.slice(0, 200))}'`);
      return;
    }
    let raw = m[2];
    if (raw.startsWith('*')) {
      // md5sum's binary-mode marker: not part of the path
      raw = raw.slice(1);
      if (!markers++) firstMarker = n;
    }
    const decoded = decodePath(raw.replace(/^(\.\/)+/, ''));
    const bad = bagPathProblem(decoded);
    if (bad) {
      p.error(file, bad.rule, `${file} line ${n}: '${printable(decoded)}' refused: ${bad.why}; it is not read`);
      return;
    }
    const rel = normalizeBagPath(decoded);
    if (payload && !rel.startsWith('data/')) {
      p.error(file, 'manifest-path-outside-payload', `${file} line ${n}: '${printable(rel)}' is not under data/, but a payload manifest lists payload files only`);
      return;
    }
    const hash = m[1].toLowerCase();
    if (!HEX[algorithm].test(hash)) {
      p.error(file, 'checksum-malformed', `${file} line ${n}: '${printable(m[1].slice(0, 200))}' for '${printable(rel)}' is not a ${algorithm} checksum (${HEX_LENGTH[algorithm]} hexadecimal digits)`);
      return;
    }
    const key = keyOf(rel);
    const prior = entries.get(key);
    if (prior) {
      if (prior.hash !== hash) {
        p.error(file, 'duplicate-manifest-entry', `${file}: '${printable(rel)}' is listed twice with different checksums (lines ${prior.line} and ${n}); at most one can be right`);
      } else {
        p.warn(file, 'duplicate-manifest-entry', `${file}: '${printable(rel)}' is listed twice with the same checksum (lines ${prior.line} and ${n}); remove one line`);
      }
      return;
    }
    entries.set(key, { path: rel, hash, line: n });
  };
  const done = (): Manifest => {
    if (markers) {
      p.warn(
        file,
        'md5sum-binary-marker',
        `${file}: ${markers} line(s) (first: line ${firstMarker}) put md5sum's '*' binary-mode marker before the path; it is ignored, but the manifest was written by md5sum-style tools, not a BagIt tool`,
      );
    }
    return { file, algorithm, entries };
  };
  return { line, done };
}

// ---------------------------------------------------------------------------------------------
// The tag files: bagit.txt, manifests, bag-info.txt, fetch.txt

interface Parsed {
  declaration?: BagDeclaration;
  /** where bag-info lives ('bag-info.txt', or 'package-info.txt' before 0.96) */
  infoName: string;
  manifests: Manifest[];
  tagManifests: Manifest[];
}

function versionBelow(version: string, major: number, minor: number): boolean {
  const [a, b] = version.split('.').map(Number);
  return a < major || (a === major && b < minor);
}

async function parseBagit(p: Problems, root: string): Promise<{ found: boolean; version: string; encoding: string; codec: TagCodec }> {
  const read = await readTagBytes(root, 'bagit.txt', TAG_LIMITS['bagit.txt']);
  const fallback = { version: '', encoding: 'UTF-8', codec: { kind: 'utf-8' } as TagCodec };
  if (read.kind === 'absent') {
    p.error('bagit.txt', 'bagit-txt-missing', 'bagit.txt is missing, so this folder is not a BagIt bag (every bag starts with a bagit.txt declaring BagIt-Version and Tag-File-Character-Encoding)');
    return { found: false, ...fallback };
  }
  if (read.kind === 'too-large') {
    p.error('bagit.txt', 'tag-file-too-large', tooLarge('bagit.txt', read));
    return { found: false, ...fallback };
  }
  if (read.kind !== 'ok') {
    p.error('bagit.txt', 'bagit-txt-unreadable', `bagit.txt: ${read.kind === 'not-file' ? `is ${read.what}` : `cannot be read (${read.why})`}; it must be a regular file in the bag`);
    return { found: false, ...fallback };
  }
  let bytes = read.bytes;
  let label = 'utf-8';
  const bom = bomOf(bytes);
  if (bom) {
    p.error('bagit.txt', 'bom-in-bagit-txt', `bagit.txt: starts with a ${bom} byte-order mark; RFC 8493 requires bagit.txt to be UTF-8 without one. Rewrite bagit.txt without the mark`);
    bytes = bytes.subarray(bom === 'UTF-8' ? 3 : 2);
    if (bom !== 'UTF-8') label = bom.toLowerCase();
  }
  const { text, invalid } = strictDecode(label, bytes);
  if (invalid) p.error('bagit.txt', 'bagit-txt-not-utf8', 'bagit.txt: is not valid UTF-8 text, as RFC 8493 requires');
  const { entries, bad } = parseTagLines(text);
  for (const n of bad) p.error('bagit.txt', 'bagit-txt-malformed', `bagit.txt line ${n}: expected 'Label: value'`);
  const version = findTag(entries, 'BagIt-Version')[0] ?? '';
  const encoding = findTag(entries, 'Tag-File-Character-Encoding')[0] ?? '';
  if (!version) p.error('bagit.txt', 'bagit-version-missing', "bagit.txt: has no 'BagIt-Version: M.N' line");
  else if (!/^\d+\.\d+$/.test(version)) p.error('bagit.txt', 'bagit-version-malformed', `bagit.txt: BagIt-Version '${printable(version)}' is not of the form M.N (e.g. 1.0)`);
  if (!encoding) {
    p.error('bagit.txt', 'encoding-missing', "bagit.txt: has no 'Tag-File-Character-Encoding' line; the other tag files are read as UTF-8");
    return { found: true, version, encoding: 'UTF-8', codec: { kind: 'utf-8' } };
  }
  const codec = tagCodec(encoding);
  if (!codec) {
    p.error('bagit.txt', 'encoding-unknown', `bagit.txt: Tag-File-Character-Encoding '${printable(encoding)}' is not an encoding Fonds can read; the other tag files are read as UTF-8`);
    return { found: true, version, encoding, codec: { kind: 'utf-8' } };
  }
  return { found: true, version, encoding, codec };
}

async function parseBag(root: string, p: Problems): Promise<Parsed> {
  const bagit = await parseBagit(p, root);
  const { version, encoding, codec } = bagit;

  // manifests, in name order
  const names = await fs.promises.readdir(root, { withFileTypes: true }).catch((err: Error) => {
    p.error('', 'bag-unreadable', `The bag folder ${root} cannot be listed: ${err.message}`);
    return [] as fs.Dirent[];
  });
  names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const manifests: Manifest[] = [];
  const tagManifests: Manifest[] = [];
  for (const d of names) {
    const m = /^(tag)?manifest-(.+)\.txt$/.exec(d.name);
    if (!m) continue;
    const name = d.name;
    const algorithm = m[2].toLowerCase();
    if (!isAlgorithm(algorithm)) {
      p.warn(name, 'unknown-algorithm', `${name}: '${printable(m[2])}' is not an algorithm Fonds checks (${BagAlgorithms.join(', ')}); this ${m[1] ? 'tag ' : ''}manifest is ignored`);
      continue;
    }
    const parser = manifestParser(name, algorithm, p, !m[1]);
    const read = await readTagLines(root, name, TAG_LIMITS.manifest, encoding, codec, p, parser.line);
    if (read.kind === 'too-large') {
      p.error(name, 'tag-file-too-large', `${tooLarge(name, read)}; its files cannot be checked`);
      continue;
    }
    if (read.kind !== 'ok') {
      p.error(name, 'manifest-unreadable', `${name}: ${read.kind === 'not-file' ? `is ${read.what}` : read.kind === 'absent' ? 'vanished while reading' : `cannot be read (${read.why})`}; it is ignored`);
      continue;
    }
    (m[1] ? tagManifests : manifests).push(parser.done());
  }
  if (!manifests.length) {
    p.error('', 'manifest-missing', 'The bag has no payload manifest (manifest-<algorithm>.txt, e.g. manifest-sha512.txt) that Fonds can check, so its payload cannot be verified');
  }

  // bag-info.txt (package-info.txt before 0.96)
  const preferred = version && /^\d+\.\d+$/.test(version) && versionBelow(version, 0, 96) ? 'package-info.txt' : 'bag-info.txt';
  const other = preferred === 'bag-info.txt' ? 'package-info.txt' : 'bag-info.txt';
  let infoName = preferred;
  let infoRead = await readTagBytes(root, preferred, TAG_LIMITS['bag-info']);
  if (infoRead.kind === 'absent') {
    const alt = await readTagBytes(root, other, TAG_LIMITS['bag-info']);
    if (alt.kind !== 'absent') {
      infoName = other;
      infoRead = alt;
    }
  }
  let info: Array<[string, string]> = [];
  let payloadOxum: BagDeclaration['payloadOxum'];
  if (infoRead.kind === 'absent') {
    p.warn(preferred, 'bag-info-missing', `${preferred} is missing; it is optional, but it carries Payload-Oxum (a fast completeness check) and Bagging-Date`);
  } else if (infoRead.kind === 'too-large') {
    p.error(infoName, 'tag-file-too-large', `${tooLarge(infoName, infoRead)}; its Payload-Oxum is not checked`);
  } else if (infoRead.kind !== 'ok') {
    p.error(infoName, 'bag-info-unreadable', `${infoName}: ${infoRead.kind === 'not-file' ? `is ${infoRead.what}` : `cannot be read (${infoRead.why})`}`);
  } else {
    const parsed = parseTagLines(decodeTagFile(infoName, infoRead.bytes, encoding, codec, p));
    info = parsed.entries;
    for (const n of parsed.bad) p.error(infoName, 'bag-info-malformed', `${infoName} line ${n}: expected 'Label: value' or an indented continuation line`);
    const oxums = findTag(info, 'Payload-Oxum');
    if (!oxums.length) {
      p.warn(infoName, 'payload-oxum-missing', `${infoName}: has no Payload-Oxum, so a truncated or incomplete payload is only found by hashing every file`);
    } else {
      const om = /^(\d+)\.(\d+)$/.exec(oxums[0]);
      if (om) payloadOxum = { bytes: Number(om[1]), files: Number(om[2]) };
      else p.error(infoName, 'payload-oxum-malformed', `${infoName}: Payload-Oxum '${printable(oxums[0])}' is not '<bytes>.<files>' (e.g. 1024.3)`);
      if (new Set(oxums).size > 1) p.error(infoName, 'payload-oxum-malformed', `${infoName}: Payload-Oxum is given ${oxums.length} times with different values (${oxums.map(printable).join(', ')})`);
    }
    const dates = [...findTag(info, 'Bagging-Date'), ...(infoName === 'package-info.txt' ? findTag(info, 'Packing-Date') : [])];
    if (!dates.length) p.warn(infoName, 'bagging-date-missing', `${infoName}: has no Bagging-Date (YYYY-MM-DD)`);
    else if (!dates.some((d) => /^\d{4}-\d{2}-\d{2}$/.test(d))) p.warn(infoName, 'bagging-date-malformed', `${infoName}: Bagging-Date '${printable(dates[0])}' is not of the form YYYY-MM-DD`);
  }

  // fetch.txt: reported, never followed
  const fetch: BagDeclaration['fetch'] = [];
  const fetchRead = await readTagBytes(root, 'fetch.txt', TAG_LIMITS['fetch.txt']);
  if (fetchRead.kind === 'ok') {
    splitLines(decodeTagFile('fetch.txt', fetchRead.bytes, encoding, codec, p)).forEach((line, i) => {
      if (!line.trim()) return;
      const m = /^(\S+)[ \t]+(\S+)[ \t]+(.+)$/.exec(line);
      if (!m) {
        p.error('fetch.txt', 'fetch-line-malformed', `fetch.txt line ${i + 1}: expected '<url> <length> <path>', found '${printable(line.slice(0, 200))}'`);
        return;
      }
      if (!/^(\d+|-)$/.test(m[2])) p.error('fetch.txt', 'fetch-line-malformed', `fetch.txt line ${i + 1}: the length '${printable(m[2])}' is neither a number of bytes nor '-'`);
      const decoded = decodePath(m[3].replace(/^(\.\/)+/, ''));
      const bad = bagPathProblem(decoded);
      if (bad) {
        p.error('fetch.txt', bad.rule, `fetch.txt line ${i + 1}: '${printable(decoded)}' refused: ${bad.why}; it is not read`);
        return;
      }
      const rel = normalizeBagPath(decoded);
      if (!rel.startsWith('data/')) {
        p.error('fetch.txt', 'manifest-path-outside-payload', `fetch.txt line ${i + 1}: '${printable(rel)}' is not under data/; fetch.txt may only list payload files`);
        return;
      }
      fetch.push({ url: m[1], length: m[2], path: rel });
    });
    const shown = fetch.slice(0, 5).map((f) => f.url);
    p.warn(
      'fetch.txt',
      'fetch-txt-present',
      `fetch.txt: lists ${fetch.length} file(s) to download (${shown.join(', ')}${fetch.length > shown.length ? `, and ${fetch.length - shown.length} more` : ''}); Fonds never downloads them — fetch them yourself and check the bag again`,
    );
  } else if (fetchRead.kind === 'too-large') {
    p.error('fetch.txt', 'tag-file-too-large', `${tooLarge('fetch.txt', fetchRead)}; the files it lists are not known`);
  } else if (fetchRead.kind !== 'absent') {
    p.error('fetch.txt', 'fetch-txt-unreadable', `fetch.txt: ${fetchRead.kind === 'not-file' ? `is ${fetchRead.what}` : `cannot be read (${fetchRead.why})`}`);
  }

  const algorithms = manifests.map((m) => m.algorithm);
  if (algorithms.length && algorithms.every((a) => WEAK_ALGORITHMS.includes(a))) {
    p.warn(
      manifests[0].file,
      'weak-algorithm',
      `${manifests.map((m) => m.file).join(', ')}: the payload is protected only by ${algorithms.join(' and ')}, which does not resist deliberate tampering; add a manifest-sha512.txt (or sha256) when the bag is next rewritten`,
    );
  }
  const declaration: BagDeclaration | undefined = bagit.found
    ? { version, encoding, info, manifestAlgorithms: algorithms, tagManifestAlgorithms: tagManifests.map((m) => m.algorithm), fetch, ...(payloadOxum ? { payloadOxum } : {}) }
    : undefined;
  return { declaration, infoName, manifests, tagManifests };
}

/** Parses the tag files only (no payload walk, no hashing): version, encoding, bag-info, algorithms, fetch list. */
export async function readBagDeclaration(root: string): Promise<{ declaration?: BagDeclaration; errors: BagProblem[]; warnings: BagProblem[] }> {
  const p = new Problems();
  const { declaration } = await parseBag(path.resolve(root), p);
  return { declaration, errors: p.errors, warnings: p.warnings };
}

/** True when `dir` holds a bagit.txt (a regular file, not a link). */
export async function isBag(dir: string): Promise<boolean> {
  const st = await fs.promises.lstat(path.join(dir, 'bagit.txt')).catch(() => undefined);
  return !!st?.isFile();
}

// ---------------------------------------------------------------------------------------------
// The payload

interface PayloadFile {
  rel: string;
  abs: string;
  size: number;
}

/** Every regular file under data/, by keyOf(rel); links are reported, never followed. */
async function walkPayload(root: string, p: Problems, signal?: AbortSignal): Promise<Map<string, PayloadFile>> {
  const files = new Map<string, PayloadFile>();
  const dataDir = path.join(root, 'data');
  const st = await fs.promises.lstat(dataDir).catch(() => undefined);
  if (!st) {
    p.error('data', 'payload-directory-missing', 'data/: the payload folder is missing; every bag keeps its payload in data/');
    return files;
  }
  if (st.isSymbolicLink()) {
    p.error('data', 'symlink-in-payload', 'data/: is a symbolic link; links are not followed, the payload must be a real folder inside the bag');
    return files;
  }
  if (!st.isDirectory()) {
    p.error('data', 'payload-directory-missing', 'data/: is not a folder; every bag keeps its payload in the folder data/');
    return files;
  }
  const stack = [dataDir];
  while (stack.length) {
    signal?.throwIfAborted();
    const dir = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch (err) {
      const rel = toPosix(path.relative(root, dir));
      p.error(rel, 'payload-unreadable', `${rel}: the folder cannot be listed (${(err as Error).message}), so the files in it cannot be checked`);
      continue;
    }
    for (const d of entries) {
      const abs = path.join(dir, d.name);
      const rel = toPosix(path.relative(root, abs));
      if (d.isSymbolicLink()) {
        p.error(rel, 'symlink-in-payload', `${printable(rel)}: is a symbolic link; links are not followed, the payload must hold the real files`);
      } else if (d.isDirectory()) {
        stack.push(abs);
      } else if (d.isFile()) {
        const s = await fs.promises.lstat(abs).catch(() => undefined);
        if (!s) continue; // vanished since the listing: reported as missing if a manifest lists it
        const key = keyOf(rel);
        const prior = files.get(key);
        if (prior) {
          p.error(rel, 'payload-names-collide', `${printable(rel)} and ${printable(prior.rel)}: the two names differ only in Unicode normalization, so a manifest cannot tell them apart (and macOS and Windows cannot hold both); rename one`);
          continue;
        }
        files.set(key, { rel, abs, size: s.size });
      } else {
        p.error(rel, 'special-file-in-payload', `${printable(rel)}: is not a regular file (a device, socket or pipe); the payload must hold regular files only`);
      }
    }
  }
  return files;
}

/**
 * Runs `fn` over `items`, at most `limit` at a time. After a failure (or an abort) no new item is
 * started, and the first error is thrown once every item in flight has settled, so a caller's
 * clean-up never races with work still writing.
 */
async function inFlight<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        signal?.throwIfAborted();
        await fn(items[i], i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}

/** Resolves a (checked) bag path and proves it, links followed, to be a regular file inside the bag. */
async function safeTagTarget(root: string, rel: string): Promise<{ abs: string } | { missing: string } | { outside: string }> {
  const abs = path.resolve(root, ...rel.split('/'));
  if (!isInside(root, abs) || abs === path.resolve(root)) return { outside: 'it resolves outside the bag' };
  const lst = await fs.promises.lstat(abs).catch(() => undefined);
  if (!lst) return { missing: 'it is not in the bag' };
  let real: string;
  let realRoot: string;
  try {
    [real, realRoot] = await Promise.all([fs.promises.realpath(abs), fs.promises.realpath(root)]);
  } catch {
    return { missing: 'it is a link to nothing' };
  }
  if (!isInside(realRoot, real)) return { outside: 'a symbolic link on its way leads outside the bag' };
  const st = await fs.promises.stat(abs).catch(() => undefined);
  if (!st?.isFile()) return { missing: 'it is not a regular file' };
  return { abs };
}

/**
 * Validates a bag, reporting every problem: bagit.txt; tag files in their declared encoding;
 * Payload-Oxum first (the fast completeness check); completeness against every payload manifest;
 * fixity (one hashFile call per file with every algorithm that lists it); then tag manifests.
 * Throws only when `signal` aborts (its reason) or on a programming error.
 */
export async function validateBag(root: string, opts: ValidateBagOptions): Promise<BagReport> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const bagRoot = path.resolve(root);
  const p = new Problems();
  const parsed = await parseBag(bagRoot, p);
  signal?.throwIfAborted();
  const payload = await walkPayload(bagRoot, p, signal);
  let payloadBytes = 0;
  for (const f of payload.values()) payloadBytes += f.size;

  // fetch.txt: files still to download are holes, reported once each (not also as missing from a manifest)
  const fetchList = parsed.declaration?.fetch ?? [];
  const fetched = new Set(fetchList.map((f) => keyOf(f.path)));
  const holes = fetchList.filter((f) => !payload.has(keyOf(f.path)));

  // 1. Payload-Oxum: the fast completeness check, before any hashing
  const oxum = parsed.declaration?.payloadOxum;
  if (oxum) {
    const unknownLength = holes.some((f) => !/^\d+$/.test(f.length));
    const expectedFiles = payload.size + holes.length;
    const expectedBytes = payloadBytes + holes.reduce((s, f) => s + (/^\d+$/.test(f.length) ? Number(f.length) : 0), 0);
    if (oxum.files !== expectedFiles || (!unknownLength && oxum.bytes !== expectedBytes)) {
      const holeNote = holes.length ? ` (counting ${holes.length} file(s) fetch.txt lists but the bag does not hold yet)` : '';
      p.error(
        parsed.infoName,
        'payload-oxum-mismatch',
        `${parsed.infoName}: Payload-Oxum says ${oxum.bytes} bytes in ${oxum.files} files, but data/ holds ${expectedBytes} bytes in ${expectedFiles} files${holeNote}: files are missing, extra or truncated`,
      );
    }
  }

  // 2. completeness: every listed file is there, every payload file is listed everywhere. A bag with
  // holes is not complete, so not valid (RFC 8493 §3); Fonds never downloads them itself.
  for (const f of holes) {
    p.error(
      f.path,
      'fetch-file-missing',
      `${printable(f.path)}: is listed in fetch.txt (to be fetched from ${printable(f.url)}) but is not in the bag, so the bag is not complete; Fonds never downloads it — fetch it yourself and check the bag again`,
    );
  }
  for (const m of parsed.manifests) {
    for (const [key, e] of m.entries) {
      if (!payload.has(key) && !fetched.has(key)) {
        p.error(e.path, 'payload-file-missing', `${printable(e.path)}: is listed in ${m.file} (line ${e.line}) but is not in the bag`);
      }
    }
    for (const [key, f] of payload) {
      if (!m.entries.has(key)) p.error(f.rel, 'payload-file-not-in-manifest', `${printable(f.rel)}: is in data/ but not listed in ${m.file}, so its integrity cannot be checked`);
    }
  }
  for (const f of fetchList) {
    const key = keyOf(f.path);
    for (const m of parsed.manifests) {
      if (!m.entries.has(key)) p.error('fetch.txt', 'fetch-file-not-in-manifest', `fetch.txt: '${printable(f.path)}' is to be fetched from ${f.url} but is not listed in ${m.file}, so it could never be checked`);
    }
  }

  // 3. fixity: one read per file, with every algorithm that lists it
  const toHash = [...payload].filter(([key]) => parsed.manifests.some((m) => m.entries.has(key)));
  const results: Array<BagProblem[]> = new Array(toHash.length);
  let doneFiles = 0;
  let doneBytes = 0;
  await inFlight(
    toHash,
    IN_FLIGHT,
    async ([key, f], i) => {
      const listing = parsed.manifests.filter((m) => m.entries.has(key));
      const found: BagProblem[] = [];
      let hashes: Partial<Record<BagAlgorithm, string>>;
      try {
        hashes = await opts.hashFile(f.abs, [...new Set(listing.map((m) => m.algorithm))], signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        results[i] = [{ file: f.rel, rule: 'payload-file-unreadable', message: `${printable(f.rel)}: cannot be read (${(err as Error).message})` }];
        return;
      }
      for (const m of listing) {
        const expected = m.entries.get(key)!.hash;
        const actual = hashes[m.algorithm]?.toLowerCase();
        if (actual !== expected) {
          found.push({ file: f.rel, rule: 'checksum-mismatch', message: `${printable(f.rel)}: ${m.algorithm} is ${actual ?? '(not computed)'}, but ${m.file} says ${expected}` });
        }
      }
      results[i] = found;
      doneFiles++;
      doneBytes += f.size;
      opts.onProgress?.({ files: doneFiles, bytes: doneBytes });
    },
    signal,
  );
  for (const r of results) p.errors.push(...r);

  // 4. tag manifests: every tag file listed exists and matches (one read per file)
  const tagFiles = new Map<string, { path: string; listing: Array<{ m: Manifest; e: ManifestEntry }> }>();
  for (const m of parsed.tagManifests) {
    for (const [key, e] of m.entries) {
      const t = tagFiles.get(key) ?? { path: e.path, listing: [] };
      t.listing.push({ m, e });
      tagFiles.set(key, t);
    }
  }
  for (const t of tagFiles.values()) {
    signal?.throwIfAborted();
    const target = await safeTagTarget(bagRoot, t.path);
    const where = t.listing.map(({ m, e }) => `${m.file} line ${e.line}`).join(', ');
    if ('outside' in target) {
      p.error(t.path, 'manifest-path-outside-bag', `${printable(t.path)}: listed in ${where}, but ${target.outside}; it is not read`);
      continue;
    }
    if ('missing' in target) {
      p.error(t.path, 'tag-file-missing', `${printable(t.path)}: listed in ${where}, but ${target.missing}`);
      continue;
    }
    let hashes: Partial<Record<BagAlgorithm, string>>;
    try {
      hashes = await opts.hashFile(target.abs, [...new Set(t.listing.map(({ m }) => m.algorithm))], signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      p.error(t.path, 'tag-file-unreadable', `${printable(t.path)}: cannot be read (${(err as Error).message})`);
      continue;
    }
    for (const { m, e } of t.listing) {
      const actual = hashes[m.algorithm]?.toLowerCase();
      if (actual !== e.hash) p.error(t.path, 'tag-checksum-mismatch', `${printable(t.path)}: ${m.algorithm} is ${actual ?? '(not computed)'}, but ${m.file} says ${e.hash}`);
    }
  }

  const listed = [...new Set([...parsed.manifests, ...parsed.tagManifests].flatMap((m) => [...m.entries.values()].map((e) => e.path)))];
  return { valid: p.errors.length === 0, errors: p.errors, warnings: p.warnings, declaration: parsed.declaration, payloadFiles: payload.size, payloadBytes, listed };
}

// ---------------------------------------------------------------------------------------------
// Hashing and copying in this thread

function checkAlgorithms(algorithms: BagAlgorithm[]): BagAlgorithm[] {
  const unique = [...new Set(algorithms)];
  for (const a of unique) if (!isAlgorithm(a)) throw new TypeError(`'${String(a)}' is not a BagIt algorithm (${BagAlgorithms.join(', ')})`);
  return unique;
}

/** Streams a file through node:crypto in this thread: the default hashFile for small jobs and tests. */
export async function hashFileInProcess(absPath: string, algorithms: BagAlgorithm[], signal?: AbortSignal): Promise<Partial<Record<BagAlgorithm, string>>> {
  const algs = checkAlgorithms(algorithms);
  const hashes = algs.map((a) => createHash(a));
  await pipeline(fs.createReadStream(absPath, { signal }), async function (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) for (const h of hashes) h.update(chunk);
  });
  return Object.fromEntries(algs.map((a, i) => [a, hashes[i].digest('hex')])) as Partial<Record<BagAlgorithm, string>>;
}

/** Copies while hashing, in this thread (the target must not exist); the intake pipeline passes a worker-pool version. */
export async function copyFileInProcess(source: string, target: string, algorithms: BagAlgorithm[], signal?: AbortSignal): Promise<Partial<Record<BagAlgorithm, string>>> {
  const algs = checkAlgorithms(algorithms);
  const hashes = algs.map((a) => createHash(a));
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
  return Object.fromEntries(algs.map((a, i) => [a, hashes[i].digest('hex')])) as Partial<Record<BagAlgorithm, string>>;
}

// ---------------------------------------------------------------------------------------------
// Creating a bag

const CREATE_ALGORITHMS: BagAlgorithm[] = ['sha512', 'md5'];
const BAGIT_TXT = 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n';

/** Writes under a temporary name, then renames: a reader sees the whole file or none. */
async function writeAtomic(file: string, content: string): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomUUID()}`);
  try {
    await fs.promises.writeFile(temp, content, { flag: 'wx' });
    await fs.promises.rename(temp, file);
  } catch (err) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest. */
async function realpathLoose(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try {
      return path.join(await fs.promises.realpath(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return p;
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

/** A bag-info.txt line: values with line breaks are folded onto indented continuation lines. */
function infoLine(label: string, value: string): string {
  if (!label.trim() || /[:\r\n]/.test(label) || /^\s/.test(label)) {
    throw new FondsError('INVALID_INPUT', `bag-info label '${printable(label)}' is not usable: a label must be non-empty, start with a non-space and hold no ':' or line break.`);
  }
  return `${label.trim()}: ${value.trim().split(/\r\n|\r|\n/).join('\n  ')}`;
}

/**
 * Creates a BagIt 1.0 bag at `destination` from the files under `source`: each byte is read once
 * (copied and hashed with sha512 and md5 in the same pass, unless `hashFile` alone is given), then
 * manifest-sha512.txt, manifest-md5.txt, bag-info.txt (Bag-Software-Agent, Bagging-Date,
 * Payload-Oxum, opts.info), tagmanifest-sha512.txt, tagmanifest-md5.txt and bagit.txt LAST.
 * The payload is copied into a hidden working folder and renamed into place, tag files are
 * written under temporary names and renamed, so an interrupted run never looks like a bag; a
 * failed run removes what it wrote. Refuses a destination that exists and is not an empty
 * folder, a destination inside the source, and sources holding links, special files or names a
 * bag cannot carry.
 */
export async function createBag(source: string, destination: string, opts: CreateBagOptions = {}): Promise<{ files: number; bytes: number }> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const src = path.resolve(source);
  const dest = path.resolve(destination);
  const st = await fs.promises.stat(src).catch(() => undefined);
  if (!st?.isDirectory()) throw new FondsError('NOT_FOUND', `${src}: no such folder to bag.`, { path: src });
  if (isInside(src, dest) || isInside(await fs.promises.realpath(src), await realpathLoose(dest))) {
    throw new FondsError('PATH_INVALID', `${dest}: the bag cannot be created inside the folder it bags (${src}); choose a destination outside it.`, { path: dest });
  }
  const destStat = await fs.promises.stat(dest).catch(() => undefined);
  if (destStat && !destStat.isDirectory()) throw new FondsError('CONFLICT', `${dest}: already exists and is not a folder; choose a new or empty folder for the bag.`, { path: dest });
  if (destStat && (await fs.promises.readdir(dest)).length) {
    throw new FondsError('CONFLICT', `${dest}: already exists and is not empty; choose a new or empty folder for the bag.`, { path: dest });
  }

  // 1. what to bag, checked before anything is written
  const extra = opts.info ?? [];
  for (const [k, v] of extra) infoLine(k, v);
  if (extra.some(([k]) => k.trim().toLowerCase() === 'payload-oxum')) throw new FondsError('INVALID_INPUT', 'bag-info: Payload-Oxum is computed by Fonds from the payload and cannot be given.');
  const given = (label: string) => extra.some(([k]) => k.trim().toLowerCase() === label.toLowerCase());
  const files: Array<{ rel: string; abs: string }> = [];
  const dirs: string[] = [];
  const refused: string[] = [];
  const seen = new Map<string, string>();
  const stack = [src];
  while (stack.length) {
    signal?.throwIfAborted();
    const dir = stack.pop()!;
    for (const d of await fs.promises.readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, d.name);
      const rel = toPosix(path.relative(src, abs));
      if (d.isSymbolicLink() || (!d.isDirectory() && !d.isFile())) {
        refused.push(`${printable(rel)} (${d.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'})`);
        continue;
      }
      const bad = bagPathProblem(`data/${rel}`);
      if (bad) {
        refused.push(`${printable(rel)} (${bad.why})`);
        continue;
      }
      const prior = seen.get(keyOf(rel));
      if (prior !== undefined) {
        refused.push(`${printable(rel)} (differs from ${printable(prior)} only in Unicode normalization)`);
        continue;
      }
      seen.set(keyOf(rel), rel);
      if (d.isDirectory()) {
        dirs.push(rel);
        stack.push(abs);
      } else files.push({ rel, abs });
    }
  }
  if (refused.length) {
    const shown = refused.slice(0, 10).join('; ');
    throw new FondsError(
      'INVALID_INPUT',
      `${src}: ${refused.length} item(s) cannot go into a bag, which holds regular files with portable names only: ${shown}${refused.length > 10 ? '; …' : ''}. Replace links by the files they point to, rename or remove the others, then try again.`,
      { path: src },
    );
  }
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  dirs.sort();

  // 2. the payload, copied into a hidden working folder
  const createdDest = !destStat;
  await fs.promises.mkdir(dest, { recursive: true });
  const work = path.join(dest, `.fonds-bagging-${randomUUID()}`);
  const workData = path.join(work, 'data');
  const written: string[] = [];
  try {
    await fs.promises.mkdir(workData, { recursive: true });
    for (const rel of dirs) await fs.promises.mkdir(path.join(workData, ...rel.split('/')), { recursive: true });
    const rows: Array<{ rel: string; hashes: Partial<Record<BagAlgorithm, string>>; size: number }> = new Array(files.length);
    let doneFiles = 0;
    let doneBytes = 0;
    await inFlight(
      files,
      IN_FLIGHT,
      async (f, i) => {
        const target = path.join(workData, ...f.rel.split('/'));
        let hashes: Partial<Record<BagAlgorithm, string>>;
        if (opts.copyFile) hashes = await opts.copyFile(f.abs, target, CREATE_ALGORITHMS, signal);
        else if (opts.hashFile) {
          await copyFileInProcess(f.abs, target, [], signal);
          hashes = await opts.hashFile(target, CREATE_ALGORITHMS, signal);
        } else hashes = await copyFileInProcess(f.abs, target, CREATE_ALGORITHMS, signal);
        for (const a of CREATE_ALGORITHMS) {
          if (!HEX[a].test(hashes[a] ?? '')) throw new Error(`bagging ${f.rel}: no ${a} checksum came back for the copy`);
        }
        const size = (await fs.promises.lstat(target)).size;
        rows[i] = { rel: f.rel, hashes, size };
        doneFiles++;
        doneBytes += size;
        opts.onProgress?.({ files: doneFiles, bytes: doneBytes });
      },
      signal,
    );
    const bytes = rows.reduce((s, r) => s + r.size, 0);

    // 3. tag files, computed before anything is moved into place
    const tags: Array<[string, string]> = [];
    for (const a of CREATE_ALGORITHMS) tags.push([`manifest-${a}.txt`, rows.map((r) => `${r.hashes[a]}  ${encodePath(`data/${r.rel}`)}\n`).join('')]);
    const now = new Date();
    const date = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;
    const info: Array<[string, string]> = [
      ...(given('Bag-Software-Agent') ? [] : [['Bag-Software-Agent', 'Fonds'] as [string, string]]),
      ...(given('Bagging-Date') ? [] : [['Bagging-Date', date] as [string, string]]),
      ['Payload-Oxum', `${bytes}.${rows.length}`],
      ...extra,
    ];
    tags.push(['bag-info.txt', info.map(([k, v]) => infoLine(k, v) + '\n').join('')]);
    const listed = [...tags, ['bagit.txt', BAGIT_TXT] as [string, string]].sort(([a], [b]) => (a < b ? -1 : 1));
    for (const a of CREATE_ALGORITHMS) tags.push([`tagmanifest-${a}.txt`, listed.map(([name, content]) => `${createHash(a).update(content, 'utf8').digest('hex')}  ${name}\n`).join('')]);

    // 4. into place: payload, tag files, bagit.txt last
    signal?.throwIfAborted();
    await fs.promises.rename(workData, path.join(dest, 'data'));
    written.push(path.join(dest, 'data'));
    await fs.promises.rmdir(work);
    for (const [name, content] of tags) {
      await writeAtomic(path.join(dest, name), content);
      written.push(path.join(dest, name));
    }
    await writeAtomic(path.join(dest, 'bagit.txt'), BAGIT_TXT);
    return { files: rows.length, bytes };
  } catch (err) {
    // leave the destination as it was found
    await fs.promises.rm(work, { recursive: true, force: true }).catch(() => undefined);
    for (const w of written.reverse()) await fs.promises.rm(w, { recursive: true, force: true }).catch(() => undefined);
    if (createdDest) await fs.promises.rmdir(dest).catch(() => undefined);
    throw err;
  }
}
