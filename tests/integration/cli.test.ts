import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixturesDir, repoRoot, tempDirs, writeTree } from '../helpers/util';

const dir = tempDirs(afterEach);
/** The CLI from its sources (the e2e tests run the built one through bin/fonds.js). */
function fonds(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src-main/cli/index.ts'), ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('fonds validate', () => {
  it('exits 0 for a valid bag, printing warnings', () => {
    const r = fonds('validate', path.join(fixturesDir, 'v0.97/warning/made-with-md5sum-tools'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^WARNING md5sum-binary-marker manifest-md5\.txt: /m);
    expect(r.out).toMatch(/: valid BagIt 0\.97 bag, 1 payload files/);
  });

  it('exits 1 for an invalid bag, one problem per line naming rule and file', () => {
    const r = fonds('validate', path.join(fixturesDir, 'v0.97/invalid/corrupt-data-file'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^ERROR checksum-mismatch data\/\S+: md5 is [0-9a-f]{32}, but manifest-md5\.txt says [0-9a-f]{32}$/m);
  });

  it('gives machine-readable output with --json', () => {
    const r = fonds('validate', '--json', path.join(fixturesDir, 'v0.97/invalid/extra-file-in-bag'));
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out);
    expect(report.valid).toBe(false);
    expect(report.errors.map((e: { rule: string }) => e.rule)).toContain('payload-file-not-in-manifest');
  });

  it('exits 2 on usage errors and missing paths', () => {
    expect(fonds('validate').code).toBe(2);
    expect(fonds('validate', '/no/such/bag').code).toBe(2);
    expect(fonds('frobnicate').code).toBe(2);
    expect(fonds('--nope').code).toBe(2);
  });
});

describe('fonds bag create', () => {
  it('creates a BagIt 1.0 bag that validates with no error and no warning', () => {
    const src = dir();
    writeTree(src, { 'Ærø é.txt': 'accents', 'sub dir/100% real.txt': 'percent', 'a.bin': Buffer.from([0, 1, 2]) });
    const dest = path.join(dir(), 'bag');
    const created = fonds('bag', 'create', src, '--output', dest);
    expect(created.code).toBe(0);
    expect(fs.readFileSync(path.join(dest, 'bagit.txt'), 'utf8')).toBe('BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n');
    expect(fs.readFileSync(path.join(dest, 'bag-info.txt'), 'utf8')).toMatch(/^Payload-Oxum: 17\.3$/m);
    expect(fs.readFileSync(path.join(dest, 'manifest-md5.txt'), 'utf8')).toContain('data/sub dir/100%25 real.txt');
    const r = fonds('validate', '--json', dest);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(report.algorithms.sort()).toEqual(['md5', 'sha512']);
  });

  it('refuses to write into a non-empty destination', () => {
    const src = dir();
    writeTree(src, { 'a.txt': 'a' });
    const dest = dir();
    writeTree(dest, { 'keep.txt': 'precious' });
    const r = fonds('bag', 'create', src, '--output', dest);
    expect(r.code).toBe(2);
    expect(r.err).toContain('not empty');
    expect(fs.readdirSync(dest)).toEqual(['keep.txt']);
  });
});

describe('fonds ingest', () => {
  it('checks a delivery and exits 1 when a check fails, naming file and rule', () => {
    const src = dir();
    writeTree(src, { 'A.txt': 'a', 'a.txt': 'b' });
    const r = fonds('ingest', src, '--data-dir', dir());
    expect(r.code).toBe(1);
    expect(r.out).toContain('archive check FAILURE');
    expect(r.out).toMatch(/^ERROR archive case-conflict A\.txt: /m);
  });

  it('exits 0 when both checks pass', () => {
    const src = dir();
    writeTree(src, { 'ok.txt': 'fine' });
    const r = fonds('ingest', '--json', src, '--data-dir', dir());
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).upload.status).toBe('CLOSED');
  });
});
