import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src-main/service';
import type { HashTask } from '../../src-main/service/fixity/hash-pool';
import type { Finding } from '../../src-shared/api';
import { fixturesDir, ingestChecked, tempDir, testHarness, waitFor } from '../helpers/service';

const { cleanups, start, delivery } = testHarness(afterEach);
const service = async (overrides = {}): Promise<Service> => (await start(overrides)).service;
const ingest = ingestChecked;
const md5 = (s: string | Buffer) => crypto.createHash('md5').update(s).digest('hex');
const rules = (findings: Finding[], check?: string) => findings.filter((f) => !check || f.check === check).map((f) => `${f.rule} ${f.path}`).sort();

describe('taking in a folder', () => {
  it('lists and hashes every file, and both checks pass on a clean delivery with MD5 sidecars', async () => {
    const s = await service();
    const root = delivery({
      'report.pdf': 'pdf bytes',
      'report.pdf.md5': `${md5('pdf bytes')}  report.pdf\n`,
      'maps/a.tif': 'tiff a',
      'maps/md5sums': `${md5('tiff a')}  a.tif\n`,
    });
    const { upload, findings } = await ingest(s, [root]);
    expect(upload.status).toBe('CLOSED');
    expect(upload.files).toBe(4);
    expect(upload.checks).toEqual([
      { kind: 'archive', status: 'SUCCESS', errors: 0, warnings: 0 },
      { kind: 'standard', status: 'SUCCESS', errors: 0, warnings: 0 },
    ]);
    expect(findings).toEqual([]);
    const files = await s.call('uploads.files', { id: upload._id });
    const pdf = files.items.find((f) => f.path === 'report.pdf')!;
    expect(pdf.md5).toBe(md5('pdf bytes'));
    expect(pdf.sha256).toBe(crypto.createHash('sha256').update('pdf bytes').digest('hex'));
  });

  it('fails the standard check on an MD5 that does not match, naming the file and the sidecar', async () => {
    const s = await service();
    const root = delivery({ 'a.txt': 'hello', 'a.txt.md5': md5('HELLO'), 'list/md5sums.txt': `${md5('x')}  missing.bin\nnot a line\n` });
    const { upload, findings } = await ingest(s, [root]);
    expect(upload.checks[1]).toMatchObject({ kind: 'standard', status: 'FAILURE', errors: 3 });
    expect(rules(findings, 'standard')).toEqual(['md5-malformed list/md5sums.txt', 'md5-mismatch a.txt', 'md5-target-missing list/missing.bin']);
    expect(findings.find((f) => f.rule === 'md5-mismatch')!.message).toContain(`a.txt: MD5 is ${md5('hello')}, but a.txt.md5 says ${md5('HELLO')}`);
  });

  it('notes files that came without a signature, and fails them when signatures are required', async () => {
    const root = delivery({ 'a.txt': 'a', 'b.txt': 'b' });
    const lax = await ingest(await service(), [root]);
    expect(lax.upload.checks[1].status).toBe('SUCCESS');
    expect(lax.findings.map((f) => [f.rule, f.severity])).toEqual([['md5-not-delivered', 'info']]);
    const strict = await ingest(await service({ requireDeliveredChecksums: true }), [root]);
    expect(strict.upload.checks[1].status).toBe('FAILURE');
    expect(rules(strict.findings)).toEqual(['md5-missing a.txt', 'md5-missing b.txt']);
  });

  it('fails a file that grew between the walk and its hash, naming it and both sizes, so it is checked again', async () => {
    const s = await service();
    const root = delivery({ 'a.txt': 'hello', 'b.txt': 'steady' });
    // the delivery is still being written: a.txt grows after it was listed, before it is read
    const pool = s.internals.pool;
    const hash = pool.hash.bind(pool);
    let grown = false;
    pool.hash = (t: HashTask) => {
      if (!grown && t.path.endsWith('a.txt')) {
        grown = true;
        fs.appendFileSync(t.path, ' world, still being written');
      }
      return hash(t);
    };
    const { upload, findings } = await ingest(s, [root]);
    pool.hash = hash;
    expect(upload.status).toBe('CLOSED');
    expect(upload.checks[1]).toMatchObject({ kind: 'standard', status: 'FAILURE', errors: 1 });
    const f = findings.find((x) => x.rule === 'changed-during-check')!;
    expect(f).toMatchObject({ check: 'standard', path: 'a.txt', severity: 'error' });
    expect(f.message).toBe('a.txt: changed while the delivery was being checked (5 bytes when it was listed, 32 bytes when it was read); it is still being written or was replaced. Check the upload again once the delivery is complete');
    // no size next to the hash of other bytes: the file is recorded as not checked
    const files = (await s.call('uploads.files', { id: upload._id })).items;
    expect(files.find((x) => x.path === 'a.txt')).toMatchObject({ size: 5, md5: '', sha256: '' });
    expect(files.find((x) => x.path === 'b.txt')!.md5).toBe(md5('steady'));
    await s.call('uploads.recheck', { id: upload._id });
    await s.idle();
    const again = await s.call('uploads.get', { id: upload._id });
    expect(again.checks[1].status).toBe('SUCCESS');
    expect(again.size).toBe(32 + 6);
  });

  it('reads md5sum lists with a UTF-8 byte-order mark or in UTF-16, and says so', async () => {
    const s = await service({ requireDeliveredChecksums: true });
    const utf8 = delivery({ 'a.txt': 'alpha', 'b.txt': 'beta', 'checksums.md5': `\uFEFF${md5('alpha')}  a.txt\r\n${md5('beta')}  b.txt\r\n` });
    const one = await ingest(s, [utf8]);
    expect(one.upload.checks[1]).toMatchObject({ status: 'SUCCESS', errors: 0, warnings: 1 });
    expect(one.findings.map((f) => [f.rule, f.path, f.severity])).toEqual([['bom-in-md5-file', 'checksums.md5', 'warning']]);
    expect(one.findings[0].message).toContain('checksums.md5: starts with a UTF-8 byte-order mark');
    for (const [bom, encode] of [
      [[0xff, 0xfe], (t: string) => Buffer.from(t, 'utf16le')],
      [[0xfe, 0xff], (t: string) => Buffer.from(t, 'utf16le').swap16()],
    ] as const) {
      const utf16 = delivery({ 'a.txt': 'alpha', 'md5sums.txt': Buffer.concat([Buffer.from(bom), encode(`${md5('alpha')}  a.txt\r\n`)]), 'a.txt.md5': Buffer.concat([Buffer.from(bom), encode(md5('alpha'))]) });
      const two = await ingest(s, [utf16]);
      expect(two.upload.checks[1]).toMatchObject({ status: 'SUCCESS', errors: 0 });
      expect(rules(two.findings)).toEqual(['bom-in-md5-file a.txt.md5', 'bom-in-md5-file md5sums.txt']);
      expect(two.findings[0].message).toMatch(/is UTF-16 text \(it starts with a UTF-16(LE|BE) byte-order mark\)/);
    }
  });
});

describe('names the walk cannot open', () => {
  it('fails the check naming a path too long for the system, instead of stopping on ENAMETOOLONG', async () => {
    const s = await service();
    const root = tempDir('fonds-deep-');
    cleanups.push(() => void spawnSync('rm', ['-rf', root])); // deeper than fs.rm reaches
    fs.writeFileSync(path.join(root, 'ok.txt'), 'fine');
    // 25 folders of 200 characters: more than PATH_MAX (4096), made relative to each other
    const made = spawnSync(process.execPath, ['-e', `const fs = require('fs'); process.chdir(${JSON.stringify(root)}); for (let i = 0; i < 25; i++) { fs.mkdirSync('d'.repeat(200)); process.chdir('d'.repeat(200)); } fs.writeFileSync('deep.txt', 'deep');`]);
    expect(made.status).toBe(0);
    const { upload, findings } = await ingest(s, [root]);
    expect(upload.status).toBe('CLOSED');
    expect(upload.checks[0].status).toBe('FAILURE');
    const tooLong = findings.filter((f) => f.rule === 'path-too-long' && f.severity === 'error');
    expect(tooLong).toHaveLength(1);
    expect(tooLong[0].path).toMatch(/^(d{200}\/){20}d{200}$/);
    expect(tooLong[0].message).toMatch(/: the path is too long for this system to open \(\d+ bytes with the folder it was delivered in\); it was not checked\. Shorten the names/);
    expect((await s.call('uploads.files', { id: upload._id, limit: 100 })).items.map((f) => f.path)).toContain('ok.txt');
  });

  it('fails the check naming a folder it may not read', async () => {
    if (process.getuid?.() === 0) return; // root reads everything: nothing to deny
    const s = await service();
    const root = delivery({ 'ok.txt': 'fine', 'closed/secret.txt': 's' });
    fs.chmodSync(path.join(root, 'closed'), 0o000);
    cleanups.push(() => fs.chmodSync(path.join(root, 'closed'), 0o755));
    const { upload, findings } = await ingest(s, [root]);
    expect(upload.status).toBe('CLOSED');
    expect(findings.find((f) => f.rule === 'unreadable')).toMatchObject({ path: 'closed', severity: 'error', message: expect.stringContaining('closed: permission denied; its content was not checked') });
  });
});

describe('archive check: naming conflicts', () => {
  it('finds names that differ only by case or Unicode normalization, and non-portable names', async () => {
    const s = await service();
    const root = delivery({
      'Photo.JPG': '1',
      'photo.jpg': '2',
      ['caf\u00e9.txt']: 'nfc',
      ['cafe\u0301.txt']: 'nfd',
      'CON.txt': 'reserved',
      'what?.txt': 'q',
      'trailing. ': 't',
    });
    const { upload, findings } = await ingest(s, [root]);
    expect(upload.checks[0].status).toBe('FAILURE');
    const archive = rules(findings, 'archive');
    expect(archive).toContain('case-conflict Photo.JPG');
    expect(archive).toContain('case-conflict photo.jpg');
    expect(archive).toContain('unicode-normalization-conflict caf\u00e9.txt');
    expect(archive).toContain('unicode-normalization-conflict cafe\u0301.txt');
    expect(archive).toContain('reserved-name CON.txt');
    expect(archive).toContain('forbidden-character what?.txt');
    expect(archive).toContain('trailing-dot-or-space trailing. ');
  });

  it('folds case as NTFS and APFS do: final sigma, long s; but not ß into ss', async () => {
    const s = await service();
    const root = delivery({ 'ΟΔΟΣ/a.txt': '1', 'οδοσ/b.txt': '2', 'λογος.txt': '3', 'λογοσ.txt': '4', 'ſ.txt': '5', 's.txt': '6', 'straße.txt': '7', 'strasse.txt': '8' });
    const { upload, findings } = await ingest(s, [root]);
    expect(upload.checks[0].status).toBe('FAILURE');
    expect(rules(findings, 'archive')).toEqual(['case-conflict s.txt', 'case-conflict ſ.txt', 'case-conflict λογοσ.txt', 'case-conflict λογος.txt', 'case-conflict οδοσ', 'case-conflict ΟΔΟΣ'].sort());
    expect(findings.find((f) => f.path === 'ſ.txt')!.message).toBe("'s.txt' and 'ſ.txt' differ only by letter case");
  });

  it('finds the same path delivered twice and a file that collides with a folder', async () => {
    const s = await service();
    const one = delivery({ 'box/a.txt': 'one', 'box/Notes': 'file' });
    const two = delivery({ 'box/a.txt': 'two', 'box/notes/x.txt': 'in folder' });
    const { upload, findings } = await ingest(s, [path.join(one, 'box'), path.join(two, 'box')]);
    expect(upload.checks[0].status).toBe('FAILURE');
    const archive = rules(findings, 'archive');
    expect(archive).toContain('duplicate-path box/a.txt');
    expect(archive).toContain('file-folder-conflict box/Notes');
    expect(archive).toContain('file-folder-conflict box/notes');
  });

  it('does not follow a symbolic link that leaves the delivery, and says so', async () => {
    const s = await service();
    const secret = delivery({ 'secret.txt': 'do not read' });
    const root = delivery({ 'ok.txt': 'fine' });
    fs.symlinkSync(path.join(secret, 'secret.txt'), path.join(root, 'escape.txt'));
    const { upload, findings } = await ingest(s, [root]);
    expect(rules(findings, 'archive')).toEqual(['symlink-leaves-delivery escape.txt']);
    const files = await s.call('uploads.files', { id: upload._id });
    expect(files.items.map((f) => f.path)).toEqual(['ok.txt']);
  });

  it('judges a link in a drop of several folders against the folders dropped, not the folder they came from', async () => {
    const s = await service();
    const parent = delivery({ 'a/x.txt': 'x', 'b/y.txt': 'y', 'secret/passwords.txt': 'not delivered' });
    fs.symlinkSync(path.join(parent, 'secret/passwords.txt'), path.join(parent, 'a/to-secret'));
    fs.symlinkSync(path.join(parent, 'b/y.txt'), path.join(parent, 'a/to-b'));
    const { findings } = await ingest(s, [path.join(parent, 'a'), path.join(parent, 'b')]);
    expect(findings.filter((f) => f.check === 'archive').map((f) => `${f.rule} ${f.path} ${f.severity}`).sort()).toEqual([
      'symlink-leaves-delivery a/to-secret error',
      'symlink-not-followed a/to-b warning',
    ]);
  });
});

describe('taking in BagIt bags', () => {
  it('validates a valid bag from the conformance suite and hashes with the manifest algorithms', async () => {
    const s = await service();
    const bag = path.join(fixturesDir, 'v0.97/valid/uncommon-metadata-separators');
    const { upload, findings } = await ingest(s, [bag]);
    expect(upload.isBag).toBe(true);
    expect(upload.checks[1].status).toBe('SUCCESS');
    expect(findings.filter((f) => f.severity === 'error')).toEqual([]);
    const files = await s.call('uploads.files', { id: upload._id });
    expect(files.items.find((f) => f.path === 'data/README')!.extra.sha224).toMatch(/^[0-9a-f]{56}$/);
  });

  it('counts as signed only what the bag\'s manifests list (and its own tag files), not extra files beside data/', async () => {
    const s = await service({ requireDeliveredChecksums: true });
    const info = 'Payload-Oxum: 1.1\nBagging-Date: 2026-01-01\n';
    const bag = delivery({
      'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n',
      'data/a.txt': 'a',
      'manifest-md5.txt': `${md5('a')}  data/a.txt\n`,
      'bag-info.txt': info,
      'tagmanifest-md5.txt': `${md5(info)}  bag-info.txt\n${md5('listed')}  extra/listed.txt\n`,
      'extra/listed.txt': 'listed',
      'contract.pdf': 'unsigned extra file at the bag root',
      'extra/scan.tif': 'unsigned file in a tag folder',
    });
    const { upload, findings } = await ingest(s, [bag]);
    expect(upload.checks[1].status).toBe('FAILURE');
    expect(rules(findings.filter((f) => f.severity === 'error'))).toEqual(['md5-missing contract.pdf', 'md5-missing extra/scan.tif']);
  });

  it('fails a bag whose fetch.txt lists files it does not hold, naming each', async () => {
    const s = await service();
    const bag = tempDir('fonds-holey-');
    cleanups.push(() => fs.rmSync(bag, { recursive: true, force: true }));
    fs.cpSync(path.join(fixturesDir, 'v0.97/valid/holey-bag'), bag, { recursive: true });
    fs.rmSync(path.join(bag, 'data/test 1.txt'));
    const { upload, findings } = await ingest(s, [bag]);
    expect(upload.checks[1].status).toBe('FAILURE');
    expect(rules(findings.filter((f) => f.severity === 'error'))).toEqual(['bagit:fetch-file-missing data/test 1.txt']);
  });

  it('reports a tag file too large to read as a finding: the check completes', async () => {
    const s = await service();
    const bag = delivery({ 'bagit.txt': 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n', 'data/a.txt': 'a', 'manifest-md5.txt': `${md5('a')}  data/a.txt\n` });
    fs.writeFileSync(path.join(bag, 'bag-info.txt'), '');
    fs.truncateSync(path.join(bag, 'bag-info.txt'), 20 * 1024 * 1024);
    const { upload, findings } = await ingest(s, [bag]);
    expect(upload.status).toBe('CLOSED');
    expect(upload.checks[1].status).toBe('FAILURE');
    expect(findings.find((f) => f.rule === 'bagit:tag-file-too-large')).toMatchObject({ path: 'bag-info.txt', severity: 'error', message: expect.stringMatching(/^bag-info\.txt: 20971520 bytes, more than the 16 MiB/) });
  });

  it('reports a corrupt payload file with its path and rule', async () => {
    const s = await service();
    const { upload, findings } = await ingest(s, [path.join(fixturesDir, 'v0.97/invalid/corrupt-data-file')]);
    expect(upload.checks[1].status).toBe('FAILURE');
    expect(findings.some((f) => f.rule.startsWith('bagit:') && f.path.startsWith('data/') && f.severity === 'error')).toBe(true);
  });
});

describe('refusing bad input', () => {
  it('refuses relative, missing and NUL-byte paths with a clear error, creating nothing', async () => {
    const s = await service();
    await expect(s.call('uploads.ingestPaths', { paths: ['relative/dir'] })).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(s.call('uploads.ingestPaths', { paths: ['/no/such/delivery'] })).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('/no/such/delivery') });
    await expect(s.call('uploads.ingestPaths', { paths: ['/tmp/a\0b'] })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(s.call('uploads.ingestPaths', { paths: [] })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect((await s.call('uploads.list', {})).total).toBe(0);
  });

  it('refuses pushed file paths that would leave the staging folder', async () => {
    const s = await service();
    const u = await s.call('uploads.create', { name: 'pushed' });
    const { Readable } = await import('node:stream');
    for (const bad of ['../escape.txt', '/etc/passwd', '~/x', 'a/../../b']) {
      await expect(s.stageFile(u._id, bad, Readable.from([Buffer.from('x')]))).rejects.toMatchObject({ code: expect.stringMatching(/PATH_/) });
    }
    await s.stageFile(u._id, 'docs/a.txt', Readable.from([Buffer.from('pushed bytes')]));
    await s.call('uploads.close', { id: u._id });
    await s.idle();
    const files = await s.call('uploads.files', { id: u._id });
    expect(files.items).toMatchObject([{ path: 'docs/a.txt', md5: md5('pushed bytes') }]);
  });
});

describe('long checks', () => {
  it('reports progress and can be cancelled, ending UNSTABLE with the reason', async () => {
    const s = await service({ hashWorkers: 1, jobConcurrency: 1 });
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) files[`big-${i}.bin`] = crypto.randomBytes(24 * 1024 * 1024);
    const root = delivery(files);
    // progress of the hashing (it has totals; the walk's has not): the walk has finished by then
    let hashing = 0;
    const off = s.subscribe((p) => p.channel === 'progress' && p.progress.progress.totalBytes !== undefined && hashing++);
    cleanups.push(off);
    const u = await s.call('uploads.ingestPaths', { paths: [root] });
    await waitFor(() => hashing, (n) => n > 0, 20_000);
    await s.call('uploads.cancel', { id: u._id });
    await s.idle();
    const after = await s.call('uploads.get', { id: u._id });
    expect(after.status).toBe('UNSTABLE');
    expect(after.reason).toBe('Cancelled by the user.');
    const types = (await s.call('uploads.timeline', { id: u._id, limit: 100 })).items.map((e) => e.type);
    expect(types[0]).toBe('status.UNSTABLE');
    expect(types).toContain('walk.finished');
    // a recheck after a cancel runs to the end
    await s.call('uploads.recheck', { id: u._id });
    await s.idle();
    expect((await s.call('uploads.get', { id: u._id })).status).toBe('CLOSED');
  });

  it('keeps a timeline of every step, newest first', async () => {
    const s = await service();
    const { upload } = await ingest(s, [delivery({ 'a.txt': 'a' })]);
    const types = (await s.call('uploads.timeline', { id: upload._id })).items.map((e) => e.type);
    expect(types).toEqual([
      'status.CLOSED',
      'check.standard',
      'check.archive',
      'hash.finished',
      'hash.started',
      'walk.finished',
      'walk.started',
      'status.CHECKING',
      'created',
    ]);
  });
});
