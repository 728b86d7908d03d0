/**
 * Child process of the 100,000-row report test and bench, so that memory is measured in a
 * process of its own:
 *   generate DATA_DIR N          write N disseminations' events through the store
 *   export DATA_DIR FORMAT FILE  export the whole report; print rows, bytes, time, RSS and heap growth
 *   select DATA_DIR              the reference: a bare SELECT iterate over the same events
 * Prints one JSON line.
 */
import path from 'node:path';
import { migrate, openDatabase } from '../../src-main/service/db/database';
import { coreMigrations } from '../../src-main/service/db/migrations';
import { Store } from '../../src-main/service/db/store';
import { exportReport } from '../../src-main/service/reports';
import type { ReportFormat } from '../../src-shared/domain/report';
import { writeManyDisseminations } from './report-fixture';

async function main(): Promise<void> {
  const [cmd, dataDir, ...rest] = process.argv.slice(2);
  const db = openDatabase(path.join(dataDir, 'fonds.sqlite'));
  migrate(db, coreMigrations);
  if (cmd === 'generate') {
    const n = Number(rest[0]);
    writeManyDisseminations(new Store(db), n, { days: 90 });
    const events = db.prepare('SELECT count(*) FROM events').pluck().get();
    db.close();
    console.log(JSON.stringify({ disseminations: n, events }));
    return;
  }
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage();
  let peak = before.rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  const t0 = process.hrtime.bigint();
  let result: Record<string, unknown>;
  if (cmd === 'export') {
    const r = await exportReport(db, { filters: { recipients: [], urns: [], statuses: [] }, format: rest[0] as ReportFormat, bom: false, lang: 'en', path: rest[1], overwrite: true });
    result = { rows: r.rows, bytes: r.bytes, pages: r.pages };
  } else {
    // the reference: read every dissemination event once, as a report's first pass must
    let rows = 0;
    let bytes = 0;
    for (const e of db.prepare(`SELECT seq, object_id, type, time, payload FROM events WHERE kind = 'dissemination' ORDER BY seq`).iterate() as Iterable<{ payload: string }>) {
      rows++;
      bytes += e.payload.length;
    }
    result = { rows, bytes };
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(sampler);
  const after = process.memoryUsage();
  // maxRSS is the kernel's own peak for the process (kB), caught even between two samples
  peak = Math.max(peak, after.rss, process.resourceUsage().maxRSS * 1024);
  db.close();
  console.log(JSON.stringify({ ...result, seconds, rssGrowthMb: (peak - before.rss) / 1e6, peakRssMb: peak / 1e6, heapGrowthMb: (after.heapUsed - before.heapUsed) / 1e6 }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
