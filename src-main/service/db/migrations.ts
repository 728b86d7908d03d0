import type { Migration } from './database';

/** The core tables every capability uses: the event log, durable jobs, the outbox. */
export const coreMigrations: Migration[] = [
  {
    id: 'core/001_events_jobs_outbox',
    sql: `
      CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        object_id TEXT NOT NULL,
        type TEXT NOT NULL,
        time TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX events_object ON events (kind, object_id, seq);
      CREATE INDEX events_time ON events (time);

      CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        object_kind TEXT,
        object_id TEXT,
        priority INTEGER NOT NULL DEFAULT 0,
        run_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','running','done','failed','cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 5,
        lease_owner TEXT,
        lease_until TEXT,
        last_error TEXT,
        progress TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX jobs_ready ON jobs (status, priority DESC, run_at, id);
      CREATE INDEX jobs_object ON jobs (object_kind, object_id);

      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        destination TEXT NOT NULL,
        headers TEXT NOT NULL DEFAULT '{}',
        body TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sending','sent','cancelled','failed')),
        priority INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        object_kind TEXT,
        object_id TEXT,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT
      );
      CREATE INDEX outbox_ready ON outbox (status, next_attempt_at, priority DESC, id);

      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    // Partial indexes: a message the relay takes in hand (inserted 'sending', then 'sent') touches
    // only the small index of open messages, not an index over every message ever sent.
    id: 'core/002_outbox_partial_indexes',
    sql: `
      DROP INDEX outbox_ready;
      CREATE INDEX outbox_due ON outbox (priority DESC, id) WHERE status = 'pending';
      CREATE INDEX outbox_open ON outbox (status, channel) WHERE status IN ('pending', 'sending', 'failed');
    `,
  },
  {
    // An object's events are found through the last characters of its id (see store.ts
    // eventsOfObject): an index entry of ~25 bytes instead of ~90 (kind, the whole id, seq). Ids are
    // mostly random (UUIDs, URNs), so every event written lands on a random page of that index: a
    // smaller index means fewer pages written at each commit (about a third of a commit's pages
    // came from the old one). Entries with the same tail are in seq order (the rowid).
    id: 'core/003_events_object_tail',
    sql: `
      CREATE INDEX events_object_tail ON events (substr(object_id, -16));
      DROP INDEX events_object;
    `,
  },
];
