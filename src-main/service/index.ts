import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { commands, isCommandName, type CommandName, type CommandOutput, type Pushed } from '../../src-shared/api';
import { FondsError, toErrorShape } from '../../src-shared/errors';
import type { CallContext, Capability, Deps, Handlers } from './capability';
import type { Config } from './config';
import { WalCheckpointer } from './db/checkpoint';
import { migrate, openDatabase, type Migration } from './db/database';
import { JobRunner } from './db/jobs';
import { coreMigrations } from './db/migrations';
import { OutboxRelay } from './db/outbox';
import { Store } from './db/store';
import { HashPool } from './fixity/hash-pool';
import { createIntake, intakeMigrations } from './intake';
import { lockDataDir } from './lock';
import { createProcessing, processingMigrations } from './processing';
import { createMessages, messagesMigrations } from './messages';
import { amqpMigrations, createAmqp } from './amqp';
import { createProducts, productsMigrations } from './products';
import { createDissemination, disseminationMigrations } from './dissemination';
import { createNb, nbMigrations } from './dissemination/nb';
import { createReports, type WriteOptions, type WriteOutcome } from './reports';

export type { CallContext } from './capability';

export interface Service {
  readonly config: Config;
  /** the bearer token of the headless server */
  readonly token: string;
  call<N extends CommandName>(name: N, input: unknown, ctx?: CallContext): Promise<CommandOutput<N>>;
  subscribe(listener: (p: Pushed) => void): () => void;
  /** streams a pushed file into an OPEN upload (HTTP PUT) */
  stageFile(uploadId: string, rel: string, body: Readable): Promise<{ path: string; size: number }>;
  /** streams a dissemination report (HTTP download); input as reportStreamSchema; `out` is not ended */
  writeReport(input: unknown, out: Writable, opts?: WriteOptions): Promise<WriteOutcome>;
  /** resolves when no job is due or running (tests, CLI) */
  idle(timeoutMs?: number): Promise<void>;
  /** stops everything and releases the data directory; concurrent and later calls wait for the same shutdown */
  close(): Promise<void>;
  /** for tests and benchmarks only */
  readonly internals: Deps;
}

/** Every migration, in the order capabilities depend on each other. */
export const migrations: Migration[] = [...coreMigrations, ...intakeMigrations, ...processingMigrations, ...messagesMigrations, ...amqpMigrations, ...productsMigrations, ...disseminationMigrations, ...nbMigrations];

function readOrCreateToken(config: Config): string {
  if (config.token) return config.token;
  const file = path.join(config.dataDir, 'token');
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    if (t.length >= 16) return t;
  } catch {
    /* first start */
  }
  const token = randomBytes(24).toString('base64url');
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  return token;
}

/**
 * Creates the service on a data directory: opens and migrates SQLite, starts the job workers and
 * the outbox relay, and wires every capability's handlers. Plain Node: never imports electron.
 */
export async function createService(config: Config): Promise<Service> {
  const unlock = lockDataDir(config.dataDir);
  let db;
  let checkpointer: WalCheckpointer;
  try {
    const file = path.join(config.dataDir, 'fonds.sqlite');
    db = openDatabase(file);
    migrate(db, migrations);
    checkpointer = new WalCheckpointer(file);
  } catch (err) {
    db?.close();
    unlock();
    throw err;
  }
  const pool = new HashPool(config.hashWorkers);
  let deps: Deps;
  let capabilities: Capability[];
  let token: string;
  let jobs: JobRunner;
  let outbox: OutboxRelay;
  let store: Store;
  let intake: ReturnType<typeof createIntake>;
  let reports: ReturnType<typeof createReports>;
  const handlers: Partial<Handlers> = {};
  try {
    token = readOrCreateToken(config);
    store = new Store(db);
    store.onWrite(() => checkpointer.wrote());
    jobs = new JobRunner(store, { concurrency: config.jobConcurrency });
    outbox = new OutboxRelay(store);
    deps = { config, store, jobs, outbox, pool };

    intake = createIntake(deps);
    const processing = createProcessing(deps);
    const amqp = createAmqp(deps);
    const core: Capability = {
      handlers: {
        'app.info': (_input, ctx) => ({
          version: process.env.npm_package_version ?? '0.1.0',
          dataDir: config.dataDir,
          transport: ctx.transport === 'ipc' ? 'ipc' : 'http',
          amqp: amqp.state(),
          storage: processing.storage.kind,
          outboxPending: outbox.pendingCount(),
        }),
        'outbox.list': ({ status, offset, limit }) => outbox.list(status, offset, limit),
      },
    };
    reports = createReports(deps);
    capabilities = [core, intake, processing, createMessages(deps), amqp, createProducts(deps, amqp), createDissemination(deps, { amqp, processing }), reports, createNb(deps, { processing })];

    for (const c of capabilities) {
      for (const [name, h] of Object.entries(c.handlers)) {
        if (name in handlers) throw new Error(`command ${name} is handled twice`);
        (handlers as Record<string, unknown>)[name] = h;
      }
      for (const [kind, j] of Object.entries(c.jobs ?? {})) jobs.register(kind, j);
    }
    const missing = Object.keys(commands).filter((n) => !(n in handlers));
    if (missing.length) throw new Error(`commands without a handler: ${missing.join(', ')}`);

    for (const c of capabilities) await c.start?.();
    jobs.start();
    outbox.start();
  } catch (err) {
    // a capability that cannot start (bad storage settings...) leaves nothing locked or open
    await pool.close();
    await checkpointer.close();
    db.close();
    unlock();
    throw err;
  }

  /** the shutdown, once asked for: commands are refused from then on */
  let closing: Promise<void> | undefined;
  return {
    config,
    token,
    internals: deps,
    async call(name, input, ctx = { transport: 'internal' }) {
      if (closing) throw new FondsError('UNAVAILABLE', 'The service is shutting down.');
      if (!isCommandName(name)) throw new FondsError('NOT_FOUND', `Unknown command '${String(name)}'.`);
      const parsed = commands[name].input.safeParse(input ?? {});
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(input)', message: i.message }));
        throw new FondsError('INVALID_INPUT', `${name}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
      }
      const handler = handlers[name] as (input: unknown, ctx: CallContext) => unknown;
      try {
        return (await handler(parsed.data, ctx)) as CommandOutput<typeof name>;
      } catch (err) {
        if (err instanceof FondsError) throw err;
        const shape = toErrorShape(err);
        const errno = (err as NodeJS.ErrnoException).code;
        if (errno && /^E[A-Z]+$/.test(errno)) throw new FondsError('IO_ERROR', `${name}: ${shape.message}`, { errno });
        throw new FondsError('INTERNAL', `${name} failed: ${shape.message}`);
      }
    },
    subscribe: (listener) => store.subscribe(listener),
    stageFile: (uploadId, rel, body) => intake.stageFile(uploadId, rel, body, config.maxUploadFileBytes),
    async writeReport(input, out, opts) {
      if (closing) throw new FondsError('UNAVAILABLE', 'The service is shutting down.');
      return reports.write(input, out, opts);
    },
    idle: (timeoutMs) => jobs.idle(timeoutMs),
    close() {
      // every caller (a window closing, SIGTERM, a test's cleanup) waits for the same shutdown
      closing ??= (async () => {
        await jobs.stop();
        await outbox.stop();
        for (const c of [...capabilities].reverse()) await c.stop?.();
        await pool.close();
        await checkpointer.close();
        db.close();
        unlock();
      })();
      return closing;
    },
  };
}
