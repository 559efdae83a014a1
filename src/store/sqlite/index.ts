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
import { SqliteSessionStore, sessionMigrations } from './session-store.js'

// Order matters: budgets read usage_events, so usage comes before them.
export const sqliteMigrations = [
  ...ledgerMigrations,
  ...usageMigrations,
  ...ticketMigrations,
  ...idempotencyMigrations,
  ...authMigrations,
  ...budgetMigrations,
  ...notifyMigrations,
  ...sessionMigrations,
]

export function openSqliteStores(path: string): Stores {
  const db = openSqlite(path, sqliteMigrations)
  return {
    ledger: new SqliteLedgerStore(db),
    usage: new SqliteUsageStore(db),
    tickets: new SqliteTicketStore(db),
    idempotency: new SqliteIdempotencyStore(db),
    auth: new SqliteAuthStore(db),
    budgets: new SqliteBudgetStore(db),
    notify: new SqliteNotifyStore(db),
    sessions: new SqliteSessionStore(db),
    async close() {
      db.close()
    },
    async ready() {
      return db.open
    },
  }
}

export { openSqlite } from './db.js'
