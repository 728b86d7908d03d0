import type { Migration } from '../db/database';

export const disseminationMigrations: Migration[] = [
  {
    id: 'dissemination/001_recipients_disseminations',
    sql: `
      -- REGARDS notifier recipients; settings is the kind-specific JSON, secrets included (never returned)
      CREATE TABLE recipients (
        label TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL CHECK (kind IN ('amqp','webhook','s3','folder')),
        direct_notification INTEGER NOT NULL,
        ack_required INTEGER NOT NULL,
        blocking_required INTEGER NOT NULL,
        settings TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      -- one (product, recipient) dissemination; recipient_label is kept as text (history outlives a recipient)
      CREATE TABLE disseminations (
        id TEXT PRIMARY KEY,
        urn TEXT NOT NULL,
        tenant TEXT NOT NULL,
        product_name TEXT NOT NULL,
        recipient_label TEXT NOT NULL,
        recipient_kind TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('PENDING','WAITING_ACK','DONE','FAILED')),
        blocking INTEGER NOT NULL,
        ack_required INTEGER NOT NULL,
        request_date TEXT NOT NULL,
        sent_date TEXT,
        ack_date TEXT,
        ack_via TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        bytes INTEGER NOT NULL DEFAULT 0,
        files INTEGER NOT NULL DEFAULT 0,
        fixity TEXT,
        outbox_id INTEGER,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX disseminations_pair ON disseminations (urn, recipient_label, request_date DESC);
      CREATE INDEX disseminations_recipient ON disseminations (recipient_label, request_date DESC);
      CREATE INDEX disseminations_requested ON disseminations (request_date DESC, id);
      CREATE INDEX disseminations_status ON disseminations (status);
      -- an active (PENDING / WAITING_ACK) pair is never duplicated
      CREATE UNIQUE INDEX disseminations_active ON disseminations (urn, recipient_label) WHERE status IN ('PENDING','WAITING_ACK');

      -- files a folder or S3 delivery has proven at the destination: a resumed delivery skips them
      -- (after checking them again there)
      CREATE TABLE dissemination_files (
        dissemination_id TEXT NOT NULL REFERENCES disseminations(id),
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        md5 TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        delivered_at TEXT NOT NULL,
        PRIMARY KEY (dissemination_id, path)
      );

      -- acknowledgements by patch request are read from the event log after this seq
      INSERT OR REPLACE INTO settings (key, value)
        SELECT 'dissemination.patchAckCursor', CAST(coalesce(max(seq), 0) AS TEXT) FROM events WHERE kind = 'product' AND type = 'dissemination.acknowledged';
    `,
  },
];
