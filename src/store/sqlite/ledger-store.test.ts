/** Runs the LedgerStore contract against SQLite, one fresh database file per test. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ledgerContract } from '../contract/ledger.contract.js'
import { openSqlite } from './db.js'
import { SqliteLedgerStore, ledgerMigrations } from './ledger-store.js'

ledgerContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-ledger-'))
  const db = openSqlite(join(dir, 'ledger.db'), ledgerMigrations)
  return {
    store: new SqliteLedgerStore(db),
    close: async () => {
      db.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
