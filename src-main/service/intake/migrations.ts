import type { Migration } from '../db/database';

export const intakeMigrations: Migration[] = [
  {
    id: 'intake/001_uploads',
    sql: `
      CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        type TEXT NOT NULL DEFAULT 'ARCHIVE',
        srs TEXT,
        status TEXT NOT NULL,
        sources TEXT NOT NULL DEFAULT '[]',
        staged INTEGER NOT NULL DEFAULT 0,
        is_bag INTEGER NOT NULL DEFAULT 0,
        files INTEGER NOT NULL DEFAULT 0,
        size INTEGER NOT NULL DEFAULT 0,
        walked INTEGER NOT NULL DEFAULT 0,
        archive_check TEXT NOT NULL DEFAULT 'WAITING',
        standard_check TEXT NOT NULL DEFAULT 'WAITING',
        archive_errors INTEGER NOT NULL DEFAULT 0,
        archive_warnings INTEGER NOT NULL DEFAULT 0,
        standard_errors INTEGER NOT NULL DEFAULT 0,
        standard_warnings INTEGER NOT NULL DEFAULT 0,
        progress TEXT,
        reason TEXT,
        creation TEXT NOT NULL,
        last_change TEXT NOT NULL
      );
      CREATE INDEX uploads_creation ON uploads (creation DESC);

      -- every file and folder of an upload; directories too, for file/folder conflicts
      CREATE TABLE upload_entries (
        upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
        source INTEGER NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('file','dir')),
        conflict_key TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        md5 TEXT,
        sha256 TEXT,
        extra TEXT,
        signed INTEGER NOT NULL DEFAULT 0,
        error TEXT
      );
      CREATE INDEX upload_entries_path ON upload_entries (upload_id, path);
      CREATE INDEX upload_entries_key ON upload_entries (upload_id, conflict_key);
      CREATE INDEX upload_entries_todo ON upload_entries (upload_id, kind, md5);

      CREATE TABLE upload_findings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
        check_kind TEXT NOT NULL CHECK (check_kind IN ('archive','standard')),
        path TEXT NOT NULL,
        rule TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('error','warning','info')),
        message TEXT NOT NULL
      );
      CREATE INDEX upload_findings_upload ON upload_findings (upload_id, check_kind, severity);
    `,
  },
  {
    // the modification time the walk saw (ns since the epoch), compared for equality with the one
    // the hash pool sees when it opens the file; NULL for files listed before this column existed
    id: 'intake/002_entry_mtime',
    sql: `ALTER TABLE upload_entries ADD COLUMN mtime_ns INTEGER;`,
  },
];
