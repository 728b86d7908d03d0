/**
 * Runs (or resumes) an execution in a process of its own, for crash tests; meant to be killed with
 * SIGKILL at any moment. Usage: execute-child.ts DATA_DIR EXECUTION_ID
 */
import { createService } from '../../src-main/service';
import { loadConfig } from '../../src-main/service/config';

const [dataDir, executionId] = process.argv.slice(2);
const service = await createService(loadConfig({ env: {}, overrides: { dataDir, hashWorkers: 1, jobConcurrency: 1 } }));
const e = await service.call('executions.get', { id: executionId });
if (e.status === 'CREATED') await service.call('executions.launch', { id: executionId });
process.stdout.write('started\n');
await service.idle(600_000);
process.stdout.write(`done ${(await service.call('executions.get', { id: executionId })).status}\n`);
await service.close();
