/**
 * The patch requests of the REGARDS benchmarks (amqp.bench.ts over the broker, catalogue.bench.ts
 * without it): one shape, so that both measure the same work a request.
 */
import { REGARDS } from '../../src-shared/domain/product';

export const BENCH_TENANT = 'project1';
const BENCH_OWNER = 'bench';

/** A request writing `properties.bench[key] = requestId` (and a fixed characterization) into `urn`. */
export function patchRequest(urn: string, key: string, requestId: string, date: string): { headers: Record<string, string>; body: Buffer } {
  const body = JSON.stringify({
    metadata: { storages: [], priority: 'NORMAL' },
    feature: { urn, properties: { file_characterization: { invalidation_date: date, valid: false }, bench: { [key]: requestId } } },
  });
  return {
    headers: { [REGARDS.headers.tenant]: BENCH_TENANT, [REGARDS.headers.requestId]: requestId, [REGARDS.headers.requestOwner]: BENCH_OWNER },
    body: Buffer.from(body, 'utf8'),
  };
}
