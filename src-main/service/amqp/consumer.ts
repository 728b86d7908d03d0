/**
 * Consuming in windows: deliveries are gathered (up to half the prefetch or 16 MiB of bodies, or
 * what came within a few milliseconds) and handed to the handler together, so that one SQLite
 * transaction commits the outcome of a whole window; each message is acknowledged only after that
 * commit. A window that fails is retried message by message, so one bad message cannot hold back
 * the others; a message that fails again after a redelivery is dead-lettered: never a redelivery
 * loop.
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Session } from './link';

/** What to do with a message once its window is committed. */
export type Verdict = 'ack' | { deadLetter: string };

export interface WindowOptions {
  queue: string;
  prefetch: number;
  /** commits the outcome of every message of the window (synchronously or not), in one go */
  handle(window: ConsumeMessage[]): Verdict[] | Promise<Verdict[]>;
  /** called with a message that failed twice, before it is dead-lettered (record it for people) */
  onPoison?(message: ConsumeMessage, error: Error): void;
  /** how long to wait for more deliveries before handling a partial window */
  windowMs?: number;
  /** a window is handled once its bodies reach this many bytes, however few they are (default 16 MiB) */
  windowBytes?: number;
  /** delay before a failed message goes back to the queue */
  requeueDelayMs?: number;
}

export interface WindowConsumer {
  channel: Channel;
  consumerTag: string;
  /** resolves when the window in hand is settled */
  drained(): Promise<void>;
}

export async function consumeInWindows(session: Session, options: WindowOptions): Promise<WindowConsumer> {
  const channel = await session.channel();
  await channel.prefetch(options.prefetch);
  const threshold = Math.max(1, Math.floor(options.prefetch / 2));
  const windowBytes = options.windowBytes ?? 16 * 1024 * 1024;
  const windowMs = options.windowMs ?? 5;
  const requeueDelayMs = options.requeueDelayMs ?? 1000;
  let buffer: ConsumeMessage[] = [];
  let bufferBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  /** messages of settled windows still waiting for a delayed requeue (a multiple ack would take them) */
  let requeueing = 0;

  // acks on a channel that has closed throw; those messages come back on the next connection
  const settle = (fn: () => void) => {
    try {
      fn();
    } catch {
      /* channel closed: the broker redelivers */
    }
  };

  const apply = (msg: ConsumeMessage, verdict: Verdict) => {
    if (verdict === 'ack') settle(() => channel.ack(msg));
    else settle(() => channel.nack(msg, false, false)); // the queue's dead-letter exchange takes it
  };

  const run = async (window: ConsumeMessage[]) => {
    if (session.signal.aborted) return;
    try {
      const verdicts = await options.handle(window);
      // windows are settled in delivery order: one ack then covers the whole window, unless a
      // message in it is refused or an earlier one waits to be requeued
      const last = window[window.length - 1];
      if (!requeueing && window.length > 1 && verdicts.length === window.length && verdicts.every((v) => v === 'ack')) settle(() => channel.ack(last, true));
      else window.forEach((m, i) => apply(m, verdicts[i] ?? 'ack'));
      return;
    } catch {
      /* retried one by one below */
    }
    for (const msg of window) {
      if (session.signal.aborted) return;
      try {
        const [verdict] = await options.handle([msg]);
        apply(msg, verdict ?? 'ack');
      } catch (err) {
        if (msg.fields.redelivered) {
          try {
            options.onPoison?.(msg, err as Error);
          } catch {
            /* recording failed too: the dead-letter queue still keeps the message */
          }
          settle(() => channel.nack(msg, false, false));
        } else {
          requeueing++;
          setTimeout(() => {
            requeueing--;
            settle(() => channel.nack(msg, false, true));
          }, requeueDelayMs).unref();
        }
      }
    }
  };

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!buffer.length) return;
    const window = buffer;
    buffer = [];
    bufferBytes = 0;
    chain = chain.then(() => run(window));
  };

  session.signal.addEventListener('abort', () => {
    if (timer) clearTimeout(timer);
    buffer = [];
    bufferBytes = 0;
  });

  const { consumerTag } = await channel.consume(
    options.queue,
    (msg) => {
      if (!msg) {
        session.drop(`the broker cancelled the consumer of ${options.queue} (queue deleted?)`);
        return;
      }
      buffer.push(msg);
      bufferBytes += msg.content.length;
      if (buffer.length >= threshold || bufferBytes >= windowBytes) flush();
      // the timer phase runs before socket reads: after a long window the deliveries that arrived
      // meanwhile are read first (setImmediate), so that the next window is not cut short
      else if (!timer) {
        const t = setTimeout(() => setImmediate(() => timer === t && flush()), windowMs);
        timer = t;
      }
    },
    { noAck: false },
  );
  return {
    channel,
    consumerTag,
    drained: async () => {
      flush();
      await chain;
    },
  };
}
