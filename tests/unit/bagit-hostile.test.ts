/** Hostile and broken bags: every problem reported with file and rule, and nothing outside the bag read. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createBag, hashFileInProcess, validateBag, type BagAlgorithm } from '../../src-main/service/intake/bagit';
import { tempDirs, writeTree } from '../helpers/util';

const dir = tempDirs(afterEach);
const md5 = (s: string) => crypto.createHash('md5').update(s).digest('hex');

/** A hashFile that records every path it is asked to read. */
function spyHasher() {
  const read: string[] = [];
  return {
    read,
    hashFile: (abs: string, algorithms: BagAlgorithm[], signal?: AbortSignal) => {
      read.push(abs);
      return hashFileInProcess(abs, algorithms, signal);
    },
  };
}

function bag(manifestLines: string[], files: Record<string, string> = { 'data/a.txt': 'a' }): string {
  const root = dir();
  writeTree(root, {
    'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n',
    'manifest-md5.txt': manifestLines.join('\n') + '\n',
    ...files,
  });
  return root;
}

describe('hostile manifest paths', () => {
  const cases: Array<[string, string, string]> = [
    ['an absolute path', '/etc/passwd', 'manifest-path-outside-bag'],
    ['a parent-directory path', 'data/../../secret.txt', 'manifest-path-outside-bag'],
    ['a home-directory path', '~/secret.txt', 'manifest-path-outside-bag'],
    ['a NUL byte', 'data/a\0.txt', 'manifest-path-invalid'],
    ['a backslash path', 'data\\..\\..\\secret.txt', 'manifest-path-invalid'],
    ['an over-long name', `data/${'x'.repeat(300)}.txt`, 'manifest-path-invalid'],
  ];
  for (const [what, p, rule] of cases) {
    it(`refuses ${what} and reads nothing outside the bag`, async () => {
      const outside = dir();
      writeTree(outside, { 'secret.txt': 'secret' });
      const root = bag([`${md5('a')}  data/a.txt`, `${md5('secret')}  ${p}`]);
      const spy = spyHasher();
      const report = await validateBag(root, { hashFile: spy.hashFile });
      expect(report.valid).toBe(false);
      expect(report.errors.map((e) => e.rule)).toContain(rule);
      expect(report.errors.find((e) => e.rule === rule)!.message).toMatch(/manifest-md5\.txt line 2: .* refused: /);
      for (const r of spy.read) expect(r.startsWith(root + path.sep)).toBe(true);
    });
  }

  it('reports a symbolic link in the payload and does not follow it', async () => {
    const outside = dir();
    writeTree(outside, { 'secret.txt': 'secret' });
    const root = bag([`${md5('a')}  data/a.txt`, `${md5('secret')}  data/link.txt`]);
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'data/link.txt'));
    const spy = spyHasher();
    const report = await validateBag(root, { hashFile: spy.hashFile });
    expect(report.errors.map((e) => `${e.rule} ${e.file}`)).toEqual(
      expect.arrayContaining(['symlink-in-payload data/link.txt', 'payload-file-missing data/link.txt']),
    );
    expect(spy.read.some((r) => r.includes(outside))).toBe(false);
  });
});

describe('broken bags report every problem', () => {
  it('lists a missing file, an extra file, a bad checksum and a wrong Payload-Oxum together', async () => {
    const root = bag([`${md5('a')}  data/a.txt`, `${md5('b')}  data/b.txt`, `${md5('gone')}  data/gone.txt`], {
      'data/a.txt': 'a',
      'data/b.txt': 'B!',
      'data/extra.txt': 'x',
      'bag-info.txt': 'Payload-Oxum: 3.3\n',
    });
    const report = await validateBag(root, { hashFile: hashFileInProcess });
    expect(report.errors.map((e) => `${e.rule} ${e.file}`).sort()).toEqual([
      'checksum-mismatch data/b.txt',
      'payload-file-missing data/gone.txt',
      'payload-file-not-in-manifest data/extra.txt',
      'payload-oxum-mismatch bag-info.txt',
    ]);
  });

  it('stops when asked (AbortSignal)', async () => {
    const root = bag([`${md5('a')}  data/a.txt`]);
    const controller = new AbortController();
    controller.abort('cancelled by test');
    await expect(validateBag(root, { hashFile: hashFileInProcess, signal: controller.signal })).rejects.toThrow();
  });
});

describe('creating a bag', () => {
  it('round-trips names with spaces, % and accents, and never looks complete before it is', async () => {
    const src = dir();
    writeTree(src, { 'Ærø é.txt': 'æ', '100% sure/line.txt': 'l' });
    const dest = path.join(dir(), 'bag');
    const r = await createBag(src, dest);
    expect(r).toEqual({ files: 2, bytes: Buffer.byteLength('æ') + 1 });
    const report = await validateBag(dest, { hashFile: hashFileInProcess });
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(fs.readFileSync(path.join(dest, 'manifest-sha512.txt'), 'utf8')).toContain('data/100%25 sure/line.txt');
  });

  it('refuses a destination inside the source', async () => {
    const src = dir();
    writeTree(src, { 'a.txt': 'a' });
    await expect(createBag(src, path.join(src, 'bag'))).rejects.toThrow(/inside the folder it bags/);
  });
});
