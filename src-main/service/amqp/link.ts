/**
 * The link to the broker: one AMQP connection, opened again with exponential backoff whenever it
 * is lost (broker restart, network cut, connection closed by an operator), a confirm channel for
 * publishing, and the setups (topology, consumers) run on every new connection before the link
 * counts as connected. Never throws at its callers for a broker problem: it says so in its state.
 */
import { EventEmitter } from 'node:events';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import type { AmqpState } from '../../../src-shared/domain/product';
import { FondsError } from '../../../src-shared/errors';

export interface LinkOptions {
  /** amqp://user:pass@host:port (the virtual host comes from `vhost`) */
  url: string;
  vhost: string;
  heartbeatSeconds: number;
  /** backoff ceiling between two connection attempts */
  reconnectMaxMs: number;
  /** shown by `rabbitmqctl list_connections user_provided_name` */
  connectionName: string;
  /** the app_id property of every message published, so Fonds can recognise its own */
  appId: string;
  /** how long a publish may wait for its confirm */
  confirmTimeoutMs?: number;
}

/** One live connection, handed to the setups. */
export interface Session {
  readonly connection: ChannelModel;
  /** aborted when this connection ends */
  readonly signal: AbortSignal;
  /** a channel whose errors end up in the link's lastError instead of being thrown */
  channel(): Promise<Channel>;
  /** ends this connection (the link opens a new one after the backoff) */
  drop(reason: string): void;
}

export type Setup = (session: Session) => Promise<void>;

const INITIAL_DELAY_MS = 250;

/** A publish awaiting its confirm. */
class ConfirmWait {
  constructor(
    readonly deadline: number,
    readonly done: (error?: Error) => void,
  ) {}
}

/** The broker URL without its password, for display. */
export function redactUrl(url: string): string {
  if (!url) return '';
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(not a URL)';
  }
}

function describe(err: unknown, vhost?: string): string {
  const e = err as Error & { code?: string | number };
  const msg = e?.message ?? String(err);
  if (e?.code === 'ECONNREFUSED') return `connection refused (${msg.replace(/^connect ECONNREFUSED /, '')}): is RabbitMQ running?`;
  if (/ACCESS_REFUSED|403/.test(msg)) return `access refused: ${msg}`;
  if (/NOT_ALLOWED|vhost/i.test(msg)) return `${msg} (does the virtual host exist, and may this user use it?)`;
  // what amqplib says when the broker closes the connection while opening it: no such virtual host, or no right to it
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(msg)) return `the broker refused to open virtual host '${vhost ?? '?'}': does it exist, and may this user use it (rabbitmqctl add_vhost, set_permissions)?`;
  return msg;
}

export class BrokerLink extends EventEmitter {
  private _state: AmqpState;
  private _since = new Date().toISOString();
  private _lastError: string | undefined;
  private _nextAttemptAt: string | undefined;
  private _connections = 0;
  private readonly setups: Setup[] = [];
  private stopped = true;
  private loop: Promise<void> | undefined;
  private current:
    | {
        connection: ChannelModel;
        publisher: ConfirmChannel | undefined;
        controller: AbortController;
        /** checks of exchanges Fonds did not declare, by name (a failed one is forgotten) */
        exchanges: Map<string, Promise<void>>;
        /** exchanges known to exist on this connection */
        known: Set<string>;
        /** messages published on this connection */
        published: number;
        /** publishes awaiting their confirm, in publishing order */
        awaiting: Map<number, ConfirmWait>;
      }
    | undefined;
  private wakeUp: (() => void) | undefined;

  constructor(private readonly options: LinkOptions) {
    super();
    this._state = options.url ? 'disconnected' : 'not-configured';
  }

  get state(): AmqpState {
    return this._state;
  }
  get since(): string {
    return this._since;
  }
  get lastError(): string | undefined {
    return this._lastError;
  }
  get nextAttemptAt(): string | undefined {
    return this._nextAttemptAt;
  }
  get connections(): number {
    return this._connections;
  }
  get configured(): boolean {
    return !!this.options.url;
  }

  /** Runs on every new connection, in registration order, before the link counts as connected. */
  onSession(setup: Setup): void {
    this.setups.push(setup);
  }

  start(): void {
    if (!this.options.url || !this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    const c = this.current;
    if (c) {
      c.controller.abort();
      await c.connection.close().catch(() => undefined);
    }
    await this.loop;
    if (this.options.url) this.setState('disconnected');
  }

  /**
   * Publishes on the confirm channel; `done` is called once, with no error when the broker
   * confirmed the message, with one when it could not be sent or was not confirmed: not connected,
   * no such exchange, a nack, no confirm within the timeout. A callback, not a promise: the outbox
   * publishes thousands a second, and each promise and closure counts.
   */
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish, done: (error?: Error) => void): void {
    const c = this.current;
    if (!c || !c.publisher || this._state !== 'connected') {
      done(new FondsError('UNAVAILABLE', this.options.url ? `The broker is not connected (${this._lastError ?? this._state}).` : 'No broker is configured (amqpUrl).'));
      return;
    }
    // an exchange known to exist is published to at once (no wait for a settled check)
    if (c.known.has(exchange)) this.publishOn(c, exchange, routingKey, content, options, done);
    else this.ensureExchange(c, exchange).then(() => this.publishOn(c, exchange, routingKey, content, options, done), done);
  }

  /** The app_id every message carries (a publish whose options already say so is not copied). */
  get appId(): string {
    return this.options.appId;
  }

  private publishOn(c: NonNullable<BrokerLink['current']>, exchange: string, routingKey: string, content: Buffer, options: Options.Publish, done: (error?: Error) => void): void {
    const publisher = c.publisher;
    if (!publisher) {
      done(new FondsError('UNAVAILABLE', 'The publishing channel was closed; it is being opened again.'));
      return;
    }
    const id = ++c.published;
    const wait = new ConfirmWait(Date.now() + this.confirmTimeoutMs, done);
    c.awaiting.set(id, wait);
    try {
      publisher.publish(exchange, routingKey, content, options.appId === this.options.appId ? options : { ...options, appId: this.options.appId }, (err: unknown) => {
        if (!c.awaiting.delete(id)) return; // timed out already
        done(err ? new Error(`the broker refused the message (${err instanceof Error ? err.message : 'nack'})`) : undefined);
      });
    } catch (err) {
      c.awaiting.delete(id);
      done(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private get confirmTimeoutMs(): number {
    return this.options.confirmTimeoutMs ?? 30_000;
  }

  /**
   * Publishes waiting too long for their confirm fail. One timer per connection, not one per
   * message (the relay has a thousand in flight): the waits are kept in publishing order, so the
   * sweep stops at the first one still in time.
   */
  private sweepConfirms(c: NonNullable<BrokerLink['current']>): void {
    const now = Date.now();
    for (const [id, wait] of c.awaiting) {
      if (wait.deadline > now) break;
      c.awaiting.delete(id);
      wait.done(new Error(`no publisher confirm from the broker within ${this.confirmTimeoutMs} ms`));
    }
  }

  /** Declares exchanges Fonds owns, so that publishing to them needs no check. */
  knownExchange(session: Session, exchange: string): void {
    if (this.current?.connection !== session.connection) return;
    this.current.exchanges.set(exchange, Promise.resolve());
    this.current.known.add(exchange);
  }

  private setState(state: AmqpState): void {
    if (this._state === state) return;
    this._state = state;
    this._since = new Date().toISOString();
    this.emit('state', state);
  }

  private fail(message: string): void {
    this._lastError = message;
    this.emit('problem', message);
  }

  /**
   * Publishing to an exchange that does not exist makes the broker close the channel, failing every
   * message in flight with it: check such an exchange first, on a channel of its own.
   */
  private ensureExchange(c: NonNullable<BrokerLink['current']>, exchange: string): Promise<void> {
    if (exchange === '') return Promise.resolve();
    let check = c.exchanges.get(exchange);
    if (!check) {
      check = (async () => {
        const ch = await c.connection.createChannel();
        ch.on('error', () => undefined);
        try {
          await ch.checkExchange(exchange);
        } catch {
          throw new FondsError('NOT_FOUND', `Exchange '${exchange}' does not exist in virtual host '${this.options.vhost}'.`);
        } finally {
          await ch.close().catch(() => undefined);
        }
      })();
      c.exchanges.set(exchange, check);
      check.then(
        () => c.known.add(exchange),
        () => c.exchanges.delete(exchange),
      );
    }
    return check;
  }

  private connectOptions(): Options.Connect {
    const u = new URL(this.options.url);
    if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') throw new FondsError('CONFIG_INVALID', `amqpUrl: '${redactUrl(this.options.url)}' is not an amqp:// or amqps:// URL.`, { key: 'amqpUrl' });
    return {
      protocol: u.protocol.slice(0, -1),
      hostname: u.hostname,
      port: u.port ? Number(u.port) : u.protocol === 'amqps:' ? 5671 : 5672,
      username: u.username ? decodeURIComponent(u.username) : 'guest',
      password: u.password ? decodeURIComponent(u.password) : 'guest',
      vhost: this.options.vhost,
      heartbeat: this.options.heartbeatSeconds,
    };
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      this._nextAttemptAt = undefined;
      this.setState('connecting');
      const controller = new AbortController();
      let connection: ChannelModel | undefined;
      let ended: Promise<void> | undefined;
      try {
        connection = await connect(this.connectOptions(), { clientProperties: { connection_name: this.options.connectionName }, timeout: 10_000 });
        const conn = connection;
        ended = new Promise<void>((resolve) => {
          conn.on('close', (err?: Error) => {
            if (err) this.fail(`connection closed: ${describe(err)}`);
            controller.abort();
            resolve();
          });
        });
        conn.on('error', (err: Error) => this.fail(describe(err)));
        conn.on('blocked', (reason: string) => this.fail(`the broker blocks publishing: ${reason}`));
        conn.on('unblocked', () => {
          this._lastError = undefined;
        });
        const current: NonNullable<BrokerLink['current']> = { connection: conn, publisher: undefined, controller, exchanges: new Map(), known: new Set(['']), published: 0, awaiting: new Map() };
        this.current = current;
        const sweep = setInterval(() => this.sweepConfirms(current), Math.min(1000, this.confirmTimeoutMs));
        sweep.unref();
        controller.signal.addEventListener('abort', () => {
          clearInterval(sweep);
          // amqplib fails them when their channel closes; should one be left, it fails here
          for (const wait of current.awaiting.values()) wait.done(new Error('the broker connection was lost before the confirm'));
          current.awaiting.clear();
        });
        current.publisher = await this.openPublisher(current);
        const session: Session = {
          connection: conn,
          signal: controller.signal,
          channel: async () => {
            const ch = await conn.createChannel();
            ch.on('error', (err: Error) => this.fail(`channel closed: ${describe(err)}`));
            return ch;
          },
          drop: (reason) => {
            this.fail(reason);
            conn.close().catch(() => undefined);
          },
        };
        for (const setup of this.setups) {
          if (controller.signal.aborted) throw new Error(this._lastError ?? 'connection lost during setup');
          await setup(session);
        }
        if (controller.signal.aborted) throw new Error(this._lastError ?? 'connection lost during setup');
        this._connections++;
        attempt = 0;
        this._lastError = undefined;
        this.setState('connected');
        await ended;
      } catch (err) {
        this.fail(describe(err, this.options.vhost));
        controller.abort();
        await connection?.close().catch(() => undefined);
      }
      this.current = undefined;
      if (this.stopped) break;
      this.setState('disconnected');
      const delay = Math.min(INITIAL_DELAY_MS * 2 ** Math.min(attempt, 16), this.options.reconnectMaxMs) * (0.8 + Math.random() * 0.4);
      attempt++;
      this._nextAttemptAt = new Date(Date.now() + delay).toISOString();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  /** The confirm channel; opened again if the broker closes it while the connection lives. */
  private async openPublisher(current: NonNullable<BrokerLink['current']>): Promise<ConfirmChannel> {
    const ch = await current.connection.createConfirmChannel();
    ch.on('error', (err: Error) => this.fail(`publishing channel closed: ${describe(err)}`));
    ch.on('close', () => {
      if (current.publisher === ch) current.publisher = undefined;
      if (current.controller.signal.aborted || this.stopped) return;
      void this.openPublisher(current)
        .then((next) => {
          current.publisher = next;
        })
        .catch((err) => {
          this.fail(`cannot reopen the publishing channel: ${describe(err)}`);
          current.connection.close().catch(() => undefined);
        });
    });
    return ch;
  }
}
