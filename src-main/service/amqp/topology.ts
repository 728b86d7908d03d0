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

export interface TopologyOptions {
  /** declare the patch-request queue (Fonds serves as a catalogue) */
  catalogue: boolean;
  /** its x-max-priority */
  maxPriority: number;
}

/**
 * Declares the exchanges, queues and bindings; the queues are durable and dead-letter what is
 * refused. Returns what people should know: a patch-request queue declared earlier with other
 * arguments (an x-max-priority of an older Fonds, say) cannot be changed in place by the broker;
 * it is then used as it is, and the note says how to have it declared anew.
 */
export async function assertTopology(link: BrokerLink, session: Session, names: QueueNames, options: TopologyOptions): Promise<string[]> {
  const notes: string[] = [];
  let ch = await session.channel();
  try {
    await ch.assertExchange(REGARDS.updateRequestExchange, 'fanout', { durable: true });
    await ch.assertExchange(REGARDS.requestEventExchange, 'fanout', { durable: true });
    await ch.assertExchange(names.deadLetterExchange, 'fanout', { durable: true });
    await ch.assertQueue(names.deadLetter, { durable: true });
    await ch.bindQueue(names.deadLetter, names.deadLetterExchange, '');
    if (options.catalogue) {
      // priorities: a publisher may set the standard `priority` property (seed 001)
      try {
        await ch.assertQueue(names.requests, { durable: true, deadLetterExchange: names.deadLetterExchange, maxPriority: options.maxPriority });
      } catch (err) {
        if (!/PRECONDITION_FAILED|inequivalent arg/.test((err as Error).message)) throw err;
        // the broker closed the channel; the queue exists with other arguments: take it as it is
        ch = await session.channel();
        await ch.checkQueue(names.requests);
        notes.push(
          `queue ${names.requests} was declared earlier with other arguments (${(err as Error).message.replace(/^.*inequivalent arg /, 'inequivalent arg ').slice(0, 200)}); it is used as it is. To have it declared with x-max-priority ${options.maxPriority}, stop Fonds, let it empty, delete it (rabbitmqctl delete_queue ${names.requests}) and start Fonds again.`,
        );
      }
      await ch.bindQueue(names.requests, REGARDS.updateRequestExchange, '');
    }
    // bound to FeatureRequestEvent only while Fonds awaits answers (products/answers.ts)
    await ch.assertQueue(names.responses, { durable: true, deadLetterExchange: names.deadLetterExchange });
  } finally {
    await ch.close().catch(() => undefined);
  }
  for (const e of [REGARDS.updateRequestExchange, REGARDS.requestEventExchange, names.deadLetterExchange]) link.knownExchange(session, e);
  return notes;
}
