/**
 * The LedgerStore contract: every result code, in declaration order, against any backend.
 * Run by each backend's test file (SQLite in-process; PostgreSQL + Redis under test/integration),
 * so adapters cannot disagree about what a reservation means.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { newId } from '../../lib/ids.js'
import { micros, type Micros } from '../../money/index.js'
import { counterKey, type LedgerStore } from '../../ledger/ledger-store.js'
import type { BudgetCounterRef, ReserveRequest, WalletRef } from '../../ledger/types.js'
import { AllocationRefused } from '../../ledger/errors.js'
import type { UsageEvent } from '../../usage/types.js'

export interface StoredUsage {
  readonly id: string
  readonly costMicros: number
  readonly reservationId: string | undefined
  readonly externalRequestId: string | undefined
}

export interface LedgerFixture {
  store: LedgerStore
  /** The usage events the store holds for an org (after any journal is applied). */
  usageEvents(orgId: string): Promise<StoredUsage[]>
  close(): Promise<void>
}

/** A usage event as the proxy or ingestion would commit it. */
export function aUsageEvent(orgId: string, overrides: Partial<UsageEvent> = {}): UsageEvent {
  return {
    id: newId('evt'),
    requestId: newId('req'),
    atMs: T0,
    attribution: {
      orgId,
      teamId: 'marketing',
      userId: undefined,
      userFromKey: false,
      agentId: undefined,
      keyName: 'svc',
      endpointTag: undefined,
      promptVersion: undefined,
      environment: 'prod',
    },
    provider: 'openai',
    targetId: 'openai',
    modelRequested: 'gpt-4o-mini',
    modelServed: 'gpt-4o-mini',
    endpoint: 'chat_completions',
    usage: {
      inputTokens: 10,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      cacheWrite1hTokens: 0,
      outputTokens: 5,
      reasoningTokens: 0,
      audioInputTokens: 0,
      audioOutputTokens: 0,
    },
    usageSource: 'reported',
    usageNote: undefined,
    costBreakdown: undefined,
    costMicros: micros(0),
    priceSource: 'test',
    latencyMs: 1,
    status: 'ok',
    httpStatus: 200,
    isStream: false,
    decision: 'allowed',
    reservationId: undefined,
    walletId: undefined,
    dataMode: 'real',
    source: 'gateway',
    externalRequestId: undefined,
    ...overrides,
  }
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
    async function withStore<T>(fn: (store: LedgerStore, orgId: string, fixture: LedgerFixture) => Promise<T>): Promise<T> {
      const fixture = await open()
      try {
        return await fn(fixture.store, `org_${newId('req').slice(4)}`, fixture)
      } finally {
        await fixture.close()
      }
    }

    it('commit: a settlement and its usage event are one step; a second settle records no second event', () =>
      withStore(async (store, orgId, fixture) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const request = aReservation(orgId, { amountMicros: micros(3_000) })
        await store.reserve(request)
        const event = aUsageEvent(orgId, { costMicros: micros(1_234), reservationId: request.reservationId })
        const committed = await store.commit({
          orgId,
          atMs: T0 + 5,
          event,
          resolve: { reservationId: request.reservationId, outcome: 'settled', actualMicros: micros(1_234) },
        })
        expect(committed).toMatchObject({ kind: 'committed', resolution: { kind: 'settled', releasedMicros: 1_766 } })
        const again = await store.commit({
          orgId,
          atMs: T0 + 6,
          event: aUsageEvent(orgId, { costMicros: micros(1_234) }),
          resolve: { reservationId: request.reservationId, outcome: 'settled', actualMicros: micros(1_234) },
        })
        expect(again).toMatchObject({ kind: 'committed', resolution: { kind: 'already_settled' } })
        expect(await fixture.usageEvents(orgId)).toEqual([
          { id: event.id, costMicros: 1_234, reservationId: request.reservationId, externalRequestId: undefined },
        ])
        expect(await store.getWallet(wallet.id)).toMatchObject({ spentMicros: 1_234, reservedMicros: 0 })
      }))

    it('commit: an unreserved call counts its spend on budget counters with its event; an ingested duplicate changes nothing', () =>
      withStore(async (store, orgId, fixture) => {
        const soft: BudgetCounterRef = { ...aHardBudget(0), limitMicros: undefined }
        const first = aUsageEvent(orgId, { costMicros: micros(500), externalRequestId: 'ext-1', source: 'ingest', endpoint: 'ingested' })
        const ingested = await store.commit({ orgId, atMs: T0, event: first, spend: { budgets: [soft], amountMicros: micros(500) }, dedupeExternalId: true })
        expect(ingested).toMatchObject({ kind: 'committed', budgetCrossings: [{ spentBeforeMicros: 0, spentAfterMicros: 500 }] })
        const replay = aUsageEvent(orgId, { costMicros: micros(500), externalRequestId: 'ext-1', source: 'ingest', endpoint: 'ingested' })
        expect(
          await store.commit({ orgId, atMs: T0 + 1, event: replay, spend: { budgets: [soft], amountMicros: micros(500) }, dedupeExternalId: true }),
        ).toEqual({ kind: 'duplicate' })
        expect([...(await store.budgetSpend(orgId, [soft])).values()]).toEqual([{ spentMicros: 500, reservedMicros: 0 }])
        expect((await fixture.usageEvents(orgId)).map((e) => e.id)).toEqual([first.id])
      }))

    it('an ingested external id is unique per team: each team, and the keys of no team, store and count the same id once, under concurrency', () =>
      withStore(async (store, orgId, fixture) => {
        const teams = ['marketing', 'engineering', undefined]
        const budgets = teams.map(() => ({ ...aHardBudget(0), limitMicros: undefined }))
        const ingested = (t: number) => {
          const event = aUsageEvent(orgId, { costMicros: micros(500), externalRequestId: 'ext-shared', source: 'ingest', endpoint: 'ingested' })
          return { event: { ...event, attribution: { ...event.attribution, teamId: teams[t] } }, budgets: [budgets[t]!] }
        }
        // Every team sends the id many times at once, one event at a time and in batches holding it twice.
        const attempts = await Promise.all(
          teams.flatMap((_, t) => [
            ...Array.from({ length: 4 }, async () => {
              const { event, budgets } = ingested(t)
              const result = await store.commit({ orgId, atMs: T0, event, spend: { budgets, amountMicros: event.costMicros }, dedupeExternalId: true })
              return [{ t, id: event.id, stored: result.kind === 'committed' }]
            }),
            ...Array.from({ length: 4 }, async () => {
              const batch = [ingested(t), ingested(t)]
              const { stored } = await store.commitIngested({ atMs: T0, events: batch })
              return batch.map(({ event }, k) => ({ t, id: event.id, stored: stored[k]! }))
            }),
          ]),
        )
        const stored = attempts.flat().filter((a) => a.stored)
        expect(stored.map((a) => a.t).sort()).toEqual([0, 1, 2])
        const spend = await store.budgetSpend(orgId, budgets)
        expect(budgets.map((b) => spend.get(counterKey(b.budgetId, b.periodKey))?.spentMicros)).toEqual([500, 500, 500])
        expect((await fixture.usageEvents(orgId)).map((e) => e.id).sort()).toEqual(stored.map((a) => a.id).sort())
      }))

    it('an ingested id is told apart from another team’s however both are spelled (team ids and ids holding ":")', () =>
      withStore(async (store, orgId, fixture) => {
        const ingested = (teamId: string, externalRequestId: string) => {
          const event = aUsageEvent(orgId, { externalRequestId, source: 'ingest', endpoint: 'ingested' })
          return { event: { ...event, attribution: { ...event.attribution, teamId } }, budgets: [] }
        }
        const events = [ingested('eu:ops', 'run-7'), ingested('eu', 'ops:run-7'), ingested('eu%3Aops', 'run-7')]
        expect((await store.commitIngested({ atMs: T0, events })).stored).toEqual([true, true, true])
        expect((await fixture.usageEvents(orgId)).map((e) => e.id).sort()).toEqual(events.map(({ event }) => event.id).sort())
      }))

    it("a user named by a call spends only a user wallet of its key's team (teamOf)", () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: user, teamId: 'engineering', amountMicros: micros(10_000), description: undefined, atMs: T0 })
        await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const named = await store.reserve(aReservation(orgId, { cascade: [{ ...user, teamOf: 'marketing' }, team] }))
        expect(named.kind === 'reserved' && named.reservation.scope).toBe('team:marketing')
        const own = await store.reserve(aReservation(orgId, { cascade: [{ ...user, teamOf: 'engineering' }, team] }))
        expect(own.kind === 'reserved' && own.reservation.scope).toBe('user:ana')
        const bound = await store.reserve(aReservation(orgId, { cascade: [user, team] }))
        expect(bound.kind === 'reserved' && bound.reservation.scope).toBe('user:ana')
      }))

    it('allocations stay inside the money bound, and a user wallet keeps its team', () =>
      withStore(async (store, orgId) => {
        const max = 1_000_000_000_000_000
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(max), description: undefined, atMs: T0 })
        await expect(store.allocate({ orgId, wallet: team, amountMicros: micros(1), description: undefined, atMs: T0 })).rejects.toBeInstanceOf(
          AllocationRefused,
        )
        expect((await store.getWallet(wallet.id))?.allocatedMicros).toBe(max)
        // A wallet at the maximum still pays (its cap arithmetic does not overflow).
        expect((await store.reserve(aReservation(orgId, { cascade: [team], amountMicros: micros(max) }))).kind).toBe('reserved')
        await store.allocate({ orgId, wallet: user, teamId: 'marketing', amountMicros: micros(1), description: undefined, atMs: T0 })
        await expect(
          store.allocate({ orgId, wallet: user, teamId: 'engineering', amountMicros: micros(1), description: undefined, atMs: T0 }),
        ).rejects.toMatchObject({ reason: 'team_mismatch' })
      }))

    it('allocate creates the wallet once and adds funds with a ledger entry each time', () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: team, amountMicros: micros(5_000_000), description: 'Q4', atMs: T0 })
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(1_000_000), description: undefined, atMs: T0 + 1 })
        expect(wallet).toMatchObject({ allocatedMicros: 6_000_000, availableMicros: 6_000_000, scopeKind: 'team', scopeId: 'marketing' })
        expect(await store.listWallets(orgId)).toHaveLength(1)
        const entries = await store.ledgerEntries(wallet.id, 10)
        expect(entries.map((e) => [e.kind, e.amountMicros])).toEqual([
          ['allocation', 1_000_000],
          ['allocation', 5_000_000],
        ])
      }))

    it('each allocation records the spend at it: settles report it, and a wallet that spent since is listed until the next one', () =>
      withStore(async (store, orgId) => {
        const ofOrg = async () => (await store.walletsSpentSinceAllocation()).filter((w) => w.orgId === orgId)
        const first = await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        expect(first.spentAtAllocationMicros).toBe(0)
        // A funded wallet that has not spent is not listed.
        await store.allocate({ orgId, wallet: org, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        expect(await ofOrg()).toEqual([])

        const spend = async (amount: number) => {
          const request = aReservation(orgId, { cascade: [team], amountMicros: micros(amount) })
          expect((await store.reserve(request)).kind).toBe('reserved')
          const result = await store.settle(orgId, request.reservationId, micros(amount), T0 + 1)
          return result.kind === 'settled' ? result.walletCrossing : undefined
        }
        expect(await spend(1_200)).toEqual({
          walletId: first.id,
          scope: 'team:marketing',
          teamId: 'marketing',
          allocatedMicros: 10_000,
          spentBeforeMicros: 0,
          spentAfterMicros: 1_200,
          spentAtAllocationMicros: 0,
        })
        expect(await ofOrg()).toEqual([expect.objectContaining({ id: first.id, allocatedMicros: 10_000, spentMicros: 1_200, spentAtAllocationMicros: 0 })])

        // A top-up records the spend at it: nothing spent since, nothing listed.
        const toppedUp = await store.allocate({ orgId, wallet: team, amountMicros: micros(5_000), description: undefined, atMs: T0 + 2 })
        expect(toppedUp).toMatchObject({ allocatedMicros: 15_000, spentAtAllocationMicros: 1_200 })
        expect(await store.getWallet(first.id)).toMatchObject({ spentAtAllocationMicros: 1_200 })
        expect(await ofOrg()).toEqual([])
        expect(await spend(300)).toMatchObject({ allocatedMicros: 15_000, spentBeforeMicros: 1_200, spentAfterMicros: 1_500, spentAtAllocationMicros: 1_200 })
        expect((await store.listWallets(orgId)).find((w) => w.id === first.id)).toMatchObject({ spentMicros: 1_500, spentAtAllocationMicros: 1_200 })
        expect((await ofOrg()).map((w) => w.id)).toEqual([first.id])
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
        const result = await store.settle(orgId, request.reservationId, micros(1_200), T0 + 5)
        expect(result).toMatchObject({ kind: 'settled', releasedMicros: 1_800, walletAvailableMicros: 8_800 })
        expect(await store.getWallet(wallet.id)).toMatchObject({ spentMicros: 1_200, reservedMicros: 0, availableMicros: 8_800 })
        const kinds = (await store.ledgerEntries(wallet.id, 10)).map((e) => [e.kind, e.amountMicros])
        expect(kinds).toEqual([
          ['settlement', 1_800],
          ['reservation', -3_000],
          ['allocation', 10_000],
        ])
      }))

    it('settled: an actual cost above the reservation is charged only as far as the wallet can cover', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(1_000), description: undefined, atMs: T0 })
        const request = aReservation(orgId, { amountMicros: micros(800) })
        await store.reserve(request)
        const result = await store.settle(orgId, request.reservationId, micros(1_500), T0)
        expect(result.kind === 'settled' && result.reservation).toMatchObject({ settledMicros: 1_000, unbilledMicros: 500 })
        expect((await store.getWallet(wallet.id))?.availableMicros).toBe(0)
      }))

    it('voided: returns the whole reservation', () =>
      withStore(async (store, orgId) => {
        const wallet = await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const request = aReservation(orgId)
        await store.reserve(request)
        expect(await store.void(orgId, request.reservationId, T0)).toMatchObject({ kind: 'voided', releasedMicros: 1_000 })
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
        expect(await store.getReservation(orgId, request.reservationId)).toMatchObject({ status: 'expired', settledMicros: 2_500 })
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
        await store.settle(orgId, settled.reservationId, micros(500), T0)
        await store.void(orgId, voided.reservationId, T0)
        await store.expireOverdue(T0, 10)
        expect((await store.settle(orgId, settled.reservationId, micros(1), T0)).kind).toBe('already_settled')
        expect((await store.void(orgId, settled.reservationId, T0)).kind).toBe('already_settled')
        expect((await store.settle(orgId, voided.reservationId, micros(1), T0)).kind).toBe('already_voided')
        expect((await store.void(orgId, expired.reservationId, T0)).kind).toBe('already_expired')
        expect(await store.getWallet(wallet.id)).toMatchObject({ spentMicros: 1_500, reservedMicros: 0, availableMicros: 8_500 })
      }))

    it('not_found: settling or voiding an unknown reservation', () =>
      withStore(async (store, orgId) => {
        expect((await store.settle(orgId, 'rsv_missing', micros(1), T0)).kind).toBe('not_found')
        expect((await store.void(orgId, 'rsv_missing', T0)).kind).toBe('not_found')
      }))

    it('budget counters: settle reports the crossing of every matched budget; recordSpend counts spend without a reservation', () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const soft: BudgetCounterRef = { ...aHardBudget(0), limitMicros: undefined }
        const request = aReservation(orgId, { budgets: [soft] })
        await store.reserve(request)
        const settled = await store.settle(orgId, request.reservationId, micros(700), T0)
        expect(settled.kind === 'settled' && settled.budgetCrossings).toEqual([
          { budgetId: soft.budgetId, periodKey: '2026-11', spentBeforeMicros: 0, spentAfterMicros: 700 },
        ])
        expect(await store.recordSpend(orgId, [soft], micros(300))).toEqual([
          { budgetId: soft.budgetId, periodKey: '2026-11', spentBeforeMicros: 700, spentAfterMicros: 1_000 },
        ])
        const spend = await store.budgetSpend(orgId, [soft])
        expect([...spend.values()]).toEqual([{ spentMicros: 1_000, reservedMicros: 0 }])
      }))

    it('commit: a settlement counts its charge toward budgets that joined the call, in the same step; a void or a second settle counts nothing there', () =>
      withStore(async (store, orgId) => {
        await store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
        const reservedAgainst = aHardBudget(100_000)
        const joined: BudgetCounterRef = { ...aHardBudget(0), limitMicros: undefined }
        expect(await store.recordSpend(orgId, [joined], micros(100))).toHaveLength(1)
        const request = aReservation(orgId, { amountMicros: micros(3_000), budgets: [reservedAgainst] })
        await store.reserve(request)
        const settle = { reservationId: request.reservationId, outcome: 'settled', actualMicros: micros(1_234), alsoCount: [joined] } as const
        const committed = await store.commit({ orgId, atMs: T0 + 5, event: aUsageEvent(orgId, { costMicros: micros(1_234) }), resolve: settle })
        const crossings = [
          { budgetId: reservedAgainst.budgetId, periodKey: '2026-11', spentBeforeMicros: 0, spentAfterMicros: 1_234 },
          { budgetId: joined.budgetId, periodKey: '2026-11', spentBeforeMicros: 100, spentAfterMicros: 1_334 },
        ]
        expect(committed).toMatchObject({ kind: 'committed', resolution: { kind: 'settled', budgetCrossings: crossings }, budgetCrossings: crossings })
        // Settled again, or another call voided: the joined budget keeps what it had.
        expect(await store.commit({ orgId, atMs: T0 + 6, event: undefined, resolve: settle })).toMatchObject({
          resolution: { kind: 'already_settled' },
          budgetCrossings: [],
        })
        const voided = aReservation(orgId, { budgets: [reservedAgainst] })
        await store.reserve(voided)
        await store.commit({
          orgId,
          atMs: T0 + 7,
          event: undefined,
          resolve: { reservationId: voided.reservationId, outcome: 'voided', actualMicros: micros(0), alsoCount: [joined] },
        })
        const spend = await store.budgetSpend(orgId, [reservedAgainst, joined])
        expect([...spend.values()]).toEqual([
          { spentMicros: 1_234, reservedMicros: 0 },
          { spentMicros: 1_334, reservedMicros: 0 },
        ])
      }))

    it('reserves with no wallet when enforcement is off, still holding hard budgets', () =>
      withStore(async (store, orgId) => {
        const budget = aHardBudget(1_500)
        const first = await store.reserve(aReservation(orgId, { walletRequired: false, budgets: [budget] }))
        expect(first.kind === 'reserved' && first.reservation.walletId).toBeUndefined()
        expect((await store.reserve(aReservation(orgId, { walletRequired: false, budgets: [budget] }))).kind).toBe('budget_cap_exceeded')
      }))

    it('money invariants hold for any interleaving of reserve/settle/void/expire (property)', async () => {
      type Op = { op: 'reserve'; amount: number } | { op: 'settle'; index: number; actual: number } | { op: 'void'; index: number } | { op: 'expire' }
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
                    const result = await store.reserve(request)
                    if (result.kind === 'reserved') ids.push({ id: request.reservationId, amount: request.amountMicros })
                    else expect(result).toMatchObject({ kind: 'insufficient_quota' })
                    // A refusal is a real shortfall: what the wallet could still pay is below the amount asked.
                    if (result.kind === 'insufficient_quota') expect(result.availableMicrosMax).toBeLessThan(request.amountMicros)
                  } else if (op.op === 'settle' || op.op === 'void') {
                    const target = ids[op.index % Math.max(ids.length, 1)]
                    if (!target) return
                    const result =
                      op.op === 'settle' ? await store.settle(orgId, target.id, micros(op.actual), clock) : await store.void(orgId, target.id, clock)
                    if (result.kind === 'settled') expect(result.releasedMicros).toBe(target.amount - result.reservation.settledMicros!)
                    if (result.kind === 'settled' && op.op === 'settle' && op.actual <= target.amount)
                      expect(result.releasedMicros).toBe(target.amount - op.actual)
                  } else {
                    for (const r of await store.expireOverdue(clock, 50)) {
                      if (r.kind === 'expired') expect(r.reservation.settledMicros).toBe(r.reservation.amountMicros)
                    }
                  }
                }),
              )
            }
            const after = (await store.getWallet(wallet.id))!
            expect(after.reservedMicros + after.spentMicros + after.availableMicros).toBe(allocated)
            let pendingSum = 0
            let chargedSum = 0
            for (const { id } of ids) {
              const r = (await store.getReservation(orgId, id))!
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
