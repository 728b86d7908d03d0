/**
 * What Fonds declares on the broker, on every connection (idempotent; REGARDS declares its
 * exchanges the same way: fanout, durable).
 *
 *   FeatureUpdateRequestEvent (fanout) ──> <prefix>.feature-update-requests   (when Fonds is a catalogue)
 *   FeatureRequestEvent       (fanout) ╌╌> <prefix>.feature-request-events    (answers to Fonds' requests; bound
 *                                                                             while some are awaited: products/answers.ts)
 *   <prefix>.dead-letter      (fanout) ──> <prefix>.dead-letter               (unreadable messages)
 */
import { REGARDS } from '../../../src-shared/domain/product';
import type { BrokerLink, Session } from './link';

export interface QueueNames {
  /** patch requests addressed to Fonds as a catalogue */
  requests: string;
  /** answers to the patch requests Fonds sent */
  responses: string;
  deadLetterExchange: string;
  deadLetter: string;
}

export function queueNames(prefix: string): QueueNames {
  return {
    requests: `${prefix}.feature-update-requests`,
    responses: `${prefix}.feature-request-events`,
    deadLetterExchange: `${prefix}.dead-letter`,
    deadLetter: `${prefix}.dead-letter`,
  };
}

/** Declares the exchanges, queues and bindings; the queues are durable and dead-letter what is refused. */
export async function assertTopology(link: BrokerLink, session: Session, names: QueueNames, catalogue: boolean): Promise<void> {
  const ch = await session.channel();
  try {
    await ch.assertExchange(REGARDS.updateRequestExchange, 'fanout', { durable: true });
    await ch.assertExchange(REGARDS.requestEventExchange, 'fanout', { durable: true });
    await ch.assertExchange(names.deadLetterExchange, 'fanout', { durable: true });
    await ch.assertQueue(names.deadLetter, { durable: true });
    await ch.bindQueue(names.deadLetter, names.deadLetterExchange, '');
    if (catalogue) {
      // priorities: a publisher may set the standard `priority` property (seed 001)
      await ch.assertQueue(names.requests, { durable: true, deadLetterExchange: names.deadLetterExchange, maxPriority: 10 });
      await ch.bindQueue(names.requests, REGARDS.updateRequestExchange, '');
    }
    // bound to FeatureRequestEvent only while Fonds awaits answers (products/answers.ts)
    await ch.assertQueue(names.responses, { durable: true, deadLetterExchange: names.deadLetterExchange });
  } finally {
    await ch.close().catch(() => undefined);
  }
  for (const e of [REGARDS.updateRequestExchange, REGARDS.requestEventExchange, names.deadLetterExchange]) link.knownExchange(session, e);
}
