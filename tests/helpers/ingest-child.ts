/**
 * Runs an ingest in a process of its own, for crash tests: prints `hashed <n>` as files are done,
 * and is meant to be killed with SIGKILL mid-way. Usage: ingest-child.ts DATA_DIR PATH
 */
import { createService } from '../../src-main/service';
import { loadConfig } from '../../src-main/service/config';

const [dataDir, target] = process.argv.slice(2);
const service = await createService(loadConfig({ env: {}, overrides: { dataDir, hashWorkers: 1, jobConcurrency: 1 } }));
service.subscribe((p) => {
  if (p.channel === 'progress') process.stdout.write(`hashed ${p.progress.progress.files}\n`);
});
const upload = await service.call('uploads.ingestPaths', { paths: [target] });
process.stdout.write(`upload ${upload._id}\n`);
await service.idle(600_000);
process.stdout.write('done\n');
await service.close();
