/**
 * The embedded store: one SQLite file shared by every gateway process on the machine. WAL mode so
 * readers never block the writer; `BEGIN IMMEDIATE` transactions so concurrent processes
 * serialise their money moves instead of failing with SQLITE_BUSY mid-transaction.
 */
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'

export type SqliteDatabase = Database.Database

/** One migration: a stable id (never renamed once shipped) and the SQL it runs. */
export interface SqliteMigration {
  readonly id: string
  readonly sql: string
}

/** Busy timeout: how long a process waits for another's write transaction before failing. */
const BUSY_TIMEOUT_MS = 10_000

export function openSqlite(path: string, migrations: readonly SqliteMigration[]): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  // NORMAL in WAL mode is durable across process crashes (only an OS crash can lose the last
  // transactions), which is the failure the expiry sweeper is designed around.
  db.pragma('synchronous = NORMAL')
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
  db.pragma('foreign_keys = ON')
  migrate(db, migrations)
  return db
}

function migrate(db: SqliteDatabase, migrations: readonly SqliteMigration[]): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at_ms INTEGER NOT NULL)')
  const applied = db.prepare<[string], { id: string }>('SELECT id FROM schema_migrations WHERE id = ?')
  const record = db.prepare('INSERT INTO schema_migrations (id, applied_at_ms) VALUES (?, ?)')
  for (const migration of migrations) {
    // Each migration in its own immediate transaction: two processes starting at once must not
    // both apply it.
    const apply = db.transaction(() => {
      if (applied.get(migration.id)) return
      db.exec(migration.sql)
      record.run(migration.id, Date.now())
    })
    apply.immediate()
  }
}
