/** Runs the LedgerStore contract against SQLite, one fresh database file per test; and its migration of wallets. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type Database from 'better-sqlite3'
import { newId } from '../../lib/ids.js'
import type { ReserveRequest } from '../../ledger/types.js'
import { micros } from '../../money/index.js'
import type { Stores } from '../../app.js'
import { ledgerContract } from '../contract/ledger.contract.js'
import { openSqlite } from './db.js'
import { openSqliteStores } from './index.js'
import { ledgerMigrations, SqliteLedgerStore, type UsageWriter } from './ledger-store.js'
import { SqliteUsageStore } from './usage-store.js'

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

/**
 * A settle trusts the reservations its own process committed instead of reading them back: these
 * are the ways another process (another connection on the file) can make that memory wrong.
 */
describe('settling what this process reserved, when another process got there first (SQLite)', () => {
  const T0 = Date.UTC(2026, 11, 3, 12)
  const team = { scopeKind: 'team', scopeId: 'ops' } as const

  async function twoProcesses<T>(fn: (a: Stores, b: Stores, dbA: Database.Database) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-ledger-'))
    const a = openSqliteStores(join(dir, 'ledger.db'))
    const b = openSqliteStores(join(dir, 'ledger.db'))
    try {
      return await fn(a, b, (a.usage as unknown as { db: Database.Database }).db)
    } finally {
      await a.close()
      await b.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }

  function reservation(id: string, amountMicros: number): ReserveRequest {
    return {
      reservationId: id,
      orgId: 'org_a',
      cascade: [team],
      walletRequired: true,
      walletCapPercent: 100,
      amountMicros: micros(amountMicros),
      budgets: [],
      requestId: undefined,
      atMs: T0,
      expiresAtMs: T0 + 60_000,
    }
  }

  it('one the other process expired answers already_expired here and moves no money', () =>
    twoProcesses(async (a, b) => {
      const wallet = await a.ledger.allocate({ orgId: 'org_a', wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const id = newId('rsv', T0)
      await a.ledger.reserve(reservation(id, 3_000))
      expect(await b.ledger.expireOverdue(T0 + 60_000, 10)).toMatchObject([{ kind: 'expired' }])
      const entries = (await a.ledger.ledgerEntries(wallet.id, 100)).length

      const settled = await a.ledger.settle('org_a', id, micros(1_000), T0 + 60_001)
      expect(settled).toMatchObject({ kind: 'already_expired', reservation: { status: 'expired', settledMicros: 3_000 } })
      expect(await a.ledger.getWallet(wallet.id)).toMatchObject({ reservedMicros: 0, spentMicros: 3_000 })
      expect(await a.ledger.ledgerEntries(wallet.id, 100)).toHaveLength(entries)
    }))

  // The lock is refused at BEGIN, before the reserve's statements run (the next test covers a
  // transaction that fails after them).
  it('a reserve refused for the write lock is not remembered: the id reserved by the other process settles as that one', () =>
    twoProcesses(async (a, b, dbA) => {
      const wallet = await a.ledger.allocate({ orgId: 'org_a', wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      // The same idempotent id, as two processes derive it from one Idempotency-Key.
      const id = newId('rsv', T0)
      // Process B holds the write lock: A's reservation of 3,000 fails and never commits.
      dbA.pragma('busy_timeout = 0')
      const dbB = (b.usage as unknown as { db: Database.Database }).db
      dbB.prepare('BEGIN IMMEDIATE').run()
      await expect(a.ledger.reserve(reservation(id, 3_000))).rejects.toThrow(/locked|busy/i)
      dbB.prepare('COMMIT').run()
      expect(await b.ledger.reserve(reservation(id, 5_000))).toMatchObject({ kind: 'reserved' })

      const settled = await a.ledger.settle('org_a', id, micros(1_000), T0 + 1)
      expect(settled).toMatchObject({ kind: 'settled', releasedMicros: 4_000, reservation: { amountMicros: 5_000, settledMicros: 1_000 } })
      expect(await a.ledger.getWallet(wallet.id)).toMatchObject({ reservedMicros: 0, spentMicros: 1_000 })
    }))

  it('a reserve whose transaction fails after its statements ran is not remembered: the id settles as the other process reserved it', () =>
    twoProcesses(async (a, b, dbA) => {
      // Process A's ledger again, over the same connection, with a commit that can fail after its
      // statements ran, as a COMMIT does on an I/O error or a full disk: SQLite rolls it all back.
      const usage = new SqliteUsageStore(dbA)
      let failNextCommit = false
      const failing: UsageWriter = {
        insertSync: (event) => usage.insertSync(event),
        transaction<A extends unknown[], R>(body: (...args: A) => R) {
          return dbA.transaction((...args: A): R => {
            const result = body(...args)
            if (failNextCommit) {
              failNextCommit = false
              throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
            }
            return result
          })
        },
      }
      const ledgerA = new SqliteLedgerStore(dbA, failing)
      const wallet = await ledgerA.allocate({ orgId: 'org_a', wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const id = newId('rsv', T0)
      failNextCommit = true
      await expect(ledgerA.reserve(reservation(id, 3_000))).rejects.toThrow(/disk I\/O error/)
      expect(await ledgerA.getWallet(wallet.id)).toMatchObject({ reservedMicros: 0, spentMicros: 0 })
      expect(await ledgerA.getReservation('org_a', id)).toBeUndefined()

      // The same id, reserved by process B for another amount, settles here as B's reservation:
      // had A remembered its rolled-back 3,000, it would release the wrong amount.
      expect(await b.ledger.reserve(reservation(id, 5_000))).toMatchObject({ kind: 'reserved' })
      const settled = await ledgerA.settle('org_a', id, micros(1_000), T0 + 2)
      expect(settled).toMatchObject({ kind: 'settled', releasedMicros: 4_000, reservation: { amountMicros: 5_000, settledMicros: 1_000 } })
      expect(await a.ledger.getWallet(wallet.id)).toMatchObject({ reservedMicros: 0, spentMicros: 1_000 })
    }))
})
