/** Runs the LedgerStore contract against SQLite, one fresh database file per test. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ledgerContract } from '../contract/ledger.contract.js'
import { openSqliteStores } from './index.js'

ledgerContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-ledger-'))
  const stores = openSqliteStores(join(dir, 'ledger.db'))
  const db = (stores.usage as unknown as { db: import('better-sqlite3').Database }).db
  return {
    store: stores.ledger,
    usageEvents: async (orgId) =>
      db
        .prepare<[string], { id: string; cost_micros: number; reservation_id: string | null; external_request_id: string | null }>(
          'SELECT id, cost_micros, reservation_id, external_request_id FROM usage_events WHERE org_id = ? ORDER BY at_ms, id',
        )
        .all(orgId)
        .map((r) => ({
          id: r.id,
          costMicros: r.cost_micros,
          reservationId: r.reservation_id ?? undefined,
          externalRequestId: r.external_request_id ?? undefined,
        })),
    close: async () => {
      await stores.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
