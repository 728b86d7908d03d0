/**
 * REGARDS test helpers: the two patch examples read verbatim from seed 001, a fresh RabbitMQ
 * virtual host per test file (rabbitmqctl), and a raw amqplib client that plays the remote side
 * (publishing requests, reading answers) without any of Fonds' code.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { REGARDS } from '../../src-shared/domain/product';
import { requireOrSkip, sharedDir } from './util';

const run = promisify(execFile);

export const BROKER = { host: '127.0.0.1', port: 5672, user: 'guest', password: 'guest' };
export const amqpUrlOf = () => `amqp://${BROKER.user}:${BROKER.password}@${BROKER.host}:${BROKER.port}`;

export interface SeedExample {
  headers: Record<string, string>;
  /** the body exactly as the seed prints it */
  body: string;
}

/** The seed's two examples ("only metadata update", "associated files update"), verbatim. */
export function seedExamples(): SeedExample[] {
  const file = fs.readdirSync(path.join(sharedDir, 'seeds')).find((f) => f.startsWith('001_'))!;
  const text = fs.readFileSync(path.join(sharedDir, 'seeds', file), 'utf8');
  return text
    .split('# Headers\n')
    .slice(1)
    .map((block) => {
      const lines = block.split('\n');
      const headers: Record<string, string> = {};
      let i = 0;
      for (; !lines[i].startsWith('{'); i++) {
        const eq = lines[i].indexOf('=');
        if (eq > 0) headers[lines[i].slice(0, eq)] = lines[i].slice(eq + 1);
      }
      let depth = 0;
      const body: string[] = [];
      for (; i < lines.length; i++) {
        body.push(lines[i]);
        for (const c of lines[i]) depth += c === '{' ? 1 : c === '}' ? -1 : 0;
        if (depth === 0) break;
      }
      return { headers, body: body.join('\n') };
    });
}

/** The URN both seed examples patch. */
export const SEED_URN = 'URN:FEATURE:DATA:tenant:87fdda0e-27d1-494f-a1c0-c57f2f0810f7:V1';

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 });
  return stdout;
}

/** True when RabbitMQ answers on 127.0.0.1:5672 and rabbitmqctl works (fails in CI, skips loudly otherwise). */
export async function brokerAvailable(): Promise<boolean> {
  let ok = false;
  try {
    const c = await connect({ hostname: BROKER.host, port: BROKER.port, username: BROKER.user, password: BROKER.password, vhost: '/' }, { timeout: 3000 });
    await c.close();
    await rabbitmqctl('-q', 'list_vhosts');
    ok = true;
  } catch {
    ok = false;
  }
  return requireOrSkip(ok, 'RabbitMQ on 127.0.0.1:5672 (guest/guest) with rabbitmqctl');
}

/** Creates a virtual host (idempotent) and lets guest use it. */
export async function ensureVhost(vhost: string): Promise<void> {
  const existing = (await rabbitmqctl('-q', 'list_vhosts', 'name')).split('\n').map((s) => s.trim());
  if (!existing.includes(vhost)) await rabbitmqctl('add_vhost', vhost).catch((err: Error) => {
    if (!/already exists/i.test(err.message)) throw err;
  });
  await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
}

export async function deleteVhost(vhost: string): Promise<void> {
  await rabbitmqctl('delete_vhost', vhost).catch(() => undefined);
}

/** Closes, from the broker side, every connection whose client-provided connection_name contains `part`. */
export async function closeConnectionsNamed(part: string): Promise<number> {
  // table output: the JSON formatter prints pids (#PID<n.a.b>) in a form close_connection refuses
  const out = await rabbitmqctl('-q', '--no-table-headers', 'list_connections', 'pid', 'client_properties');
  const mine = out
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([pid, props]) => pid?.startsWith('<') && (/\{"connection_name","([^"]*)"\}/.exec(props ?? '')?.[1] ?? '').includes(part))
    .map(([pid]) => pid);
  for (const pid of mine) await rabbitmqctl('close_connection', pid, 'closed by the test');
  return mine.length;
}

/** The exchanges a queue is bound to on a virtual host (the default exchange left out). */
export async function bindingsOf(vhost: string, queue: string): Promise<string[]> {
  const out = await rabbitmqctl('-q', '--no-table-headers', 'list_bindings', '-p', vhost, 'source_name', 'destination_name', 'destination_kind');
  return out
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([source, destination, kind]) => source && destination === queue && kind === 'queue')
    .map(([source]) => source);
}

/** A raw amqplib client on a virtual host: the remote side of every test. */
export class RawClient {
  private constructor(
    readonly connection: ChannelModel,
    readonly channel: Channel,
  ) {}

  static async open(vhost: string): Promise<RawClient> {
    const connection = await connect({ hostname: BROKER.host, port: BROKER.port, username: BROKER.user, password: BROKER.password, vhost });
    const channel = await connection.createConfirmChannel();
    return new RawClient(connection, channel);
  }

  /** Publishes a patch request on FeatureUpdateRequestEvent, as any REGARDS client would. */
  async publishRequest(headers: Record<string, unknown>, body: string | Buffer, properties: { contentType?: string; contentEncoding?: string; priority?: number } = {}): Promise<void> {
    await this.channel.assertExchange(REGARDS.updateRequestExchange, 'fanout', { durable: true });
    this.channel.publish(REGARDS.updateRequestExchange, '', typeof body === 'string' ? Buffer.from(body, 'utf8') : body, {
      headers,
      contentType: properties.contentType ?? 'application/json',
      contentEncoding: properties.contentEncoding ?? 'UTF-8',
      deliveryMode: 2,
      ...(properties.priority !== undefined ? { priority: properties.priority } : {}),
    });
    await (this.channel as Channel & { waitForConfirms(): Promise<void> }).waitForConfirms();
  }

  /** Publishes an answer on FeatureRequestEvent, as a remote catalogue would. */
  async publishAnswer(tenant: string, answer: { requestId: string; urn: string; requestOwner: string; state: string; errors: string[] }): Promise<void> {
    await this.channel.assertExchange(REGARDS.requestEventExchange, 'fanout', { durable: true });
    this.channel.publish(REGARDS.requestEventExchange, '', Buffer.from(JSON.stringify({ ...answer, type: 'PATCH' })), {
      headers: { [REGARDS.headers.tenant]: tenant, [REGARDS.headers.requestId]: answer.requestId },
      contentType: 'application/json',
      deliveryMode: 2,
    });
    await (this.channel as Channel & { waitForConfirms(): Promise<void> }).waitForConfirms();
  }

  /** Collects every message of a fanout exchange into `into`, from now on (an exclusive queue). */
  async listen(exchange: string): Promise<ConsumeMessage[]> {
    const into: ConsumeMessage[] = [];
    await this.channel.assertExchange(exchange, 'fanout', { durable: true });
    const { queue } = await this.channel.assertQueue('', { exclusive: true, autoDelete: true });
    await this.channel.bindQueue(queue, exchange, '');
    await this.channel.consume(queue, (m) => m && into.push(m), { noAck: true });
    return into;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

/** An answer read off the wire: headers and parsed body. */
export function answerOf(m: ConsumeMessage): { headers: Record<string, unknown>; body: { requestId: string; type: string; urn: string | null; requestOwner: string | null; state: string; errors: string[] }; appId?: string } {
  return { headers: m.properties.headers ?? {}, body: JSON.parse(m.content.toString('utf8')), ...(m.properties.appId ? { appId: m.properties.appId } : {}) };
}
