/**
 * The message directory at scale: index FONDS_BENCH_MESSAGES (default 100,000) generated Medona
 * messages from cold (target < 30 s), rescan them unchanged, and a dry-run purge over them
 * (target < 5 s). References measured in the same run: `find <dir> -type f | wc -l`, and a bare
 * Node walk (readdir + lstat of every file), on the same (warm) tree.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createService } from '../../src-main/service';
import { loadConfig } from '../../src-main/service/config';

const N = Number(process.env.FONDS_BENCH_MESSAGES ?? 100_000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fonds-bench-messages-'));
const dir = path.join(work, 'messages');
const RULES = `{'Transferts': {'type': ['ArchiveTransfer'], 'status': ['processed', 'rejected', 'invalid'], 'delay': 'P7D'},
'Communications': {'type': ['ArchiveDeliveryRequestReply'], 'status': ['received', 'rejected'], 'delay': 'P1M'}}`;
const TYPES = ['ArchiveTransfer', 'ArchiveTransfer', 'ArchiveDeliveryRequestReply', 'ArchiveRestitution', 'ArchiveTransferReply'];
const STATUSES = ['processed', 'received', 'rejected', 'processing', 'invalid', 'sent'];

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

function generate(): { files: number; bytes: number } {
  fs.mkdirSync(dir, { recursive: true });
  let files = 0;
  let bytes = 0;
  const now = Date.now();
  for (let i = 0; i < N; i++) {
    const id = `MSG-${String(i).padStart(7, '0')}`;
    const type = TYPES[i % TYPES.length];
    const date = new Date(now - (i % 730) * 86_400_000 - (i % 86_400) * 1000).toISOString();
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<${type} xmlns="org:afnor:medona:1.0">\n  <Comment>Message ${i}</Comment>\n  <Date>${date}</Date>\n` +
      `  <MessageIdentifier>REF-${i}</MessageIdentifier>\n  <Status>${STATUSES[i % STATUSES.length]}</Status>\n` +
      `  <ArchivalAgency><Identifier>ARCHIVES-${i % 7}</Identifier></ArchivalAgency>\n` +
      `  <TransferringAgency><Identifier>SERVICE-${i % 113}</Identifier></TransferringAgency>\n</${type}>\n`;
    fs.mkdirSync(path.join(dir, id));
    fs.writeFileSync(path.join(dir, id, `${id}.xml`), xml);
    files++;
    bytes += xml.length;
    if (i % 10 === 0) {
      fs.writeFileSync(path.join(dir, `${id}.zip`), 'PK-archive');
      files++;
      bytes += 10;
    }
  }
  return { files, bytes };
}

function referenceFind(): { seconds: number; files: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', `find '${dir}' -type f | wc -l`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`find failed: ${r.stderr}`);
  return { seconds: seconds(t0), files: Number(r.stdout.trim()) };
}

async function referenceWalk(): Promise<{ seconds: number; files: number }> {
  const t0 = process.hrtime.bigint();
  let files = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    for (const e of await fs.promises.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else {
        await fs.promises.lstat(p);
        files++;
      }
    }
  }
  return { seconds: seconds(t0), files };
}

async function main(): Promise<void> {
  console.log(`generating ${N} messages in ${dir} ...`);
  let t0 = process.hrtime.bigint();
  const gen = generate();
  console.log(`  ${gen.files} files, ${(gen.bytes / 1e6).toFixed(1)} MB in ${seconds(t0).toFixed(1)} s`);

  const find = referenceFind();
  const walk = await referenceWalk();

  (globalThis as { gc?: () => void }).gc?.();
  const rssBase = process.memoryUsage().rss;
  let rssPeak = rssBase;
  const lag = monitorEventLoopDelay({ resolution: 10 });
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
  const dataDir = path.join(work, 'data');
  const config = loadConfig({ env: {}, overrides: { dataDir, messageDirectory: dir, removeMessageTask: RULES, messageWatch: false } });

  t0 = process.hrtime.bigint();
  lag.enable();
  let service = await createService(config);
  await service.idle(3600_000);
  const cold = seconds(t0);
  lag.disable();
  const facets = await service.call('messages.facets', {});
  if (facets.total !== N) throw new Error(`indexed ${facets.total} messages, expected ${N}`);

  t0 = process.hrtime.bigint();
  const dry = await service.call('purge.run', { dryRun: true });
  const dryS = seconds(t0);
  t0 = process.hrtime.bigint();
  const dryTotals = await service.call('purge.run', { dryRun: true, limit: 0 });
  const dryTotalsS = seconds(t0);
  await service.close();

  // second start: the index is there, nothing changed on disk
  t0 = process.hrtime.bigint();
  service = await createService(config);
  await service.idle(3600_000);
  const warm = seconds(t0);
  await service.close();
  clearInterval(sampler);

  console.log(`reference: find -type f | wc -l    ${find.seconds.toFixed(2)} s (${find.files} files)`);
  console.log(`reference: node readdir+lstat walk  ${walk.seconds.toFixed(2)} s (${walk.files} files)`);
  console.log(`index from cold (start + rescan)    ${cold.toFixed(2)} s  ${(N / cold).toFixed(0)} messages/s  ${(cold / find.seconds).toFixed(1)}x find, ${(cold / walk.seconds).toFixed(1)}x walk  (target < 30 s: ${cold < 30 ? 'met' : 'MISSED'})`);
  console.log(`rescan on restart, nothing changed  ${warm.toFixed(2)} s  ${(warm / find.seconds).toFixed(1)}x find`);
  console.log(`dry-run purge, report listing all   ${dryS.toFixed(2)} s  ${dry.totals.messages} selected, ${dry.items.length} listed  (target < 5 s: ${dryS < 5 ? 'met' : 'MISSED'})`);
  console.log(`dry-run purge, totals only          ${dryTotalsS.toFixed(2)} s  ${dryTotals.totals.messages} selected`);
  console.log(`event-loop lag p99 while indexing     ${(lag.percentile(99) / 1e6).toFixed(0)} ms (max ${(lag.max / 1e6).toFixed(0)} ms)`);
  console.log(`RSS before the service ${(rssBase / 1e6).toFixed(0)} MB, peak ${(rssPeak / 1e6).toFixed(0)} MB`);
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(1);
});
