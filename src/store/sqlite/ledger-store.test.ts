/** Runs the LedgerStore contract against SQLite, one fresh database file per test; and its migration of wallets. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { micros } from '../../money/index.js'
import { ledgerContract } from '../contract/ledger.contract.js'
import { openSqlite } from './db.js'
import { openSqliteStores } from './index.js'
import { ledgerMigrations } from './ledger-store.js'

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

describe('spend at the last allocation (SQLite migration)', () => {
  it('a wallet allocated before the migration has none, so nothing is recovered for it, until its next allocation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-ledger-'))
    try {
      const path = join(dir, 'ledger.db')
      // The wallets table as the previous version left it: $10 allocated, $6 spent.
      const old = openSqlite(
        path,
        ledgerMigrations.filter((m) => m.id !== 'ledger-0004-spent-at-allocation'),
      )
      old
        .prepare(
          `INSERT INTO wallets (id, org_id, scope_kind, scope_id, allocated_micros, reserved_micros, spent_micros, created_at_ms)
           VALUES ('wal_old', 'org_old', 'team', 'ops', 10000000, 0, 6000000, 1)`,
        )
        .run()
      old.close()

      const stores = openSqliteStores(path)
      try {
        expect(await stores.ledger.getWallet('wal_old')).toMatchObject({ spentMicros: 6_000_000, spentAtAllocationMicros: undefined })
        expect(await stores.ledger.walletsSpentSinceAllocation()).toEqual([])
        const wallet = await stores.ledger.allocate({
          orgId: 'org_old',
          wallet: { scopeKind: 'team', scopeId: 'ops' },
          amountMicros: micros(5_000_000),
          description: undefined,
          atMs: 2,
        })
        expect(wallet).toMatchObject({ allocatedMicros: 15_000_000, spentAtAllocationMicros: 6_000_000 })
      } finally {
        await stores.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
