/**
 * The answers queue (`<prefix>.feature-request-events`) is bound to the FeatureRequestEvent fanout
 * only while one of Fonds' own patch requests may still be answered: queued to go out, SENT or
 * GRANTED. Every catalogue on the virtual host answers on that one exchange, Fonds too (two answers
 * per request it receives): left bound, the queue would take, store on disk and hand back every
 * answer to everyone, which was most of the broker's work when Fonds serves as a catalogue.
 *
 * Correctness rests on three rules:
 * - a patch request is published only after the binding is in place (the outbox transport awaits
 *   `beforeSend`), so no answer to it can be missed;
 * - the binding is dropped only when nothing may be answered any more (checked again when the
 *   unbind runs, and `bound` turns false before it is sent, so that a send meanwhile binds again);
 * - on every connection, the binding is set to what the table says (it is durable on the broker,
 *   and may have been left either way by a stop).
 * The price: an answer arriving after its request reached a final state (a duplicate from the
 * remote side) is not heard; it would only have been recorded as `late`.
 */
import type { OutboxItem } from '../../../src-shared/api';
import { REGARDS } from '../../../src-shared/domain/product';
import type { Amqp } from '../amqp';
import type { Session } from '../amqp/link';
import type { DB } from '../db/database';

/** Is this outbox message one of Fonds' patch requests (one that will be answered)? */
export const isSentPatch = (item: Pick<OutboxItem, 'objectKind' | 'objectId'>): boolean => item.objectKind === 'patch_request' && !!item.objectId?.startsWith('sent:');

export interface AnswerBinding {
  /** on every connection, before the link counts as connected */
  setup(session: Session): Promise<void>;
  /** before the outbox publishes a message: binds first when it is a patch request */
  beforeSend(item: OutboxItem): Promise<void> | undefined;
  /** after answers were committed: unbinds when nothing is awaited any more */
  settled(): void;
  /** bound on the broker, as far as this connection knows (for status and tests) */
  isBound(): boolean;
}

export function createAnswerBinding(db: DB, amqp: Amqp): AnswerBinding {
  // requests that may still be answered: waiting to go out (not cancelled nor given up), SENT, GRANTED
  // (both through the partial index on the state of sent requests)
  const awaitedStmt = db.prepare(
    `SELECT EXISTS (SELECT 1 FROM patch_requests WHERE direction = 'sent' AND state IN ('SENT', 'GRANTED'))
         OR EXISTS (SELECT 1 FROM patch_requests p JOIN outbox o ON o.id = p.outbox_id
                     WHERE p.direction = 'sent' AND p.state = 'QUEUED' AND o.status IN ('pending', 'sending'))`,
  );
  const awaited = () => (awaitedStmt.pluck().get() as number) === 1;
  let session: Session | undefined;
  let bound = false;
  /** binds and unbinds run one after the other */
  let chain: Promise<void> = Promise.resolve();

  const change = async (s: Session, bind: boolean) => {
    const ch = await s.channel();
    try {
      if (bind) await ch.bindQueue(amqp.names.responses, REGARDS.requestEventExchange, '');
      else await ch.unbindQueue(amqp.names.responses, REGARDS.requestEventExchange, '');
    } finally {
      await ch.close().catch(() => undefined);
    }
  };

  const queue = (task: () => Promise<void>): Promise<void> => {
    const run = chain.then(task);
    chain = run.catch(() => undefined);
    return run;
  };

  const bind = (): Promise<void> =>
    queue(async () => {
      const s = session;
      if (bound || !s || s.signal.aborted) return;
      await change(s, true);
      if (session === s) bound = true;
    });

  return {
    async setup(s) {
      session = s;
      bound = false;
      // the broker keeps a binding across connections: make it what the table says
      const want = awaited();
      await queue(() => change(s, want));
      if (session === s) bound = want;
    },
    beforeSend(item) {
      if (!isSentPatch(item) || bound) return undefined;
      return bind().then(() => {
        if (!bound) throw new Error(`the answers queue ${amqp.names.responses} could not be bound (the broker connection changed); the request waits`);
      });
    },
    settled() {
      if (!bound || awaited()) return;
      void queue(async () => {
        const s = session;
        if (!bound || !s || s.signal.aborted || awaited()) return;
        bound = false; // a send from now on binds again, after this
        await change(s, false);
      }).catch(() => undefined); // a failed unbind leaves it bound: harmless
    },
    isBound: () => bound,
  };
}
