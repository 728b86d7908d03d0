import type { Migration } from '../db/database';

export const amqpMigrations: Migration[] = [
  {
    id: 'amqp/001_dead_letters',
    sql: `
      -- messages that could not be read at all (no request id): kept here for people, and routed
      -- by the broker to the dead-letter queue
      CREATE TABLE amqp_dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        received_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        headers TEXT NOT NULL DEFAULT '{}',
        properties TEXT NOT NULL DEFAULT '{}',
        body_preview TEXT NOT NULL DEFAULT '',
        body_bytes INTEGER NOT NULL,
        body_sha256 TEXT NOT NULL
      );
      CREATE INDEX amqp_dead_letters_sha ON amqp_dead_letters (body_sha256);
    `,
  },
];
