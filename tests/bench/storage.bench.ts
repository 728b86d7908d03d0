/**
 * Copy + verify into local storage vs `cp -r` followed by `md5sum` of the copy, same tree, same run,
 * twice: like for like with nothing made durable, and with both made durable (Fonds' default).
 * Tree: 4 large files + FONDS_BENCH_SMALL (default 20,000) small ones, FONDS_BENCH_GB (default 2) in
 * total; each side measured twice, the best kept. Then RSS during the copy of one FONDS_BENCH_BIG_GB
 * (default 5) file, sampled every 50 ms: max - baseline must stay flat.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createService, type Service } from '../../src-main/service';
import { loadConfig } from '../../src-main/service/config';

const GB = Number(process.env.FONDS_BENCH_GB ?? 2);
const SMALL = Number(process.env.FONDS_BENCH_SMALL ?? 20_000);
const BIG_GB = Number(process.env.FONDS_BENCH_BIG_GB ?? 5);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fonds-bench-storage-'));

function writeRandom(file: string, size: number, block: Buffer): void {
  const fd = fs.openSync(file, 'w');
  let left = size;
  while (left > 0) {
    const n = Math.min(left, block.length);
    block.writeUInt32LE(left % 2 ** 32, 0);
    fs.writeSync(fd, block, 0, n);
    left -= n;
  }
  fs.closeSync(fd);
}

function generate(tree: string): void {
  const block = crypto.randomBytes(8 << 20);
  const smallBytes = 4096;
  const largeSize = Math.floor((GB * 1e9 - SMALL * smallBytes) / 4);
  fs.mkdirSync(tree, { recursive: true });
  for (let i = 0; i < 4; i++) writeRandom(path.join(tree, `large-${i}.bin`), largeSize, block);
  for (let i = 0; i < SMALL; i++) {
    const dir = path.join(tree, 'small', String(i % 100).padStart(3, '0'));
    if (i < 100) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f-${i}.txt`), block.subarray(i % 1000, (i % 1000) + smallBytes));
  }
}

async function ingest(service: Service, tree: string): Promise<string> {
  const u = await service.call('uploads.ingestPaths', { paths: [tree] });
  await service.idle(3600_000);
  return u._id;
}

async function execute(service: Service, uploadId: string, onSample?: () => void): Promise<number> {
  const e = await service.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [uploadId] }, output: { stored_data: { name: 'bench' } } });
  const sampler = onSample ? setInterval(onSample, 50) : undefined;
  const t0 = process.hrtime.bigint();
  await service.call('executions.launch', { id: e._id });
  await service.idle(3600_000);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (sampler) clearInterval(sampler);
  const done = await service.call('executions.get', { id: e._id });
  if (done.status !== 'SUCCESS') throw new Error(`execution ended ${done.status}: ${done.reason}`);
  return seconds;
}

function cpThenMd5sum(tree: string, sync = false): number {
  const dest = path.join(work, `cp-${Date.now()}`);
  const t0 = process.hrtime.bigint();
  if (spawnSync('cp', ['-r', tree, dest]).status !== 0) throw new Error('cp failed');
  if (sync && spawnSync('sync', ['-f', dest]).status !== 0) throw new Error('sync failed');
  const files = execFileSync('find', [dest, '-type', 'f'], { maxBuffer: 1 << 28 }).toString().trim().split('\n');
  for (let i = 0; i < files.length; i += 2000) {
    if (spawnSync('md5sum', files.slice(i, i + 2000), { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) throw new Error('md5sum failed');
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.rmSync(dest, { recursive: true, force: true });
  return seconds;
}

async function main(): Promise<void> {
  const tree = path.join(work, 'tree');
  console.log(`generating ${GB} GB: 4 large files + ${SMALL} small ones ...`);
  generate(tree);
  const dataDir = path.join(work, 'data');
  const open = (storageDurability: 'batch' | 'none') => createService(loadConfig({ env: process.env, overrides: { dataDir, storageDurability } }));
  let service = await open('batch');
  const uploadId = await ingest(service, tree);
  // Two pairs, each measured twice alternating, the best kept (the machine is shared):
  // - durable: Fonds as it runs (copies synced before they count as verified) vs cp -r + sync + md5sum;
  // - like for like with the reference: Fonds with storageDurability=none vs cp -r + md5sum
  //   (neither waits for the disk; the copies sit in the page cache).
  const measure = async (sync: boolean) => {
    const refs: number[] = [];
    const runs: number[] = [];
    for (let i = 0; i < 2; i++) {
      refs.push(cpThenMd5sum(tree, sync));
      runs.push(await execute(service, uploadId));
      fs.rmSync(path.join(dataDir, 'storage'), { recursive: true, force: true });
    }
    return { reference: Math.min(...refs), fonds: Math.min(...runs), refs, runs };
  };
  const durable = await measure(true);
  await service.close();
  service = await open('none');
  const cached = await measure(false);
  await service.close();
  service = await open('batch');
  const show = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
  console.log(`cp -r + md5sum                     ${cached.reference.toFixed(2)} s  (runs: ${show(cached.refs)})`);
  console.log(`fonds copy+verify, durability none ${cached.fonds.toFixed(2)} s  (runs: ${show(cached.runs)})`);
  console.log(`cp -r + sync + md5sum              ${durable.reference.toFixed(2)} s  (runs: ${show(durable.refs)})`);
  console.log(`fonds copy+verify, durability batch ${durable.fonds.toFixed(2)} s  (runs: ${show(durable.runs)}; the default: copies synced before they count as verified)`);
  console.log('(fonds: source read once with SHA-256, the copy read back and its SHA-256 checked before its atomic rename)');
  console.log(`ratio fonds / (cp -r + md5sum), neither durable: ${(cached.fonds / cached.reference).toFixed(3)}  (target <= 1.0)`);
  console.log(`ratio fonds / (cp -r + sync + md5sum), both durable: ${(durable.fonds / durable.reference).toFixed(3)}  (target <= 1.0)`);
  console.log(`ratio durable fonds / (cp -r + md5sum): ${(durable.fonds / cached.reference).toFixed(3)}  (what the sync costs)`);

  if (BIG_GB > 0) {
    const bigTree = path.join(work, 'big');
    fs.mkdirSync(bigTree);
    writeRandom(path.join(bigTree, 'one.bin'), BIG_GB * 1e9, crypto.randomBytes(8 << 20));
    const bigUpload = await ingest(service, bigTree);
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const seconds = await execute(service, bigUpload, () => (peak = Math.max(peak, process.memoryUsage().rss)));
    console.log(`single ${BIG_GB} GB file: ${seconds.toFixed(1)} s, RSS baseline ${(baseline / 2 ** 20).toFixed(0)} MB, peak ${(peak / 2 ** 20).toFixed(0)} MB, max - baseline ${((peak - baseline) / 2 ** 20).toFixed(0)} MB (${peak - baseline < 64 * 2 ** 20 ? 'flat' : 'NOT flat'}: target < 64 MB whatever the file size)`);
  }
  await service.close();
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(1);
});
