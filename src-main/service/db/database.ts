import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';

export type DB = Database.Database;

/** One forward-only migration. `id` is `<owner>/<NNN>_<name>`; owners apply in registration order. */
export interface Migration {
  id: string;
  sql: string;
}

/** Opens (creating if needed) the SQLite file in WAL mode with foreign keys on. */
export function openDatabase(file: string): DB {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // the service checkpoints in a worker thread (checkpoint.ts); SQLite's own checkpoint, which runs
  // inside a commit on the committing thread, is the backstop: at ~64 MB of WAL instead of 4 MB
  db.pragma('wal_autocheckpoint = 16000');
  return db;
}

/**
 * Applies every migration not yet applied, each in its own transaction, in the order given.
 * Migrations are never edited once released: a change is a new migration.
 */
export function migrate(db: DB, migrations: readonly Migration[]): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    id TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
  )`);
  const seen = new Set(db.prepare('SELECT id FROM schema_migrations').pluck().all() as string[]);
  const ids = new Set<string>();
  const applied: string[] = [];
  for (const m of migrations) {
    if (ids.has(m.id)) throw new Error(`migration ${m.id} is registered twice`);
    ids.add(m.id);
    if (seen.has(m.id)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)').run(m.id, new Date().toISOString());
    })();
    applied.push(m.id);
  }
  return applied;
}
