/** All SQLite adapters over one database file, with every module's migrations applied in order. */
import type { Stores } from '../../app.js'
import { openSqlite } from './db.js'
import { SqliteLedgerStore, ledgerMigrations } from './ledger-store.js'
import { SqliteUsageStore, usageMigrations } from './usage-store.js'
import { SqliteTicketStore, ticketMigrations } from './ticket-store.js'
import { SqliteIdempotencyStore, idempotencyMigrations } from './idempotency-store.js'
import { SqliteAuthStore, authMigrations } from './auth-store.js'
import { SqliteBudgetStore, budgetMigrations } from './budget-store.js'
import { SqliteNotifyStore, notifyMigrations } from './notify-store.js'
import { SqliteChangeStore, changeMigrations } from './change-store.js'
import { SqliteSessionStore, sessionMigrations } from './session-store.js'
import { SqliteExportStore, exportMigrations } from './export-store.js'

// Order matters: budgets read usage_events, so usage comes before them.
export const sqliteMigrations = [
  ...ledgerMigrations,
  ...usageMigrations,
  ...ticketMigrations,
  ...idempotencyMigrations,
  ...authMigrations,
  ...budgetMigrations,
  ...notifyMigrations,
  ...changeMigrations,
  ...sessionMigrations,
  ...exportMigrations,
]

export function openSqliteStores(path: string): Stores {
  const db = openSqlite(path, sqliteMigrations)
  const usage = new SqliteUsageStore(db)
  const ledger = new SqliteLedgerStore(db, usage)
  return {
    ledger,
    usage,
    tickets: new SqliteTicketStore(db),
    idempotency: new SqliteIdempotencyStore(db),
    auth: new SqliteAuthStore(db),
    budgets: new SqliteBudgetStore(db),
    notify: new SqliteNotifyStore(db),
    changes: new SqliteChangeStore(db),
    sessions: new SqliteSessionStore(db),
    exports: new SqliteExportStore(db, path),
    async close() {
      usage.close()
      db.close()
    },
    async ready() {
      return db.open
    },
    // Commits are synchronous SQLite transactions: what a call committed is readable at once.
    async drain() {},
  }
}

export { openSqlite } from './db.js'
