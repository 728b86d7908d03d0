/**
 * Ingest hash pass vs md5sum and sha256sum on the same generated tree, in the same run.
 * Tree: a few large files plus 20,000 small ones, FONDS_BENCH_GB (default 2) in total.
 * Prints: wall times, ratio to the slower reference, peak RSS, event-loop lag p99.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createService } from '../../src-main/service';
import { loadConfig } from '../../src-main/service/config';

const GB = Number(process.env.FONDS_BENCH_GB ?? 2);
const SMALL = Number(process.env.FONDS_BENCH_SMALL ?? 20_000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fonds-bench-'));
const tree = path.join(work, 'delivery');

function generate(): { files: number; bytes: number } {
  const total = GB * 1e9;
  const smallBytes = 4096;
  const large = 4;
  const largeSize = Math.floor((total - SMALL * smallBytes) / large);
  const block = crypto.randomBytes(8 << 20);
  let files = 0;
  let bytes = 0;
  for (let i = 0; i < large; i++) {
    const fd = fs.openSync(path.join(tree, `large-${i}.bin`), 'w');
    let left = largeSize;
    while (left > 0) {
      const n = Math.min(left, block.length);
      block.writeUInt32LE(i * 1e6 + left, 0);
      fs.writeSync(fd, block, 0, n);
      left -= n;
    }
    fs.closeSync(fd);
    files++;
    bytes += largeSize;
  }
  for (let i = 0; i < SMALL; i++) {
    const dir = path.join(tree, 'small', String(i % 100).padStart(3, '0'));
    if (i < 100) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f-${i}.txt`), block.subarray(i % 1000, (i % 1000) + smallBytes));
    files++;
    bytes += smallBytes;
  }
  return { files, bytes };
}

function listFiles(): string[] {
  return execFileSync('find', [tree, '-type', 'f'], { maxBuffer: 1 << 28 }).toString().trim().split('\n');
}

function timeTool(tool: string, files: string[]): number {
  // drop nothing from the page cache: every contender reads warm files, in the same order
  const t0 = process.hrtime.bigint();
  const chunk = 2000;
  for (let i = 0; i < files.length; i += chunk) {
    const r = spawnSync(tool, files.slice(i, i + chunk), { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`${tool} failed`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function timeFonds(): Promise<{ seconds: number; rssPeakMb: number; lagP99Ms: number; files: number }> {
  const dataDir = path.join(work, `data-${Date.now()}`);
  const service = await createService(loadConfig({ env: {}, overrides: { dataDir } }));
  const lag = monitorEventLoopDelay({ resolution: 10 });
  let rssPeak = 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);
  lag.enable();
  const t0 = process.hrtime.bigint();
  const u = await service.call('uploads.ingestPaths', { paths: [tree] });
  await service.idle(3600_000);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  lag.disable();
  clearInterval(sampler);
  const done = await service.call('uploads.get', { id: u._id });
  if (done.status !== 'CLOSED') throw new Error(`ingest ended ${done.status}: ${done.reason}`);
  const events = (await service.call('uploads.timeline', { id: u._id, limit: 1000 })).items.reverse();
  const t0ms = new Date(events[0].time).getTime();
  console.log('phases: ' + events.filter((e) => e.type !== 'hash.progress').map((e) => `${e.type} +${((new Date(e.time).getTime() - t0ms) / 1000).toFixed(2)}s`).join(', '));
  await service.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { seconds, rssPeakMb: rssPeak / 2 ** 20, lagP99Ms: lag.percentile(99) / 1e6, files: done.files };
}

async function main(): Promise<void> {
  fs.mkdirSync(tree, { recursive: true });
  console.log(`generating ${GB} GB: 4 large files + ${SMALL} small ones in ${tree} ...`);
  const g = generate();
  const files = listFiles();
  timeTool('md5sum', files); // warm the page cache for everyone
  const md5 = timeTool('md5sum', files);
  const sha = timeTool('sha256sum', files);
  const fonds = await timeFonds();
  const slower = Math.max(md5, sha);
  const ratio = fonds.seconds / slower;
  console.log(`files: ${g.files}, bytes: ${(g.bytes / 1e9).toFixed(2)} GB, cores: ${os.availableParallelism()}`);
  console.log(`md5sum     ${md5.toFixed(2)} s`);
  console.log(`sha256sum  ${sha.toFixed(2)} s`);
  console.log(`fonds      ${fonds.seconds.toFixed(2)} s  (MD5 + SHA-256 in one read, checks included)`);
  console.log(`ratio fonds / slower reference: ${ratio.toFixed(3)}  (target <= 1.15)`);
  console.log(`peak RSS: ${fonds.rssPeakMb.toFixed(0)} MB  (target < 250)`);
  console.log(`event-loop lag p99: ${fonds.lagP99Ms.toFixed(1)} ms  (target < 50)`);
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(1);
});
