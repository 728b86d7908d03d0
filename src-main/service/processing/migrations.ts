import type { Migration } from '../db/database';

export const processingMigrations: Migration[] = [
  {
    id: 'processing/001_executions_stored_data',
    sql: `
      CREATE TABLE stored_data (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL DEFAULT 'ARCHIVE',
        status TEXT NOT NULL,
        storage_type TEXT NOT NULL,
        storage_label TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        size INTEGER NOT NULL DEFAULT 0,
        files INTEGER NOT NULL DEFAULT 0,
        srs TEXT,
        description TEXT,
        edition_from TEXT,
        edition_to TEXT,
        extent TEXT,
        verified INTEGER NOT NULL DEFAULT 0,
        creation TEXT NOT NULL,
        last_change TEXT NOT NULL
      );
      CREATE TABLE stored_files (
        stored_data_id TEXT NOT NULL REFERENCES stored_data(id),
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        md5 TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        verified_at TEXT,
        PRIMARY KEY (stored_data_id, path)
      );
      CREATE TABLE executions (
        id TEXT PRIMARY KEY,
        processing TEXT NOT NULL,
        status TEXT NOT NULL,
        stored_data_id TEXT NOT NULL REFERENCES stored_data(id),
        uploads TEXT NOT NULL,
        parameters TEXT NOT NULL DEFAULT '{}',
        reason TEXT,
        creation TEXT NOT NULL,
        launch TEXT,
        start TEXT,
        finish TEXT
      );
      CREATE INDEX executions_creation ON executions (creation DESC);
      CREATE TABLE execution_files (
        execution_id TEXT NOT NULL REFERENCES executions(id),
        upload_id TEXT NOT NULL,
        source INTEGER NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        md5 TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','verified','failed')),
        error TEXT,
        replaced_md5 TEXT,
        PRIMARY KEY (execution_id, path)
      );
      CREATE INDEX execution_files_todo ON execution_files (execution_id, status);
    `,
  },
];
