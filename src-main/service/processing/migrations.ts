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
  {
    // Which run put each stored file there. Runs into one stored data never overlap (a launch is
    // refused while another execution writes it), so the launch order is the order of the writes:
    // a retry compares it with its own last launch and never puts an older delivery over a file
    // a later run stored (index.ts, refuseOverNewer). A counter, not a clock: a clock can go back.
    // Files stored before: the execution that verified them last, at its last launch (it may have
    // been retried since): later than the real write, so a retry is refused rather than let through.
    id: 'processing/002_write_order',
    sql: `
      ALTER TABLE executions ADD COLUMN launch_seq INTEGER;
      ALTER TABLE stored_files ADD COLUMN written_by TEXT;
      ALTER TABLE stored_files ADD COLUMN written_seq INTEGER;
      UPDATE executions SET launch_seq = o.n
        FROM (SELECT id, row_number() OVER (ORDER BY launch, rowid) AS n FROM executions WHERE launch IS NOT NULL) AS o
        WHERE o.id = executions.id;
      UPDATE stored_files SET written_by = w.execution_id, written_seq = w.seq
        FROM (SELECT e.stored_data_id AS stored_data_id, f.path AS path, max(e.launch_seq) AS seq, e.id AS execution_id
              FROM execution_files f JOIN executions e ON e.id = f.execution_id
              WHERE f.status = 'verified' GROUP BY e.stored_data_id, f.path) AS w
        WHERE w.stored_data_id = stored_files.stored_data_id AND w.path = stored_files.path;
    `,
  },
];
