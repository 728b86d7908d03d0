import type { Migration } from '../db/database';

export const messagesMigrations: Migration[] = [
  {
    id: 'messages/001_message_index',
    sql: `
      -- the index of the message directory: one row per message (folder and/or <id>.* files)
      CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('ok','unknown','unparseable')),
        type TEXT,
        schema TEXT,
        status TEXT,
        status_source TEXT CHECK (status_source IN ('message','sidecar','review')),
        -- when the status was decided (sidecar or review), to let the latest decision win
        status_changed_at TEXT,
        date TEXT,
        date_source TEXT CHECK (date_source IN ('message','file')),
        reference TEXT,
        request_reference TEXT,
        reply_code TEXT,
        sender TEXT,
        recipient TEXT,
        comment TEXT,
        format TEXT CHECK (format IN ('xml','json')),
        file TEXT,
        is_dir INTEGER NOT NULL DEFAULT 0,
        -- JSON list of the top-level <id>.* files
        beside TEXT NOT NULL DEFAULT '[]',
        files INTEGER NOT NULL DEFAULT 0,
        size INTEGER NOT NULL DEFAULT 0,
        fingerprint TEXT NOT NULL DEFAULT '',
        reason TEXT,
        last_change TEXT NOT NULL,
        indexed_at TEXT NOT NULL
      );
      CREATE INDEX messages_date ON messages (date DESC, id);
      CREATE INDEX messages_type_status ON messages (type, status, date);
      CREATE INDEX messages_status ON messages (status);
    `,
  },
];
