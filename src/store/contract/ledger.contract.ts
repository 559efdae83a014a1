/**
 * The LedgerStore contract: every result code, in declaration order, against any backend.
 * Run by each backend's test file (SQLite in-process; PostgreSQL + Redis under test/integration),
 * so adapters cannot disagree about what a reservation means.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { newId } from '../../lib/ids.js'
import { micros, type Micros } from '../../money/index.js'
import type { LedgerStore } from '../../ledger/ledger-store.js'
import type { BudgetCounterRef, ReserveRequest, WalletRef } from '../../ledger/types.js'

export interface LedgerFixture {
  store: LedgerStore
  close(): Promise<void>
}

const T0 = Date.UTC(2026, 10, 15, 12)
const team: WalletRef = { scopeKind: 'team', scopeId: 'marketing' }
const user: WalletRef = { scopeKind: 'user', scopeId: 'ana' }
const org: WalletRef = { scopeKind: 'org', scopeId: 'acme' }

function aReservation(orgId: string, overrides: Partial<ReserveRequest> = {}): ReserveRequest {
  return {
    reservationId: newId('rsv'),
    orgId,
    cascade: [user, team, org],
    walletRequired: true,
    walletCapPercent: 100,
    amountMicros: micros(1_000),
    budgets: [],
    requestId: undefined,
    atMs: T0,
    expiresAtMs: T0 + 60_000,
    ...overrides,
  }
}

function aHardBudget(limitMicros: number): BudgetCounterRef {
  return { budgetId: newId('bud'), periodKey: '2026-11', limitMicros: micros(limitMicros), periodEndMs: T0 + 86_400_000 }
}

export function ledgerContract(backend: string, open: () => Promise<LedgerFixture>): void {
  describe(`LedgerStore contract (${backend})`, () => {
    async function withStore<T>(fn: (store: LedgerStore, orgId: string) => Promise<T>): Promise<T> {
      const fixture = await open()
      try {
        return await fn(fixture.store, `org_${newId('req').slice(4)}`)
      } finally {
        await fixture.close()
      }
    }

    it('allocate creates the wallet once and adds funds with a ledger entry each time', () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: team, amountMicros: micros(5_000_000), description: 'Q4', atMs: T0 })
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(1_000_000), description: undefined, atMs: T0 + 1 })
        expect(wallet).toMatchObject({ allocatedMicros: 6_000_000, availableMicros: 6_000_000, scopeKind: 'team', scopeId: 'marketing' })
        expect(await store.listWallets(orgId)).toHaveLength(1)
        const entries = await store.ledgerEntries(wallet.id, 10)
        expect(entries.map((e) => [e.kind, e.amountMicros])).toEqual([['allocation', 1_000_000], ['allocation', 5_000_000]])
      }))

    it('reserved: the first wallet in the cascade that can cover it pays (user → team → org)', () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: user, amountMicros: micros(500), description: undefined, atMs: T0 })
        await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const result = await store.reserve(aReservation(orgId, { amountMicros: micros(1_000) }))
        expect(result.kind).toBe('reserved')
        if (result.kind !== 'reserved') return
        expect(result.reservation.scope).toBe('team:marketing')
        expect(result.walletAvailableMicros).toBe(9_000)
        const small = await store.reserve(aReservation(orgId, { amountMicros: micros(400) }))
        expect(small.kind === 'reserved' && small.reservation.scope).toBe('user:ana')
      }))

    it('insufficient_quota: no wallet in the cascade can cover it, and nothing is reserved', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(999), description: undefined, atMs: T0 })
        const result = await store.reserve(aReservation(orgId, { amountMicros: micros(1_000) }))
        expect(result).toMatchObject({ kind: 'insufficient_quota', scope: 'team:marketing', availableMicrosMax: 999 })
        expect((await store.getWallet(wallet.id))?.reservedMicros).toBe(0)
        expect(await store.countPending()).toBe(0)
      }))

    it('insufficient_quota: a block threshold below 100% caps what the wallet can pay', () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        expect((await store.reserve(aReservation(orgId, { amountMicros: micros(9_000), walletCapPercent: 90 }))).kind).toBe('reserved')
        expect((await store.reserve(aReservation(orgId, { amountMicros: micros(1), walletCapPercent: 90 }))).kind).toBe('insufficient_quota')
      }))

    it('budget_cap_exceeded: a hard budget refuses what would take it past its limit, exactly at the limit is allowed', () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: team, amountMicros: micros(1_000_000), description: undefined, atMs: T0 })
        const budget = aHardBudget(2_000)
        expect((await store.reserve(aReservation(orgId, { amountMicros: micros(2_000), budgets: [budget] }))).kind).toBe('reserved')
        const over = await store.reserve(aReservation(orgId, { amountMicros: micros(1), budgets: [budget] }))
        expect(over).toMatchObject({ kind: 'budget_cap_exceeded', budgetId: budget.budgetId, remainingMicros: 0 })
      }))

    it('already_exists: reserving the same id twice moves no money', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const request = aReservation(orgId)
        await store.reserve(request)
        expect((await store.reserve(request)).kind).toBe('already_exists')
        expect((await store.getWallet(wallet.id))?.reservedMicros).toBe(1_000)
      }))

    it('settled: charges the actual cost and returns reserved − actual at once', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const request = aReservation(orgId, { amountMicros: micros(3_000) })
        await store.reserve(request)
        const result = await store.settle(request.reservationId, micros(1_200), T0 + 5)
        expect(result).toMatchObject({ kind: 'settled', releasedMicros: 1_800, walletAvailableMicros: 8_800 })
        expect(await store.getWallet(wallet.id)).toMatchObject({ spentMicros: 1_200, reservedMicros: 0, availableMicros: 8_800 })
        const kinds = (await store.ledgerEntries(wallet.id, 10)).map((e) => [e.kind, e.amountMicros])
        expect(kinds).toEqual([['settlement', 1_800], ['reservation', -3_000], ['allocation', 10_000]])
      }))

    it('settled: an actual cost above the reservation is charged only as far as the wallet can cover', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(1_000), description: undefined, atMs: T0 })
        const request = aReservation(orgId, { amountMicros: micros(800) })
        await store.reserve(request)
        const result = await store.settle(request.reservationId, micros(1_500), T0)
        expect(result.kind === 'settled' && result.reservation).toMatchObject({ settledMicros: 1_000, unbilledMicros: 500 })
        expect((await store.getWallet(wallet.id))?.availableMicros).toBe(0)
      }))

    it('voided: returns the whole reservation', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const request = aReservation(orgId)
        await store.reserve(request)
        expect(await store.void(request.reservationId, T0)).toMatchObject({ kind: 'voided', releasedMicros: 1_000 })
        expect(await store.getWallet(wallet.id)).toMatchObject({ availableMicros: 10_000, spentMicros: 0 })
      }))

    it('expired: an overdue reservation is settled at the reserved amount by the sweeper', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const request = aReservation(orgId, { amountMicros: micros(2_500), expiresAtMs: T0 + 1_000 })
        await store.reserve(request)
        expect(await store.expireOverdue(T0 + 999, 10)).toHaveLength(0)
        const expired = await store.expireOverdue(T0 + 1_000, 10)
        expect(expired.map((r) => r.kind)).toEqual(['expired'])
        expect(await store.getReservation(request.reservationId)).toMatchObject({ status: 'expired', settledMicros: 2_500 })
        expect(await store.getWallet(wallet.id)).toMatchObject({ spentMicros: 2_500, reservedMicros: 0 })
        expect(await store.countPending()).toBe(0)
      }))

    it('already_settled / already_voided / already_expired: resolving twice moves no money', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const settled = aReservation(orgId)
        const voided = aReservation(orgId)
        const expired = aReservation(orgId, { expiresAtMs: T0 })
        for (const r of [settled, voided, expired]) await store.reserve(r)
        await store.settle(settled.reservationId, micros(500), T0)
        await store.void(voided.reservationId, T0)
        await store.expireOverdue(T0, 10)
        expect((await store.settle(settled.reservationId, micros(1), T0)).kind).toBe('already_settled')
        expect((await store.void(settled.reservationId, T0)).kind).toBe('already_settled')
        expect((await store.settle(voided.reservationId, micros(1), T0)).kind).toBe('already_voided')
        expect((await store.void(expired.reservationId, T0)).kind).toBe('already_expired')
        expect(await store.getWallet(wallet.id)).toMatchObject({ spentMicros: 1_500, reservedMicros: 0, availableMicros: 8_500 })
      }))

    it('not_found: settling or voiding an unknown reservation', () =>
      withStore(async (store) => {
        expect((await store.settle('rsv_missing', micros(1), T0)).kind).toBe('not_found')
        expect((await store.void('rsv_missing', T0)).kind).toBe('not_found')
      }))

    it('budget counters: settle reports the crossing of every matched budget; recordSpend counts spend without a reservation', () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const soft: BudgetCounterRef = { ...aHardBudget(0), limitMicros: undefined }
        const request = aReservation(orgId, { budgets: [soft] })
        await store.reserve(request)
        const settled = await store.settle(request.reservationId, micros(700), T0)
        expect(settled.kind === 'settled' && settled.budgetCrossings).toEqual([
          { budgetId: soft.budgetId, periodKey: '2026-11', spentBeforeMicros: 0, spentAfterMicros: 700 },
        ])
        expect(await store.recordSpend([soft], micros(300))).toEqual([
          { budgetId: soft.budgetId, periodKey: '2026-11', spentBeforeMicros: 700, spentAfterMicros: 1_000 },
        ])
        const spend = await store.budgetSpend([soft])
        expect([...spend.values()]).toEqual([{ spentMicros: 1_000, reservedMicros: 0 }])
      }))

    it('reserves with no wallet when enforcement is off, still holding hard budgets', () =>
      withStore(async (store, orgId) => {
        const budget = aHardBudget(1_500)
        const first = await store.reserve(aReservation(orgId, { walletRequired: false, budgets: [budget] }))
        expect(first.kind === 'reserved' && first.reservation.walletId).toBeUndefined()
        expect((await store.reserve(aReservation(orgId, { walletRequired: false, budgets: [budget] }))).kind).toBe('budget_cap_exceeded')
      }))

    it('money invariants hold for any interleaving of reserve/settle/void/expire (property)', async () => {
      type Op =
        | { op: 'reserve'; amount: number }
        | { op: 'settle'; index: number; actual: number }
        | { op: 'void'; index: number }
        | { op: 'expire' }
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        fc.record({ op: fc.constant('reserve' as const), amount: fc.integer({ min: 0, max: 4_000 }) }),
        fc.record({ op: fc.constant('settle' as const), index: fc.nat(30), actual: fc.integer({ min: 0, max: 5_000 }) }),
        fc.record({ op: fc.constant('void' as const), index: fc.nat(30) }),
        fc.record({ op: fc.constant('expire' as const) }),
      )
      await withStore(async (store, baseOrg) => {
        let run = 0
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 20_000 }), fc.array(opArb, { maxLength: 40 }), async (allocated, ops) => {
            const orgId = `${baseOrg}_${run++}`
            const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(allocated), description: undefined, atMs: T0 })
            const ids: { id: string; amount: Micros }[] = []
            let clock = T0
            // Actors race: ops are issued concurrently in small groups, as concurrent requests would.
            for (let i = 0; i < ops.length; i += 4) {
              await Promise.all(
                ops.slice(i, i + 4).map(async (op) => {
                  clock += 10
                  if (op.op === 'reserve') {
                    const request = aReservation(orgId, { cascade: [team], amountMicros: micros(op.amount), atMs: clock, expiresAtMs: clock + 25 })
                    const before = await store.getWallet(wallet.id)
                    const result = await store.reserve(request)
                    if (result.kind === 'reserved') ids.push({ id: request.reservationId, amount: request.amountMicros })
                    else expect(result.kind).toBe('insufficient_quota')
                    if (result.kind === 'insufficient_quota' && before) expect(before.availableMicros).toBeLessThanOrEqual(allocated)
                  } else if (op.op === 'settle' || op.op === 'void') {
                    const target = ids[op.index % Math.max(ids.length, 1)]
                    if (!target) return
                    const result = op.op === 'settle' ? await store.settle(target.id, micros(op.actual), clock) : await store.void(target.id, clock)
                    if (result.kind === 'settled') expect(result.releasedMicros).toBe(target.amount - result.reservation.settledMicros!)
                    if (result.kind === 'settled' && op.op === 'settle' && op.actual <= target.amount) expect(result.releasedMicros).toBe(target.amount - op.actual)
                  } else {
                    for (const r of await store.expireOverdue(clock, 50)) {
                      if (r.kind === 'expired') expect(r.reservation.settledMicros).toBe(r.reservation.amountMicros)
                    }
                  }
                }),
              )
            }
            const after = (await store.getWallet(wallet.id))!
            expect(after.availableMicros).toBeGreaterThanOrEqual(0)
            expect(after.reservedMicros + after.spentMicros + after.availableMicros).toBe(allocated)
            let pendingSum = 0
            let chargedSum = 0
            for (const { id } of ids) {
              const r = (await store.getReservation(id))!
              if (r.status === 'pending') pendingSum += r.amountMicros
              else chargedSum += r.settledMicros!
            }
            expect(after.reservedMicros).toBe(pendingSum)
            expect(after.spentMicros).toBe(chargedSum)
            const entrySum = (await store.ledgerEntries(wallet.id, 10_000)).reduce((sum, e) => sum + e.amountMicros, 0)
            expect(entrySum).toBe(after.availableMicros)
          }),
          { numRuns: 60 },
        )
      })
    })
  })
}
