/**
 * Dissemination reports at scale: FONDS_BENCH_REPORT_ROWS (default 100,000) disseminations'
 * events written through the store, then the whole report exported to CSV and to PDF, each in a
 * process of its own (time and peak RSS growth), against the reference measured in the same run:
 * a bare `SELECT … ORDER BY seq` iterate over the same events (what a report's first pass must read).
 * `npm run bench -- reports`
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const N = Number(process.env.FONDS_BENCH_REPORT_ROWS ?? 100_000);
const root = path.resolve(import.meta.dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fonds-bench-reports-'));

function child(...args: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(root, 'tests/helpers/report-child.ts'), ...args], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

try {
  const t0 = Date.now();
  const gen = child('generate', work, String(N));
  console.log(`generated ${N} disseminations (${gen.events} events) through the store in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const ref = child('select', work);
  console.log(`reference  bare SELECT iterate: ${ref.rows} events in ${ref.seconds.toFixed(2)} s, RSS +${ref.rssGrowthMb.toFixed(0)} MB`);
  for (const format of ['csv', 'json', 'pdf']) {
    const m = child('export', work, format, path.join(work, `report.${format}`));
    console.log(
      `${format.padEnd(4)} ${m.rows} rows, ${(m.bytes / 1e6).toFixed(1)} MB${m.pages ? `, ${m.pages} pages` : ''}: ${m.seconds.toFixed(2)} s ` +
        `(${(m.seconds / ref.seconds).toFixed(1)}× the bare SELECT), ${Math.round(m.rows / m.seconds)} rows/s, peak RSS ${m.peakRssMb.toFixed(0)} MB (+${m.rssGrowthMb.toFixed(0)} MB)`,
    );
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
