import type { Migration } from '../db/database';

export const productsMigrations: Migration[] = [
  {
    id: 'products/001_products_patch_requests',
    sql: `
      CREATE TABLE products (
        urn TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        provider_id TEXT NOT NULL DEFAULT '',
        version INTEGER NOT NULL DEFAULT 1,
        stored_data_id TEXT,
        properties TEXT NOT NULL DEFAULT '{}',
        files TEXT NOT NULL DEFAULT '[]',
        acknowledged_by TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX products_updated ON products (updated_at DESC);
      CREATE INDEX products_stored_data ON products (stored_data_id);

      -- patch requests received (Fonds is the catalogue) and sent (Fonds is a client);
      -- key = '<direction>:<request id as first seen>'
      CREATE TABLE patch_requests (
        key TEXT PRIMARY KEY,
        direction TEXT NOT NULL CHECK (direction IN ('received','sent')),
        request_id TEXT NOT NULL,
        tenant TEXT NOT NULL DEFAULT '',
        owner TEXT NOT NULL DEFAULT '',
        urn TEXT,
        state TEXT NOT NULL,
        errors TEXT NOT NULL DEFAULT '[]',
        priority TEXT NOT NULL DEFAULT 'NORMAL',
        file_update_mode TEXT,
        request_date TEXT,
        run_at TEXT,
        acknowledged_recipient TEXT,
        headers TEXT NOT NULL DEFAULT '{}',
        body TEXT,
        body_sha256 TEXT,
        outbox_id INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX patch_requests_urn ON patch_requests (urn, created_at);
      CREATE INDEX patch_requests_request ON patch_requests (direction, request_id);
      CREATE INDEX patch_requests_created ON patch_requests (created_at DESC);
    `,
  },
  {
    // a received request is found by its key ('received:<id>'); only sent ones are looked up by
    // request id (an edit may change it) and by state (answers awaited?): partial indexes, so a
    // request received adds no entry to either
    id: 'products/002_sent_request_indexes',
    sql: `
      DROP INDEX patch_requests_request;
      CREATE INDEX patch_requests_sent ON patch_requests (request_id) WHERE direction = 'sent';
      CREATE INDEX patch_requests_sent_state ON patch_requests (state) WHERE direction = 'sent';
    `,
  },
  {
    // A product's patch requests are found through the last 16 characters of its URN (see
    // db/store.ts tailEquals): an entry of ~25 bytes instead of ~100 (the URN and created_at).
    // Requests name products at random, so every request received landed on a random page of the
    // old index: it wrote ~1.3 KiB of WAL a request on a 10,000-request catalogue, ~5 KiB on a
    // 50,000-request one.
    id: 'products/003_patch_requests_urn_tail',
    sql: `
      CREATE INDEX patch_requests_urn_tail ON patch_requests (substr(urn, -16));
      DROP INDEX patch_requests_urn;
    `,
  },
];
