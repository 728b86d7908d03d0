/**
 * The National Library of Norway's dissemination contract (seed 004), both sides: Fonds serves it
 * on the headless server (`/v1/disseminations`, see serve.ts and src-main/transport/nb.ts) and
 * orders from such a service (order.ts). See README.md.
 */
import type { Capability, Deps } from '../../capability';
import { createOrders } from './order';
import { NbSecrets } from './secrets';
import { createServe, type NbNeeds } from './serve';

export { nbMigrations } from './migrations';
export { NB_CLIENT_PREFIX, clientForToken, defaultClient, type NbClient } from './clients';
export { signWebhook, nbDate, newDisseminationId } from './serve';
export type { NbNeeds } from './serve';

export function createNb(deps: Deps, needs: NbNeeds): Capability {
  const secrets = new NbSecrets(deps.config.dataDir);
  const serve = createServe(deps, needs, secrets);
  const orders = createOrders(deps, secrets);
  return {
    handlers: { ...serve.handlers, ...orders.handlers },
    jobs: { ...serve.jobs, ...orders.jobs },
    stop: () => serve.stop(),
  };
}
