/**
 * Portability of file names across Windows, macOS and Linux, and the keys that reveal naming
 * conflicts: two paths that differ only by letter case or Unicode normalization land on the same
 * file on case-insensitive or normalizing file systems (NTFS, APFS, HFS+).
 */

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[1-9¹²³]|lpt[1-9¹²³])(\..*)?$/i;
const FORBIDDEN_CHARS = /[<>:"\\|?*\u0000-\u001f]/;
/** Windows' classic MAX_PATH, a conservative portable limit for a whole relative path. */
export const PORTABLE_PATH_CHARS = 260;

export interface NameProblem {
  rule: string;
  severity: 'error' | 'warning';
  message: string;
}

/** Problems of one name component (not a whole path). */
export function nameProblems(name: string): NameProblem[] {
  const out: NameProblem[] = [];
  if (WINDOWS_RESERVED.test(name)) {
    out.push({ rule: 'reserved-name', severity: 'error', message: `'${name}' is a reserved device name on Windows` });
  }
  const bad = FORBIDDEN_CHARS.exec(name);
  if (bad) {
    const c = bad[0];
    const shown = c.charCodeAt(0) < 32 ? `control character 0x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `'${c}'`;
    out.push({ rule: 'forbidden-character', severity: 'error', message: `'${visible(name)}' contains ${shown}, not allowed on Windows` });
  }
  if (/[. ]$/.test(name) && name !== '.' && name !== '..') {
    out.push({ rule: 'trailing-dot-or-space', severity: 'error', message: `'${name}' ends with a dot or a space, which Windows strips` });
  }
  if (/^\s|\s$/.test(name) && !/ $/.test(name)) {
    out.push({ rule: 'surrounding-whitespace', severity: 'warning', message: `'${visible(name)}' starts or ends with white space` });
  }
  if (Buffer.byteLength(name) > 255) {
    out.push({ rule: 'name-too-long', severity: 'error', message: `'${name.slice(0, 40)}…' is longer than 255 bytes` });
  }
  if (name.normalize('NFC') !== name) {
    out.push({ rule: 'not-nfc', severity: 'warning', message: `'${name}' is not in Unicode NFC form; macOS and Windows may show it differently` });
  }
  return out;
}

/** Problems of a whole relative path: each component, plus overall length. */
export function pathProblems(rel: string): NameProblem[] {
  const out: NameProblem[] = [];
  for (const part of rel.split('/')) out.push(...nameProblems(part));
  if ([...rel].length > PORTABLE_PATH_CHARS) {
    out.push({ rule: 'path-too-long', severity: 'warning', message: `the path has ${[...rel].length} characters; Windows tools often stop at ${PORTABLE_PATH_CHARS}` });
  }
  return out;
}

/**
 * The key under which case- and normalization-insensitive file systems store a path: NFC, then a
 * simple (one-to-one) case folding, code point by code point, as NTFS's upcase table and APFS do.
 * Lower-casing the whole string is not that: it keeps 'ς' (final sigma) apart from 'σ' and 'ſ'
 * (long s) apart from 's', which those file systems fold together. Each code point becomes its
 * upper case when that is one code point, else stays itself: 'ß' is not 'SS' there, so
 * 'straße' and 'strasse' are two names.
 */
export function conflictKey(rel: string): string {
  let key = '';
  for (const c of rel.normalize('NFC')) {
    let folded = FOLDED.get(c);
    if (folded === undefined) {
      const upper = c.toUpperCase();
      folded = [...upper].length === 1 ? upper : c;
      FOLDED.set(c, folded);
    }
    key += folded;
  }
  return key;
}
const FOLDED = new Map<string, string>();

function visible(s: string): string {
  return s.replace(/[\u0000-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
