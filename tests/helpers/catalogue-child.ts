/**
 * A Fonds catalogue in a process of its own, for tests that kill it mid-stream. Usage:
 * catalogue-child.ts CONFIG_JSON [DIE_AT_REQUEST_ID], CONFIG_JSON holding the settings (dataDir,
 * amqpUrl, amqpVhost, amqpQueuePrefix...). Prints `connected` once the broker link is up; closes on
 * SIGTERM. With DIE_AT_REQUEST_ID, it kills itself (SIGKILL) as soon as the window holding that
 * request is committed: its answers are handed to the outbox relay, not yet confirmed, and the
 * window is not acknowledged — the worst moment for a crash.
 */
import { createService } from '../../src-main/service';
import { loadConfig } from '../../src-main/service/config';

const [config, dieAt] = process.argv.slice(2);
const service = await createService(loadConfig({ env: {}, overrides: { hashWorkers: 1, messageWatch: false, ...JSON.parse(config) } }));
if (dieAt) {
  service.subscribe((p) => {
    if (p.channel === 'event' && p.event.kind === 'patch_request' && p.event.payload.requestId === dieAt) process.kill(process.pid, 'SIGKILL');
  });
}
for (;;) {
  if ((await service.call('amqp.status', {})).state === 'connected') break;
  await new Promise((r) => setTimeout(r, 20));
}
process.stdout.write('connected\n');
process.once('SIGTERM', () => {
  void service.close().then(() => process.exit(0));
});
