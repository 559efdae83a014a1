/**
 * A group commit reads the wallet and budget-counter rows once and writes them back once
 * (money-rows.ts). The property: any run of money moves queued together — reservations against
 * hard budgets and a wallet cascade, settles above and below the reserved amount, voids, second
 * settles, allocations between them, plain spend — gives every caller the same answer, and leaves
 * the same wallets, counters, ledger entries and reservations, as the same moves run with every
 * row change its own statement. The reference run gets there by adding one move that throws:
 * the whole transaction rolls back and the moves run again each in its own savepoint, uncached.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { micros } from '../../money/index.js'
import type { BudgetCounterRef, ReserveRequest, WalletRef } from '../../ledger/types.js'
import { openSqlite, type SqliteDatabase } from './db.js'
import { sqliteMigrations } from './index.js'
import { SqliteLedgerStore } from './ledger-store.js'
import { SqliteUsageStore } from './usage-store.js'

const T0 = Date.UTC(2026, 10, 15, 12)
const SCOPES: readonly WalletRef[] = [
  { scopeKind: 'user', scopeId: 'ana' },
  { scopeKind: 'team', scopeId: 'growth' },
  { scopeKind: 'org', scopeId: 'acme' },
]

type Move =
  | { readonly kind: 'reserve'; readonly amount: number; readonly budgets: readonly number[]; readonly cascadeFrom: number; readonly capPercent: number }
  | { readonly kind: 'settle'; readonly reservation: number; readonly actual: number }
  | { readonly kind: 'void'; readonly reservation: number }
  | { readonly kind: 'allocate'; readonly scope: number; readonly amount: number }
  | { readonly kind: 'spend'; readonly budgets: readonly number[]; readonly amount: number }

const moveArbitrary: fc.Arbitrary<Move> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      amount: fc.integer({ min: 0, max: 4_000 }),
      budgets: fc.uniqueArray(fc.integer({ min: 0, max: 2 }), { maxLength: 3 }),
      cascadeFrom: fc.integer({ min: 0, max: 2 }),
      capPercent: fc.constantFrom(50, 100),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('settle' as const), reservation: fc.nat(), actual: fc.integer({ min: 0, max: 6_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('void' as const), reservation: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('allocate' as const), scope: fc.integer({ min: 0, max: 2 }), amount: fc.integer({ min: 1, max: 5_000 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('spend' as const),
      budgets: fc.uniqueArray(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 3 }),
      amount: fc.integer({ min: 1, max: 3_000 }),
    }),
  },
)

describe('SQLite group commit: wallet and counter rows cached for the transaction', () => {
  let db: SqliteDatabase
  let ledger: SqliteLedgerStore

  beforeAll(() => {
    db = openSqlite(':memory:', sqliteMigrations)
    ledger = new SqliteLedgerStore(db, new SqliteUsageStore(db))
  })
  afterAll(() => db.close())

  let run = 0
  it('answers and leaves the same rows as the same moves run one statement at a time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 8_000 }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.integer({ min: 500, max: 12_000 }), { minLength: 3, maxLength: 3 }),
        fc.array(moveArbitrary, { minLength: 1, maxLength: 30 }),
        async (funding, limits, moves) => {
          const outcome = async (reference: boolean) => {
            const orgId = `org_m${run++}`
            // Each run its own org and budgets; the same amounts, ids and order in both.
            const budgets: BudgetCounterRef[] = limits.map((limit, i) => ({
              budgetId: `${orgId}_bud${i}`,
              periodKey: '2026-11',
              limitMicros: micros(limit),
              periodEndMs: T0 + 86_400_000,
            }))
            for (const [i, amount] of funding.entries()) {
              if (amount > 0) await ledger.allocate({ orgId, wallet: SCOPES[i]!, amountMicros: micros(amount), description: undefined, atMs: T0 })
            }
            const reservations: string[] = []
            const queued: Array<Promise<unknown>> = []
            for (const [i, move] of moves.entries()) queued.push(queue(ledger, orgId, budgets, reservations, move, i))
            if (reference) queued.push(ledger.allocate({ orgId, wallet: SCOPES[0]!, amountMicros: micros(0), description: undefined, atMs: T0 }))
            const answers = await Promise.allSettled(queued)
            if (reference) expect(answers.pop()?.status).toBe('rejected')
            return { answers: answers.map((a) => (a.status === 'fulfilled' ? anonymous(a.value, orgId) : 'rejected')), rows: rowsOf(db, orgId) }
          }
          const batched = await outcome(false)
          const reference = await outcome(true)
          expect(batched).toEqual(reference)
        },
      ),
      { numRuns: 150 },
    )
  })
})

/** Queues one move without awaiting it, so all of a run's moves go into one group commit. */
function queue(
  ledger: SqliteLedgerStore,
  orgId: string,
  budgets: readonly BudgetCounterRef[],
  reservations: string[],
  move: Move,
  i: number,
): Promise<unknown> {
  const reservationId = (n: number) => reservations[n % Math.max(1, reservations.length)] ?? `${orgId}_rsv_missing`
  switch (move.kind) {
    case 'reserve': {
      const id = `${orgId}_rsv${i}`
      reservations.push(id)
      const request: ReserveRequest = {
        reservationId: id,
        orgId,
        cascade: SCOPES.slice(move.cascadeFrom),
        walletRequired: true,
        walletCapPercent: move.capPercent,
        amountMicros: micros(move.amount),
        budgets: move.budgets.map((b) => budgets[b]!),
        requestId: undefined,
        atMs: T0 + i,
        expiresAtMs: T0 + 60_000,
      }
      return ledger.reserve(request)
    }
    case 'settle':
      return ledger.commit({
        orgId,
        atMs: T0 + i,
        event: undefined,
        resolve: { reservationId: reservationId(move.reservation), outcome: 'settled', actualMicros: micros(move.actual) },
      })
    case 'void':
      return ledger.void(orgId, reservationId(move.reservation), T0 + i)
    case 'allocate':
      return ledger.allocate({ orgId, wallet: SCOPES[move.scope]!, amountMicros: micros(move.amount), description: undefined, atMs: T0 + i })
    case 'spend':
      return ledger.recordSpend(
        orgId,
        move.budgets.map((b) => budgets[b]!),
        micros(move.amount),
      )
  }
}

/** The org's name and generated wallet ids replaced, so two runs in two orgs compare equal. */
function anonymous(value: unknown, orgId: string): unknown {
  return JSON.parse(
    JSON.stringify(value ?? null)
      .replaceAll(orgId, 'ORG')
      .replace(/wal_[0-9a-z]+/g, 'WAL'),
  )
}

function rowsOf(db: SqliteDatabase, orgId: string): unknown {
  const all = (sql: string) => db.prepare(sql).all(orgId)
  return anonymous(
    {
      wallets: all('SELECT scope_kind, scope_id, allocated_micros, reserved_micros, spent_micros FROM wallets WHERE org_id = ? ORDER BY scope_kind, scope_id'),
      entries: all(
        `SELECT w.scope_kind, w.scope_id, e.kind, e.amount_micros, e.reservation_id, e.at_ms FROM ledger_entries e JOIN wallets w ON w.id = e.wallet_id
         WHERE w.org_id = ? ORDER BY e.seq`,
      ),
      counters: db
        .prepare(
          "SELECT budget_id, period_key, reserved_micros, spent_micros, period_end_ms FROM budget_counters WHERE budget_id LIKE ? || '%' ORDER BY budget_id",
        )
        .all(orgId),
      reservations: all(
        'SELECT id, wallet_id, scope, amount_micros, status, settled_micros, unbilled_micros, resolved_at_ms FROM reservations WHERE org_id = ? ORDER BY id',
      ),
    },
    orgId,
  )
}
