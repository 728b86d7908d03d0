/**
 * Runs (or resumes) an execution in a process of its own, for crash tests (killed with SIGKILL at
 * any moment) and for runs as another user. Usage: execute-child.ts DATA_DIR EXECUTION_ID [CONFIG_JSON]
 * where CONFIG_JSON holds setting overrides (storage, storageDir, s3...). Prints `started`, then
 * `verified N` as files are proven, then `done STATUS`.
 */
import { createService } from '../../src-main/service';
import { loadConfig } from '../../src-main/service/config';

const [dataDir, executionId, overrides] = process.argv.slice(2);
const service = await createService(
  loadConfig({ env: {}, overrides: { hashWorkers: 1, jobConcurrency: 1, messageWatch: false, ...(overrides ? JSON.parse(overrides) : {}), dataDir } }),
);
service.subscribe((p) => {
  if (p.channel === 'progress' && p.progress.objectId === executionId) process.stdout.write(`verified ${p.progress.progress.files}\n`);
});
const e = await service.call('executions.get', { id: executionId });
if (e.status === 'CREATED') await service.call('executions.launch', { id: executionId });
process.stdout.write('started\n');
await service.idle(600_000);
process.stdout.write(`done ${(await service.call('executions.get', { id: executionId })).status}\n`);
await service.close();
