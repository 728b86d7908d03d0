import type { Migration } from '../../db/database';

/** The NB dissemination contract's own tables: served disseminations, their files, client orders. */
export const nbMigrations: Migration[] = [
  {
    id: 'nb/001_disseminations_orders',
    sql: `
      CREATE TABLE nb_disseminations (
        id TEXT PRIMARY KEY,
        archive_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        contract_id TEXT NOT NULL,
        object_id TEXT NOT NULL,
        sum_size INTEGER NOT NULL,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        date_created TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        reason TEXT,
        link_base TEXT NOT NULL,
        delivery TEXT NOT NULL CHECK (delivery IN ('folder','s3')),
        package_key TEXT,
        package_name TEXT,
        package_size INTEGER,
        package_sha256 TEXT,
        link_url TEXT,
        link_expires_at TEXT,
        links_issued INTEGER NOT NULL DEFAULT 0,
        webhook_state TEXT NOT NULL DEFAULT 'none' CHECK (webhook_state IN ('none','pending','sent','failed')),
        webhook_attempts INTEGER NOT NULL DEFAULT 0,
        webhook_error TEXT
      );
      -- duplicate control: one dissemination in progress per (client, archive)
      CREATE UNIQUE INDEX nb_disseminations_active ON nb_disseminations (client_id, archive_id)
        WHERE status NOT IN ('DISSEMINATED','FAILED','REJECTED');
      CREATE INDEX nb_disseminations_created ON nb_disseminations (date_created DESC);
      CREATE TABLE nb_dissemination_files (
        dissemination_id TEXT NOT NULL REFERENCES nb_disseminations(id),
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        md5 TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        downloaded INTEGER NOT NULL DEFAULT 0,
        checked INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (dissemination_id, path)
      );
      CREATE TABLE nb_orders (
        id TEXT PRIMARY KEY,
        base_url TEXT NOT NULL,
        token_sealed TEXT NOT NULL,
        archive_id TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('SUBMITTING','POLLING','ENDED','ERROR')),
        dissemination_id TEXT,
        adopted INTEGER NOT NULL DEFAULT 0,
        status TEXT,
        client_id TEXT,
        contract_id TEXT,
        object_id TEXT,
        sum_size INTEGER,
        date_created TEXT,
        reason TEXT,
        error TEXT,
        polls INTEGER NOT NULL DEFAULT 0,
        backoff_step INTEGER NOT NULL DEFAULT 0,
        next_poll_at TEXT,
        link_url TEXT,
        link_expires_at TEXT,
        link_name TEXT,
        link_size INTEGER,
        link_sha256 TEXT,
        links_fetched INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE UNIQUE INDEX nb_orders_remote ON nb_orders (base_url, dissemination_id) WHERE dissemination_id IS NOT NULL;
      CREATE INDEX nb_orders_created ON nb_orders (created_at DESC);
    `,
  },
];
