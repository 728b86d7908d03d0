/**
 * Nothing lost on a crash: an ingest killed with SIGKILL in the middle of its hash pass resumes on
 * the next start, does not read again the files it had finished, and ends with every file hashed once.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startService, repoRoot, tempDirs, waitFor } from '../helpers/service';

const dir = tempDirs(afterEach);

describe('an ingest killed mid-way', () => {
  it('resumes after restart without re-reading finished files, and ends complete', async () => {
    const tree = dir();
    const expected = new Map<string, string>();
    for (let i = 0; i < 48; i++) {
      const data = crypto.randomBytes(12 * 1024 * 1024);
      fs.writeFileSync(path.join(tree, `f${String(i).padStart(2, '0')}.bin`), data);
      expected.set(`f${String(i).padStart(2, '0')}.bin`, crypto.createHash('md5').update(data).digest('hex'));
    }
    const dataDir = dir();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'tests/helpers/ingest-child.ts'), dataDir, tree], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise((r) => child.once('exit', r));
    // kill as soon as some hashes are committed and others are not
    await waitFor(() => /hashed/.test(out), Boolean, 60_000);
    const db = new Database(path.join(dataDir, 'fonds.sqlite'), { readonly: true });
    const committed = () => db.prepare('SELECT count(*) FROM upload_entries WHERE md5 IS NOT NULL').pluck().get() as number;
    await waitFor(committed, (n) => n >= 4, 60_000);
    child.kill('SIGKILL');
    const atKill = committed();
    db.close();
    await exited;
    expect(out).not.toContain('done');

    const { service, dispose } = await startService({ dataDir });
    try {
      await service.idle(120_000);
      const [upload] = (await service.call('uploads.list', {})).items;
      expect(upload.status).toBe('CLOSED');
      expect(upload.files).toBe(48);
      const files = await service.call('uploads.files', { id: upload._id, limit: 100 });
      expect(files.total).toBe(48);
      expect(new Map(files.items.map((f) => [f.path, f.md5]))).toEqual(expected);
      const starts = (await service.call('uploads.timeline', { id: upload._id, limit: 1000 })).items.filter((e) => e.type === 'hash.started');
      expect(starts).toHaveLength(2);
      expect(atKill).toBeLessThan(48);
      expect(Number(starts[0].payload.resumedFrom)).toBeGreaterThanOrEqual(atKill);
    } finally {
      await dispose();
    }
  }, 180_000);
});
