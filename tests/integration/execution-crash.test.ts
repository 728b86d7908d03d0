/**
 * kill -9 at random moments: an execution killed again and again ends complete and verified,
 * with every file stored once and no temporary file left behind.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot, startService, tempDirs } from '../helpers/service';

const dir = tempDirs(afterEach);

function runChild(dataDir: string, executionId: string, killAfterMs: number | undefined): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'tests/helpers/execute-child.ts'), dataDir, executionId], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (killAfterMs !== undefined && out.includes('started')) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.once('exit', () => resolve(out));
  });
}

describe('an execution killed with SIGKILL at random points', () => {
  it('resumes each time and ends with the stored data complete, verified, nothing duplicated', async () => {
    const tree = dir();
    const expected = new Map<string, string>();
    for (let i = 0; i < 60; i++) {
      const data = crypto.randomBytes(i % 10 === 0 ? 8 * 1024 * 1024 : 64 * 1024 + i);
      const name = `d${i % 4}/f${String(i).padStart(2, '0')}.bin`;
      fs.mkdirSync(path.join(tree, path.dirname(name)), { recursive: true });
      fs.writeFileSync(path.join(tree, name), data);
      expected.set(name, crypto.createHash('md5').update(data).digest('hex'));
    }
    const dataDir = dir();
    let executionId: string;
    {
      const { service } = await startService({ dataDir });
      const u = await service.call('uploads.ingestPaths', { paths: [tree] });
      await service.idle();
      const e = await service.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'crash' } } });
      executionId = e._id;
      await service.close();
    }
    const kills: number[] = [];
    let midway = 0;
    for (let run = 0; run < 10; run++) {
      const delay = Math.floor(Math.random() * 150);
      kills.push(delay);
      const out = await runChild(dataDir, executionId, delay);
      if (!out.includes('done')) midway++;
    }
    expect(midway, `kills after ${kills.join(', ')} ms`).toBeGreaterThanOrEqual(1);
    const last = await runChild(dataDir, executionId, undefined);
    expect(last, `kills after ${kills.join(', ')} ms`).toContain('done SUCCESS');

    const { service, dispose } = await startService({ dataDir });
    try {
      const e = await service.call('executions.get', { id: executionId });
      expect(e.status).toBe('SUCCESS');
      expect(e.files).toMatchObject({ total: 60, verified: 60, failed: 0, pending: 0 });
      const sd = await service.call('storedData.get', { id: e.output.stored_data._id });
      expect(sd).toMatchObject({ status: 'GENERATED', verified: true, type_infos: { files_number: 60 } });
      const files = await service.call('storedData.files', { id: sd._id, limit: 1000 });
      expect(files.total).toBe(60);
      expect(new Map(files.items.map((f) => [f.path, f.md5]))).toEqual(expected);
      const root = path.join(dataDir, 'storage', sd._id);
      const onDisk = (fs.readdirSync(root, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(root, p)).isFile()).sort();
      expect(onDisk).toEqual([...expected.keys()].sort());
      for (const [p, sum] of expected) expect(crypto.createHash('md5').update(fs.readFileSync(path.join(root, p))).digest('hex')).toBe(sum);
    } finally {
      await dispose();
    }
  }, 300_000);
});
