import type { CommandName, CommandOutput, ParsedInput } from '../../src-shared/api';
import type { Config } from './config';
import type { JobHandler, JobRunner } from './db/jobs';
import type { OutboxRelay } from './db/outbox';
import type { Store } from './db/store';
import type { HashPool } from './fixity/hash-pool';

/** Who is calling: transports fill it in; handlers use it for audit fields. */
export interface CallContext {
  transport: 'ipc' | 'http' | 'cli' | 'internal';
  /** the authenticated client (HTTP bearer token owner), when known */
  clientId?: string;
}

export type Handler<N extends CommandName> = (input: ParsedInput<N>, ctx: CallContext) => Promise<CommandOutput<N>> | CommandOutput<N>;
export type Handlers = { [N in CommandName]: Handler<N> };

/** What every capability receives: the shared machinery, never another capability's tables. */
export interface Deps {
  config: Config;
  store: Store;
  jobs: JobRunner;
  outbox: OutboxRelay;
  pool: HashPool;
}

/** A capability: its command handlers, its job kinds, and what it starts and stops. */
export interface Capability {
  handlers: Partial<Handlers>;
  jobs?: Record<string, JobHandler<never>>;
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
}
