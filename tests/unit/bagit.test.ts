/**
 * BagIt (RFC 8493): the Library of Congress conformance cases (walked, so new cases are picked up),
 * hostile bags (nothing outside the bag is ever read), encodings, fetch.txt, abort, and bag
 * creation round trips.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  bagPathProblem,
  createBag,
  decodePath,
  encodePath,
  hashFileInProcess,
  isBag,
  readBagDeclaration,
  validateBag,
  type BagAlgorithm,
  type BagProblem,
  type CopyFile,
  type HashFile,
} from '../../src-main/service/intake/bagit';
import { tempDirs, writeTree } from '../helpers/util';

const FIXTURES = path.resolve(__dirname, '../../../shared/fixtures/bagit-conformance');
const dir = tempDirs(afterEach);
const hex = (a: string, data: string | Buffer) => crypto.createHash(a).update(data).digest('hex');
const tags = (ps: BagProblem[]) => ps.map((x) => `${x.rule} ${x.file}`);
const rules = (ps: BagProblem[]) => ps.map((x) => x.rule);

/** A hashFile that records every path it is asked to read (and can act on each call). */
function spyHasher(onCall?: (abs: string, n: number) => void) {
  const read: Array<{ abs: string; algorithms: BagAlgorithm[] }> = [];
  const hashFile: HashFile = (abs, algorithms, signal) => {
    read.push({ abs, algorithms: [...algorithms] });
    onCall?.(abs, read.length);
    return hashFileInProcess(abs, algorithms, signal);
  };
  return { read, hashFile };
}

/** Every path read lies strictly inside `root` (compared on real paths). */
function expectAllInside(read: Array<{ abs: string }>, root: string) {
  const realRoot = fs.realpathSync(root);
  for (const r of read) {
    const real = fs.realpathSync(r.abs);
    expect(real.startsWith(realRoot + path.sep), `${r.abs} read, outside ${root}`).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------
// The conformance suite

/** The specific problems each known invalid case must be reported with (rule and file). */
const EXPECTED_ERRORS: Record<string, Array<{ rule: string; file: string }>> = {
  'bom-in-bagit.txt': [{ rule: 'bom-in-bagit-txt', file: 'bagit.txt' }],
  'corrupt-data-file': [{ rule: 'checksum-mismatch', file: 'data/bare-filename' }],
  'extra-file-in-bag': [{ rule: 'payload-file-not-in-manifest', file: 'data/bar' }],
  'missing-bagit.txt': [{ rule: 'bagit-txt-missing', file: 'bagit.txt' }],
  'out-of-scope-file-paths-using-dot-notation': [
    { rule: 'manifest-path-outside-bag', file: 'manifest-md5.txt' }, // ../../../README.md
    { rule: 'manifest-path-invalid', file: 'manifest-md5.txt' }, // \.\./\.\./\.\./README.md
  ],
  'same-filename-listed-twice-with-different-hashes': [{ rule: 'duplicate-manifest-entry', file: 'manifest-sha256.txt' }],
};
const EXPECTED_WARNINGS: Record<string, Array<{ rule: string; file: string }>> = {
  'made-with-md5sum-tools': [
    { rule: 'md5sum-binary-marker', file: 'manifest-md5.txt' },
    { rule: 'md5sum-binary-marker', file: 'tagmanifest-md5.txt' },
  ],
};

interface Case {
  version: string;
  expectation: string;
  name: string;
  dir: string;
}

function conformanceCases(): Case[] {
  const out: Case[] = [];
  const isDir = (p: string) => fs.statSync(p).isDirectory();
  for (const version of fs.readdirSync(FIXTURES).sort()) {
    const vdir = path.join(FIXTURES, version);
    if (!isDir(vdir)) continue;
    for (const expectation of fs.readdirSync(vdir).sort()) {
      const edir = path.join(vdir, expectation);
      if (!isDir(edir)) continue;
      for (const name of fs.readdirSync(edir).sort()) {
        const d = path.join(edir, name);
        if (isDir(d)) out.push({ version, expectation, name, dir: d }); // not the Makefile
      }
    }
  }
  return out;
}
const cases = conformanceCases();
const fixture = (rel: string) => path.join(FIXTURES, rel);

describe('BagIt conformance suite', () => {
  it('finds the cases, in all three expectations, and a rule for every known invalid case', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.expectation))).toEqual(new Set(['valid', 'invalid', 'warning']));
    for (const name of Object.keys(EXPECTED_ERRORS)) expect(cases.some((c) => c.expectation === 'invalid' && c.name === name), name).toBe(true);
  });

  for (const c of cases) {
    it(`${c.version}/${c.expectation}/${c.name}`, async () => {
      const spy = spyHasher();
      const report = await validateBag(c.dir, { hashFile: spy.hashFile });
      expectAllInside(spy.read, c.dir);
      for (const problem of [...report.errors, ...report.warnings]) {
        expect(problem.rule).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
        expect(problem.message.length).toBeGreaterThan(15);
      }
      if (c.expectation === 'valid') {
        expect(report.errors, JSON.stringify(report.errors, null, 1)).toEqual([]);
        expect(report.valid).toBe(true);
        expect(report.payloadFiles).toBeGreaterThan(0);
        // every payload file was read once, with every manifest algorithm at once
        expect(spy.read.filter((r) => r.abs.includes(`${path.sep}data${path.sep}`)).length).toBe(report.payloadFiles);
        expect(new Set(spy.read.map((r) => r.abs)).size).toBe(spy.read.length);
      } else if (c.expectation === 'invalid') {
        expect(report.valid).toBe(false);
        expect(report.errors.length).toBeGreaterThanOrEqual(1);
        for (const e of EXPECTED_ERRORS[c.name] ?? []) expect(report.errors).toContainEqual(expect.objectContaining(e));
      } else {
        expect(report.errors, JSON.stringify(report.errors, null, 1)).toEqual([]);
        expect(report.valid).toBe(true);
        expect(report.warnings.length).toBeGreaterThanOrEqual(1);
        for (const w of EXPECTED_WARNINGS[c.name] ?? []) expect(report.warnings).toContainEqual(expect.objectContaining(w));
      }
    });
  }
});

describe('what the conformance cases exercise', () => {
  it('reports exactly the specific errors of the known invalid cases, with messages naming the file', async () => {
    const v = async (name: string) => (await validateBag(fixture(`v0.97/invalid/${name}`), { hashFile: hashFileInProcess })).errors;
    expect(tags(await v('bom-in-bagit.txt'))).toEqual(['bom-in-bagit-txt bagit.txt']);
    expect(tags(await v('same-filename-listed-twice-with-different-hashes'))).toEqual(['duplicate-manifest-entry manifest-sha256.txt']);
    const corrupt = await v('corrupt-data-file');
    expect(tags(corrupt)).toEqual(['payload-oxum-mismatch bag-info.txt', 'checksum-mismatch data/bare-filename']); // Oxum first
    expect(corrupt[1].message).toMatch(/^data\/bare-filename: md5 is [0-9a-f]{32}, but manifest-md5\.txt says 751e32179ec8acd71081654527f2e771$/);
    const dots = await v('out-of-scope-file-paths-using-dot-notation');
    expect(dots.map((e) => e.message)).toEqual([
      expect.stringMatching(/^manifest-md5\.txt line 3: '\.\.\/\.\.\/\.\.\/README\.md' refused: .*leave the bag/),
      expect.stringMatching(/^manifest-md5\.txt line 4: '\\\.\\\.\/.*' refused: .*'\.\.\/\.\.\/\.\.\/README\.md', which would leave the bag/),
    ]);
  });

  it('keeps md5-only bags valid but warns about the weak algorithm', async () => {
    const r = await validateBag(fixture('v0.97/valid/basic-bag'), { hashFile: hashFileInProcess });
    expect(r.valid).toBe(true);
    expect(tags(r.warnings)).toEqual(['weak-algorithm manifest-md5.txt']);
  });

  it('decodes UTF-16 (with BOM) and ISO-8859-1 tag files as declared', async () => {
    for (const name of ['UTF-16-encoded-tag-files', 'ISO-8859-1-encoded-tag-files']) {
      const { declaration, errors } = await readBagDeclaration(fixture(`v0.97/valid/${name}`));
      expect(errors).toEqual([]);
      expect(declaration!.info).toContainEqual(['Contact-Name', 'Chris Adams']);
      expect(declaration!.payloadOxum).toEqual({ bytes: 58, files: 2 });
    }
    expect((await readBagDeclaration(fixture('v0.97/valid/UTF-16-encoded-tag-files'))).declaration!.encoding).toBe('UTF-16');
  });

  it('trims labels, keeps repeated labels, joins continuation lines', async () => {
    const seps = (await readBagDeclaration(fixture('v0.97/valid/uncommon-metadata-separators'))).declaration!;
    expect(seps.info.filter(([k]) => k === 'Test-Tag').map(([, v]) => v)).toEqual(['1', '2', '3', '4', '5']);
    expect(seps.manifestAlgorithms).toEqual(['sha224']);
    const dup = (await readBagDeclaration(fixture('v0.97/valid/duplicate-metadata-entries'))).declaration!;
    expect(dup.info.filter(([k]) => k === 'Bagging-Date')).toEqual([
      ['Bagging-Date', '2016-02-26'],
      ['Bagging-Date', '2016-03-10'],
    ]);
    expect(dup.info.filter(([k]) => k.toLowerCase() === 'case-insensitivity-test').map(([, v]) => v)).toEqual(['1', '2', '3']);
    const crlf = (await readBagDeclaration(fixture('v0.97/valid/bag-in-a-bag'))).declaration!;
    expect(crlf.info).toContainEqual(['External-Description', 'Uncompressed greyscale TIFF images from the Yoshimuri papers collection.']);
    expect(crlf.version).toBe('0.97');
  });

  it('reads package-info.txt for bags older than 0.96', async () => {
    const { declaration, warnings } = await readBagDeclaration(fixture('v0.93/valid/basic-bag'));
    expect(declaration!.version).toBe('0.93');
    expect(declaration!.info).toContainEqual(['Contact-Name', 'Edna Janssen']);
    expect(rules(warnings)).not.toContain('bag-info-missing');
  });

  it('reports fetch.txt with its URLs; a bag whose fetched files are all there is valid', async () => {
    const r = await validateBag(fixture('v0.97/valid/holey-bag'), { hashFile: hashFileInProcess });
    expect(r.declaration!.fetch).toHaveLength(5);
    expect(r.declaration!.fetch).toContainEqual({ url: 'http://localhost:8989/bags/v0_96/holey-bag/data/test%201.txt', length: '-', path: 'data/test 1.txt' });
    const w = r.warnings.find((x) => x.rule === 'fetch-txt-present')!;
    expect(w.file).toBe('fetch.txt');
    expect(w.message).toContain('http://localhost:8989/bags/v0_96/holey-bag/data/dir1/test3.txt');

    expect(r.valid).toBe(true);
  });

  it('errs on each file fetch.txt lists that is not in the bag (a bag with holes is not complete, RFC 8493 §3), never fetching it', async () => {
    const copy = path.join(dir(), 'holey');
    fs.cpSync(fixture('v0.97/valid/holey-bag'), copy, { recursive: true });
    fs.rmSync(path.join(copy, 'data/test 1.txt'));
    fs.rmSync(path.join(copy, 'data/dir1/test3.txt'));
    fs.writeFileSync(path.join(copy, 'data/test2.txt'), 'tampered');
    const spy = spyHasher();
    const holey = await validateBag(copy, { hashFile: spy.hashFile });
    expect(holey.valid).toBe(false);
    // each hole once (not also as missing from the manifest); present files are still verified
    expect(tags(holey.errors)).toEqual(['fetch-file-missing data/dir1/test3.txt', 'fetch-file-missing data/test 1.txt', 'checksum-mismatch data/test2.txt']);
    expect(holey.errors[1].message).toBe(
      "data/test 1.txt: is listed in fetch.txt (to be fetched from http://localhost:8989/bags/v0_96/holey-bag/data/test%201.txt) but is not in the bag, so the bag is not complete; Fonds never downloads it — fetch it yourself and check the bag again",
    );
    expect(holey.payloadFiles).toBe(3);
    expectAllInside(spy.read, copy);
  });

  it('keeps %xx other than %0A, %0D and %25 literal (bag-with-encoded-names)', async () => {
    const r = await validateBag(fixture('v0.97/valid/bag-with-encoded-names'), { hashFile: hashFileInProcess });
    expect(r.errors).toEqual([]);
    expect(decodePath('data/%7Etest1.txt')).toBe('data/%7Etest1.txt');
    expect(decodePath('data/a%0Ab%0dc%25d%2541')).toBe('data/a\nb\rc%d%41');
    expect(encodePath('data/a\nb\rc%d')).toBe('data/a%0Ab%0Dc%25d');
  });

  it('isBag looks for bagit.txt', async () => {
    expect(await isBag(fixture('v0.97/valid/basic-bag'))).toBe(true);
    expect(await isBag(fixture('v0.97/invalid/missing-bagit.txt'))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Bags made in a temp dir

/** A correct BagIt 1.0 bag (sha256 manifest, bag-info with Oxum and date): zero errors, zero warnings. */
function goodBag(payload: Record<string, string | Buffer> = { 'a.txt': 'a', 'sub/b.txt': 'bb' }): string {
  const root = dir();
  const files = Object.entries(payload);
  writeTree(root, Object.fromEntries(files.map(([rel, c]) => [`data/${rel}`, c])));
  const bytes = files.reduce((s, [, c]) => s + Buffer.byteLength(c), 0);
  writeTree(root, {
    'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n',
    'manifest-sha256.txt': files.map(([rel, c]) => `${hex('sha256', c)}  ${encodePath(`data/${rel}`)}\n`).join(''),
    'bag-info.txt': `Bagging-Date: 2024-05-01\nPayload-Oxum: ${bytes}.${files.length}\n`,
  });
  return root;
}
const appendManifest = (root: string, line: string, file = 'manifest-sha256.txt') => fs.appendFileSync(path.join(root, file), line + '\n');

describe('a well-formed bag made here', () => {
  it('validates with no error and no warning (the baseline the other tests break)', async () => {
    const root = goodBag();
    const progress: Array<{ files: number; bytes: number }> = [];
    const r = await validateBag(root, { hashFile: hashFileInProcess, onProgress: (p) => progress.push(p) });
    expect(r).toMatchObject({ valid: true, errors: [], warnings: [], payloadFiles: 2, payloadBytes: 3 });
    expect(progress.at(-1)).toEqual({ files: 2, bytes: 3 });
  });

  it('accepts names that need percent-encoding, and literal %xx', async () => {
    const root = goodBag({ 'line\nbreak.txt': 'n', '100%.txt': 'p', '%41.txt': 'literal', 'Ærø é.txt': 'æ' });
    expect(fs.readFileSync(path.join(root, 'manifest-sha256.txt'), 'utf8')).toContain('data/line%0Abreak.txt');
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(r.errors).toEqual([]);
  });

  it('hashes each payload file once with every manifest algorithm', async () => {
    const root = goodBag({ 'x.txt': 'x' });
    writeTree(root, { 'manifest-md5.txt': `${hex('md5', 'x')} data/x.txt\r\n`, 'manifest-sha1.txt': `${hex('sha1', 'x')} *data/x.txt\n` });
    const spy = spyHasher();
    const r = await validateBag(root, { hashFile: spy.hashFile });
    expect(r.errors).toEqual([]);
    expect(spy.read).toHaveLength(1);
    expect(spy.read[0].algorithms.sort()).toEqual(['md5', 'sha1', 'sha256']);
    expect(r.declaration!.manifestAlgorithms).toEqual(['md5', 'sha1', 'sha256']);
    expect(tags(r.warnings)).toEqual(['md5sum-binary-marker manifest-sha1.txt']);
  });
});

describe('hostile manifests: refused, never read', () => {
  const secret = 'top secret';
  const hostile: Array<[string, string, string]> = [
    ['an absolute path', '/etc/passwd', 'manifest-path-outside-bag'],
    ['a parent-folder path', 'data/../../secret.txt', 'manifest-path-outside-bag'],
    ['a home-folder path', '~/x', 'manifest-path-outside-bag'],
    ['a Windows drive path', 'C:/Windows/win.ini', 'manifest-path-outside-bag'],
    ['a NUL byte', 'data/a\0.txt', 'manifest-path-invalid'],
    ['a backslash-escaped parent path', '\\.\\./\\.\\./secret.txt', 'manifest-path-invalid'],
    ['a Windows-separated parent path', 'data\\..\\..\\secret.txt', 'manifest-path-invalid'],
    ['an over-long name', `data/${'x'.repeat(256)}`, 'manifest-path-invalid'],
    ['an empty segment', 'data//a.txt', 'manifest-path-invalid'],
  ];
  for (const [what, p, rule] of hostile) {
    it(`refuses ${what}`, async () => {
      const outside = dir();
      writeTree(outside, { 'secret.txt': secret });
      const root = goodBag();
      appendManifest(root, `${hex('sha256', secret)}  ${p}`);
      const spy = spyHasher();
      const r = await validateBag(root, { hashFile: spy.hashFile });
      expect(r.valid).toBe(false);
      expect(tags(r.errors)).toEqual([`${rule} manifest-sha256.txt`]);
      expect(r.errors[0].message).toMatch(/^manifest-sha256\.txt line 3: '.*' refused: .+; it is not read$/);
      expectAllInside(spy.read, root);
      expect(spy.read).toHaveLength(2); // the two real payload files only
    });
  }

  it('classifies paths before anything is resolved', () => {
    expect(bagPathProblem('data/ok.txt')).toBeUndefined();
    expect(bagPathProblem('data/dir1/~test3.txt')).toBeUndefined(); // '~' only matters at the start
    expect(bagPathProblem('data/%7Etest1.txt')).toBeUndefined();
    expect(bagPathProblem(`data/${'é'.repeat(128)}`)?.rule).toBe('manifest-path-invalid'); // 256 bytes, 128 characters
    expect(bagPathProblem('.')?.rule).toBe('manifest-path-invalid');
    expect(bagPathProblem('..')?.rule).toBe('manifest-path-outside-bag');
  });

  it('reports a symbolic link in the payload and does not follow it', async () => {
    const outside = dir();
    writeTree(outside, { 'secret.txt': secret, 'folder/inner.txt': secret });
    const root = goodBag();
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'data/link.txt'));
    fs.symlinkSync(path.join(outside, 'folder'), path.join(root, 'data/linked-folder'));
    appendManifest(root, `${hex('sha256', secret)}  data/link.txt`);
    appendManifest(root, `${hex('sha256', secret)}  data/linked-folder/inner.txt`);
    const spy = spyHasher();
    const r = await validateBag(root, { hashFile: spy.hashFile });
    expect(tags(r.errors)).toEqual(
      expect.arrayContaining(['symlink-in-payload data/link.txt', 'symlink-in-payload data/linked-folder', 'payload-file-missing data/link.txt', 'payload-file-missing data/linked-folder/inner.txt']),
    );
    expect(r.errors.find((e) => e.file === 'data/link.txt')!.message).toMatch(/symbolic link/);
    expectAllInside(spy.read, root);
  });

  it('refuses data/ itself being a link out of the bag', async () => {
    const outside = dir();
    writeTree(outside, { 'a.txt': 'a' });
    const root = dir();
    writeTree(root, { 'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n', 'manifest-sha256.txt': `${hex('sha256', 'a')}  data/a.txt\n` });
    fs.symlinkSync(outside, path.join(root, 'data'));
    const spy = spyHasher();
    const r = await validateBag(root, { hashFile: spy.hashFile });
    expect(tags(r.errors)).toEqual(['symlink-in-payload data', 'payload-file-missing data/a.txt']);
    expect(spy.read).toEqual([]);
  });

  it('refuses tag files reached through links that leave the bag', async () => {
    const outside = dir();
    writeTree(outside, { 'secret.txt': secret, 'meta/notes.txt': secret });
    const root = goodBag();
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'extra-tag.txt'));
    fs.symlinkSync(path.join(outside, 'meta'), path.join(root, 'meta'));
    writeTree(root, { 'tagmanifest-sha256.txt': [`${hex('sha256', secret)}  extra-tag.txt`, `${hex('sha256', secret)}  meta/notes.txt`].join('\n') + '\n' });
    const spy = spyHasher();
    const r = await validateBag(root, { hashFile: spy.hashFile });
    expect(tags(r.errors).sort()).toEqual(['manifest-path-outside-bag extra-tag.txt', 'manifest-path-outside-bag meta/notes.txt']);
    expect(r.errors[0].message).toMatch(/tagmanifest-sha256\.txt line \d.*it is not read/);
    expectAllInside(spy.read, root);
  });

  it('refuses hostile fetch.txt paths and never downloads', async () => {
    const root = goodBag();
    writeTree(root, { 'fetch.txt': 'https://example.org/x 12 ../../etc/passwd\nhttps://example.org/y - data/a.txt\n' });
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['manifest-path-outside-bag fetch.txt']);
    expect(r.errors[0].message).toMatch(/^fetch\.txt line 1: '\.\.\/\.\.\/etc\/passwd' refused/);
    expect(r.declaration!.fetch).toEqual([{ url: 'https://example.org/y', length: '-', path: 'data/a.txt' }]);
    expect(r.warnings.find((w) => w.rule === 'fetch-txt-present')!.message).toContain('https://example.org/y');
  });
});

describe('broken bags: every problem, each with its rule and file', () => {
  it('lists Payload-Oxum first, then missing, unlisted, then checksum problems', async () => {
    const root = goodBag({ 'a.txt': 'a', 'b.txt': 'b' });
    appendManifest(root, `${hex('sha256', 'gone')}  data/gone.txt`);
    writeTree(root, { 'data/b.txt': 'B!', 'data/extra.txt': 'x' });
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual([
      'payload-oxum-mismatch bag-info.txt',
      'payload-file-missing data/gone.txt',
      'payload-file-not-in-manifest data/extra.txt',
      'checksum-mismatch data/b.txt',
    ]);
    expect(r.errors[0].message).toBe('bag-info.txt: Payload-Oxum says 2 bytes in 2 files, but data/ holds 4 bytes in 3 files: files are missing, extra or truncated');
    expect(r.errors[1].message).toContain('manifest-sha256.txt');
  });

  it('requires every payload file in every payload manifest', async () => {
    const root = goodBag({ 'a.txt': 'a', 'b.txt': 'b' });
    writeTree(root, { 'manifest-sha512.txt': `${hex('sha512', 'a')}  data/a.txt\n` });
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['payload-file-not-in-manifest data/b.txt']);
    expect(r.errors[0].message).toContain('manifest-sha512.txt');
  });

  it('errs on a path listed twice with different checksums, warns when they agree', async () => {
    const root = goodBag({ 'a.txt': 'a', 'b.txt': 'b' });
    appendManifest(root, `${hex('sha256', 'a')}  ./data/a.txt`);
    let r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(r.errors).toEqual([]);
    expect(tags(r.warnings)).toEqual(['duplicate-manifest-entry manifest-sha256.txt']);
    appendManifest(root, `${hex('sha256', 'not b')}  data/b.txt`);
    r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['duplicate-manifest-entry manifest-sha256.txt']);
    expect(r.errors[0].message).toMatch(/'data\/b\.txt' is listed twice with different checksums \(lines 2 and 4\)/);
  });

  it('reports malformed lines and checksums, and manifest paths outside data/', async () => {
    const root = goodBag();
    appendManifest(root, 'no-separator-here');
    appendManifest(root, 'abc123  data/a.txt');
    appendManifest(root, `${hex('sha256', 'x')}  bagit.txt`);
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['manifest-line-malformed manifest-sha256.txt', 'checksum-malformed manifest-sha256.txt', 'manifest-path-outside-payload manifest-sha256.txt']);
  });

  it('checks tag manifests: a changed or missing tag file is an error', async () => {
    const root = goodBag();
    const info = fs.readFileSync(path.join(root, 'bag-info.txt'));
    writeTree(root, { 'tagmanifest-sha256.txt': `${hex('sha256', info)}  bag-info.txt\n${hex('sha256', 'x')}  gone.txt\n` });
    expect(tags((await validateBag(root, { hashFile: hashFileInProcess })).errors)).toEqual(['tag-file-missing gone.txt']);
    fs.appendFileSync(path.join(root, 'bag-info.txt'), 'Contact-Name: Someone\n');
    expect(tags((await validateBag(root, { hashFile: hashFileInProcess })).errors)).toEqual(['tag-checksum-mismatch bag-info.txt', 'tag-file-missing gone.txt']);
  });

  it('reports a broken bagit.txt without throwing', async () => {
    const root = goodBag();
    writeTree(root, { 'bagit.txt': 'Version 1.0\n' });
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['bagit-txt-malformed bagit.txt', 'bagit-version-missing bagit.txt', 'encoding-missing bagit.txt']);
    writeTree(root, { 'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: KLINGON-8\n' });
    expect(tags((await validateBag(root, { hashFile: hashFileInProcess })).errors)).toEqual(['encoding-unknown bagit.txt']);
  });

  it('reports a folder that is not a bag at all', async () => {
    const r = await validateBag(path.join(dir(), 'nothing-here'), { hashFile: hashFileInProcess });
    expect(r.valid).toBe(false);
    expect(rules(r.errors)).toEqual(expect.arrayContaining(['bagit-txt-missing', 'manifest-missing', 'payload-directory-missing']));
    expect(r.declaration).toBeUndefined();
  });
});

describe('huge tag files: reported, never read whole', () => {
  /** A sparse file: its size on record, no bytes on disk. */
  const sparse = (file: string, size: number) => {
    fs.writeFileSync(file, '');
    fs.truncateSync(file, size);
  };

  it('reports a tag file over its limit with its size, without reading it (a 600 MB bag-info.txt crashed the check)', async () => {
    for (const [name, size, limit] of [
      ['bag-info.txt', 600 * 1024 * 1024, '16 MiB'],
      ['fetch.txt', 65 * 1024 * 1024, '64 MiB'],
      ['manifest-sha512.txt', 1025 * 1024 * 1024, '1024 MiB'],
      ['bagit.txt', 65 * 1024, '64 KiB'],
    ] as const) {
      const root = goodBag();
      sparse(path.join(root, name), size);
      const spy = spyHasher();
      const r = await validateBag(root, { hashFile: spy.hashFile });
      expect(r.valid).toBe(false);
      const e = r.errors.find((x) => x.rule === 'tag-file-too-large');
      expect(e, `${name}: ${JSON.stringify(r.errors)}`).toMatchObject({ file: name });
      expect(e!.message).toMatch(new RegExp(`^${name.replace('.', '\\.')}: ${size} bytes, more than the ${limit} Fonds reads of this tag file; it is not read`));
    }
  });

  it('reads a manifest line by line: CR LF and a multi-byte character across read chunks, line numbers kept, an over-long line skipped', async () => {
    const root = goodBag({ 'café.txt': 'c', 'b.txt': 'b' });
    const cafe = `${hex('sha256', 'c')}  data/café.txt\n`;
    const MiB = 1024 * 1024;
    // a CR LF whose CR ends the first 1 MiB read and whose LF begins the second
    let text = '\n'.repeat(MiB - 1) + '\r\n';
    // the two bytes of 'é' on either side of the 2 MiB boundary
    const at = Buffer.byteLength(`${hex('sha256', 'c')}  data/caf`);
    text += '\n'.repeat(2 * MiB - 1 - at - Buffer.byteLength(text)) + cafe;
    text += 'z'.repeat(100_000) + '\n';
    text += `${hex('sha256', 'b')}  data/b.txt\nnot-a-manifest-line\n`;
    const bytes = Buffer.from(text);
    expect(bytes.subarray(2 * MiB - 1, 2 * MiB + 1).toString()).toBe('é');
    writeTree(root, { 'manifest-sha256.txt': bytes });
    const lines = MiB + (2 * MiB - 1 - at - (MiB + 1)) + 1;
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['tag-line-too-long manifest-sha256.txt', 'manifest-line-malformed manifest-sha256.txt']);
    expect(r.errors[0].message).toMatch(new RegExp(`^manifest-sha256\\.txt line ${lines + 1}: is longer than 65536 characters`));
    expect(r.errors[1].message).toMatch(new RegExp(`^manifest-sha256\\.txt line ${lines + 3}: expected`));
    expect(r.listed.sort()).toEqual(['data/b.txt', 'data/café.txt']);
  });
});

describe('linter warnings (never make a bag invalid)', () => {
  it('warns about a missing bag-info.txt', async () => {
    const root = goodBag();
    fs.rmSync(path.join(root, 'bag-info.txt'));
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(r.valid).toBe(true);
    expect(tags(r.warnings)).toEqual(['bag-info-missing bag-info.txt']);
  });

  it('warns about a missing Payload-Oxum and Bagging-Date', async () => {
    const root = goodBag();
    writeTree(root, { 'bag-info.txt': 'Contact-Name: A. Archivist\n' });
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(r.valid).toBe(true);
    expect(tags(r.warnings)).toEqual(['payload-oxum-missing bag-info.txt', 'bagging-date-missing bag-info.txt']);
  });

  it('warns about a manifest with an unknown algorithm and ignores it', async () => {
    const root = goodBag();
    writeTree(root, { 'manifest-foo.txt': 'zzz  data/a.txt\n' });
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(r.valid).toBe(true);
    expect(tags(r.warnings)).toEqual(['unknown-algorithm manifest-foo.txt']);
  });
});

describe('tag-file encodings and byte-order marks', () => {
  const utf16le = (s: string) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(s, 'utf16le')]);
  const utf16be = (s: string) => Buffer.from(s, 'utf16le').swap16();

  it('reads a UTF-16 manifest with or without a byte-order mark', async () => {
    for (const encode of [utf16le, utf16be]) {
      const root = goodBag();
      const manifest = fs.readFileSync(path.join(root, 'manifest-sha256.txt'), 'utf8');
      writeTree(root, { 'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-16\n', 'manifest-sha256.txt': encode(manifest), 'bag-info.txt': encode('Bagging-Date: 2024-05-01\nPayload-Oxum: 3.2\n') });
      const r = await validateBag(root, { hashFile: hashFileInProcess });
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
    }
  });

  it('reads ISO-8859-1 names', async () => {
    const root = goodBag({ 'café.txt': 'c' });
    const manifest = fs.readFileSync(path.join(root, 'manifest-sha256.txt'), 'utf8');
    writeTree(root, { 'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: ISO-8859-1\n', 'manifest-sha256.txt': Buffer.from(manifest, 'latin1') });
    expect(fs.readFileSync(path.join(root, 'manifest-sha256.txt')).includes(Buffer.from([0xe9]))).toBe(true);
    expect((await validateBag(root, { hashFile: hashFileInProcess })).errors).toEqual([]);
  });

  it('warns about a UTF-8 byte-order mark in a UTF-8 manifest; errs when the bag declares another encoding', async () => {
    const root = goodBag();
    const manifest = fs.readFileSync(path.join(root, 'manifest-sha256.txt'));
    writeTree(root, { 'manifest-sha256.txt': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), manifest]) });
    let r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(r.errors).toEqual([]);
    expect(tags(r.warnings)).toEqual(['bom-in-tag-file manifest-sha256.txt']);
    writeTree(root, { 'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: ISO-8859-1\n' });
    r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['bom-in-tag-file manifest-sha256.txt']);
    expect(r.errors[0].message).toContain('ISO-8859-1');
  });

  it('errs on bytes that are not valid in the declared encoding', async () => {
    const root = goodBag();
    writeTree(root, { 'bag-info.txt': Buffer.concat([Buffer.from('Bagging-Date: 2024-05-01\nPayload-Oxum: 3.2\nContact-Name: '), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]) });
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['tag-file-encoding-invalid bag-info.txt']);
  });

  it('errs on a byte-order mark in bagit.txt', async () => {
    const root = goodBag();
    writeTree(root, { 'bagit.txt': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n')]) });
    const r = await validateBag(root, { hashFile: hashFileInProcess });
    expect(tags(r.errors)).toEqual(['bom-in-bagit-txt bagit.txt']);
    expect(r.declaration!.version).toBe('1.0'); // still parsed, so the rest is checked too
  });
});

describe('aborting', () => {
  it('refuses to start when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled by test'));
    await expect(validateBag(goodBag(), { hashFile: hashFileInProcess, signal: controller.signal })).rejects.toThrow('cancelled by test');
  });

  it('stops hashing when aborted part way', async () => {
    const payload = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${String(i).padStart(2, '0')}.txt`, `file ${i}`]));
    const root = goodBag(payload);
    const controller = new AbortController();
    const spy = spyHasher((_abs, n) => {
      if (n === 2) controller.abort(new Error('stop'));
    });
    await expect(validateBag(root, { hashFile: spy.hashFile, signal: controller.signal })).rejects.toThrow('stop');
    expect(spy.read.length).toBeLessThan(10);
  });
});

// ---------------------------------------------------------------------------------------------
// Creating bags

describe('createBag', () => {
  it('round-trips names with spaces, %, line breaks and non-ASCII letters into a bag with no error and no warning', async () => {
    const src = dir();
    const content: Record<string, string | Buffer> = {
      'Ærø é.txt': 'æøå',
      '100% sure/line.txt': 'l',
      'sub dir/deeper/empty.bin': Buffer.alloc(0),
      'odd\nname.txt': 'n',
      'bin.dat': Buffer.from([0, 1, 2, 255]),
    };
    writeTree(src, content);
    const dest = path.join(dir(), 'bag');
    const progress: Array<{ files: number; bytes: number }> = [];
    const totalBytes = Object.values(content).reduce((s, c) => s + Buffer.byteLength(c), 0);
    const r = await createBag(src, dest, { info: [['Contact-Name', 'A. Archivist'], ['External-Description', 'two\nlines']], onProgress: (p) => progress.push(p) });
    expect(r).toEqual({ files: 5, bytes: totalBytes });
    expect(progress.at(-1)).toEqual({ files: 5, bytes: totalBytes });

    const report = await validateBag(dest, { hashFile: hashFileInProcess });
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(report).toMatchObject({ valid: true, payloadFiles: 5, payloadBytes: totalBytes });

    const read = (name: string) => fs.readFileSync(path.join(dest, name), 'utf8');
    expect(read('bagit.txt')).toBe('BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n');
    expect(read('manifest-sha512.txt')).toContain(`${hex('sha512', 'l')}  data/100%25 sure/line.txt\n`);
    expect(read('manifest-md5.txt')).toContain(`${hex('md5', 'n')}  data/odd%0Aname.txt\n`);
    expect(read('manifest-md5.txt')).toContain(`${hex('md5', 'æøå')}  data/Ærø é.txt\n`);
    expect(read('bag-info.txt')).toMatch(new RegExp(`^Bag-Software-Agent: Fonds\nBagging-Date: \\d{4}-\\d{2}-\\d{2}\nPayload-Oxum: ${totalBytes}\\.5\nContact-Name: A\\. Archivist\nExternal-Description: two\n  lines\n$`));
    expect(read('tagmanifest-sha512.txt').split('\n').filter(Boolean).map((l) => l.split('  ')[1])).toEqual(['bag-info.txt', 'bagit.txt', 'manifest-md5.txt', 'manifest-sha512.txt']);
    expect(fs.readdirSync(dest).sort()).toEqual(['bag-info.txt', 'bagit.txt', 'data', 'manifest-md5.txt', 'manifest-sha512.txt', 'tagmanifest-md5.txt', 'tagmanifest-sha512.txt']);
    for (const [rel, c] of Object.entries(content)) expect(fs.readFileSync(path.join(dest, 'data', rel)).equals(Buffer.from(c))).toBe(true);

    const { declaration } = await readBagDeclaration(dest);
    expect(declaration!.info).toContainEqual(['External-Description', 'two lines']);
    expect(declaration!.manifestAlgorithms).toEqual(['md5', 'sha512']);
  });

  it('copies and hashes in one call per file with copyFile; hashes the copy inside the bag with hashFile', async () => {
    const src = dir();
    writeTree(src, { 'a.txt': 'a', 'b/c.txt': 'c' });
    const copies: string[] = [];
    const copyFile: CopyFile = async (from, to, algorithms, signal) => {
      copies.push(from);
      expect(algorithms).toEqual(['sha512', 'md5']);
      const h = await hashFileInProcess(from, algorithms, signal);
      fs.copyFileSync(from, to);
      return h;
    };
    const viaCopy = path.join(dir(), 'bag');
    await createBag(src, viaCopy, { copyFile });
    expect(copies.sort()).toEqual([path.join(src, 'a.txt'), path.join(src, 'b/c.txt')]);
    expect((await validateBag(viaCopy, { hashFile: hashFileInProcess })).errors).toEqual([]);

    const spy = spyHasher();
    const viaHash = path.join(dir(), 'bag');
    await createBag(src, viaHash, { hashFile: spy.hashFile });
    expect(spy.read).toHaveLength(2);
    for (const r of spy.read) expect(r.algorithms).toEqual(['sha512', 'md5']);
    expect((await validateBag(viaHash, { hashFile: hashFileInProcess })).errors).toEqual([]);
  });

  it('refuses a destination that exists and is not empty, leaving it untouched', async () => {
    const src = dir();
    writeTree(src, { 'a.txt': 'a' });
    const dest = dir();
    writeTree(dest, { 'keep.txt': 'precious' });
    await expect(createBag(src, dest)).rejects.toThrow(/already exists and is not empty/);
    expect(fs.readdirSync(dest)).toEqual(['keep.txt']);
    const file = path.join(dir(), 'a-file');
    fs.writeFileSync(file, 'x');
    await expect(createBag(src, file)).rejects.toThrow(/not a folder/);
  });

  it('accepts an existing empty destination', async () => {
    const src = dir();
    writeTree(src, { 'a.txt': 'a' });
    const dest = dir();
    expect(await createBag(src, dest)).toEqual({ files: 1, bytes: 1 });
    expect(await isBag(dest)).toBe(true);
  });

  it('refuses a destination inside the source', async () => {
    const src = dir();
    writeTree(src, { 'a.txt': 'a' });
    await expect(createBag(src, path.join(src, 'bag'))).rejects.toThrow(/inside the folder it bags/);
    await expect(createBag(src, src)).rejects.toThrow(/inside the folder it bags/);
    expect(fs.readdirSync(src)).toEqual(['a.txt']);
  });

  it('refuses a source holding symbolic links, writing nothing', async () => {
    const src = dir();
    writeTree(src, { 'a.txt': 'a' });
    fs.symlinkSync('/etc/hostname', path.join(src, 'link'));
    const dest = path.join(dir(), 'bag');
    await expect(createBag(src, dest)).rejects.toThrow(/link \(a symbolic link\)/);
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('never leaves something that looks like a bag when a copy fails or is aborted', async () => {
    const src = dir();
    writeTree(src, Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}.txt`, `file ${i}`])));
    let n = 0;
    const failing: CopyFile = async (from, to, algorithms, signal) => {
      if (++n === 3) throw new Error('disk full');
      const h = await hashFileInProcess(from, algorithms, signal);
      fs.copyFileSync(from, to);
      return h;
    };
    const dest = path.join(dir(), 'bag');
    await expect(createBag(src, dest, { copyFile: failing })).rejects.toThrow('disk full');
    expect(fs.existsSync(dest)).toBe(false);

    const empty = dir();
    const controller = new AbortController();
    const aborting: CopyFile = async (from, to, algorithms, signal) => {
      controller.abort(new Error('user cancelled'));
      return failing(from, to, algorithms, signal);
    };
    await expect(createBag(src, empty, { copyFile: aborting, signal: controller.signal })).rejects.toThrow('user cancelled');
    expect(fs.readdirSync(empty)).toEqual([]); // an existing destination is left as found
    expect(await isBag(empty)).toBe(false);
  });
});

describe('hashFileInProcess', () => {
  it('gives lower-case hex for every algorithm in one read', async () => {
    const f = path.join(dir(), 'abc');
    fs.writeFileSync(f, 'abc');
    const h = await hashFileInProcess(f, ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']);
    expect(h.md5).toBe('900150983cd24fb0d6963f7d28e17f72');
    expect(h.sha1).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(h.sha256).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(h.sha224).toBe(hex('sha224', 'abc'));
    expect(h.sha384).toBe(hex('sha384', 'abc'));
    expect(h.sha512).toBe(hex('sha512', 'abc'));
  });
});
