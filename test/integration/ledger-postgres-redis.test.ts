/**
 * The LedgerStore contract (src/store/contract/ledger.contract.ts) against PostgreSQL + Redis:
 * the same suite SQLite passes. Each test gets a fresh Redis key prefix and its own orgs; the
 * schema is shared by the file (migrated once).
 */
import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newId } from '../../src/lib/ids.js'
import { micros } from '../../src/money/index.js'
import type { ReserveRequest, WalletRef } from '../../src/ledger/types.js'
import { aUsageEvent, ledgerContract } from '../../src/store/contract/ledger.contract.js'
import { openRedisLedger } from '../../src/store/postgres-redis.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { JOURNAL_GROUP } from '../../src/store/redis/lua.js'
import { USAGE_COLUMNS, usageRow } from '../../src/store/sqlite/usage-store.js'
import { migratePostgres } from '../../src/store/postgres/db.js'
import { describeWithBoth, postgresService, postgresSkipReason, redisService, redisSkipReason, type PostgresService } from '../support/services.js'
import { until } from './hard-caps-support.js'
import { hostPort, startTcpProxy, viaPort, type TcpProxy } from './scale-support.js'

const skip = redisSkipReason() ?? postgresSkipReason()

/** A wallet's spent and reserved micro-USD as PostgreSQL holds them. */
async function walletInPostgres(db: pg.Pool | pg.Client, walletId: string): Promise<Array<{ spent: number; reserved: number }>> {
  const { rows } = await db.query<{ spent: number; reserved: number }>(
    'SELECT spent_micros::float8 AS spent, reserved_micros::float8 AS reserved FROM wallets WHERE id = $1',
    [walletId],
  )
  return rows
}

if (skip !== undefined) {
  describe('LedgerStore contract (postgres+redis)', () => it.skip(`skipped: ${skip}`, () => {}))
} else {
  let pg: PostgresService | undefined
  beforeAll(async () => {
    const service = await postgresService()
    if ('skip' in service) throw new Error(service.reason)
    pg = service
    await migratePostgres(pg.url)
  })
  afterAll(async () => {
    await pg?.stop()
  })

  ledgerContract('postgres+redis', async () => {
    const redis = await redisService()
    if ('skip' in redis) throw new Error(redis.reason)
    const ledger = await openRedisLedger({ postgresUrl: pg!.url, redisUrl: redis.url, keyPrefix: redis.prefix })
    return {
      store: ledger.store,
      usageEvents: async (orgId) => {
        await ledger.store.drain.flush()
        const { rows } = await ledger.pool.query<{ id: string; cost_micros: number; reservation_id: string | null; external_request_id: string | null }>(
          'SELECT id, cost_micros, reservation_id, external_request_id FROM usage_events WHERE org_id = $1 ORDER BY at_ms, id',
          [orgId],
        )
        return rows.map((r) => ({
          id: r.id,
          costMicros: r.cost_micros,
          reservationId: r.reservation_id ?? undefined,
          externalRequestId: r.external_request_id ?? undefined,
        }))
      },
      close: async () => {
        await ledger.close()
        await redis.stop()
      },
    }
  })
}

/**
 * What only the Redis + PostgreSQL ledger has: round trips per call, the rebuild from
 * PostgreSQL, reconciliation, and the fail modes when Redis is unreachable (cut with a TCP proxy).
 */
describeWithBoth('Redis + PostgreSQL ledger: rebuild, reconciliation, fail modes', (ctx) => {
  const T0 = Date.UTC(2026, 10, 15, 12)
  const team: WalletRef = { scopeKind: 'team', scopeId: 'ops' }
  const proxies: TcpProxy[] = []
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()))
  })

  async function open(redisUrl = ctx.redis.url, name = newId('req').slice(4)) {
    await migratePostgres(ctx.postgres.url)
    return openRedisLedger({ postgresUrl: ctx.postgres.url, redisUrl, keyPrefix: `${ctx.redis.prefix}${name}:` })
  }

  function aReservation(orgId: string, overrides: Partial<ReserveRequest> = {}): ReserveRequest {
    return {
      reservationId: newId('rsv'),
      orgId,
      cascade: [team],
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

  it('reserves with one Redis command and commits a call (settlement + usage event) with one, nothing else sent', async () => {
    const ledger = await open()
    try {
      const orgId = `org_${newId('req').slice(4)}`
      await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const request = aReservation(orgId)
      const trips = ledger.store.redisRoundTrips
      const commands = ledger.store.redisRequestCommands
      expect((await ledger.store.reserve(request)).kind).toBe('reserved')
      expect([ledger.store.redisRoundTrips - trips, ledger.store.redisRequestCommands - commands]).toEqual([1, 1])
      const event = aUsageEvent(orgId, { costMicros: micros(400), reservationId: request.reservationId })
      const committed = await ledger.store.commit({
        orgId,
        atMs: T0 + 1,
        event,
        resolve: { reservationId: request.reservationId, outcome: 'settled', actualMicros: micros(400) },
      })
      expect(committed).toMatchObject({ kind: 'committed', resolution: { kind: 'settled' } })
      expect([ledger.store.redisRoundTrips - trips, ledger.store.redisRequestCommands - commands]).toEqual([2, 2])
    } finally {
      await ledger.close()
    }
  })

  it('a settled reservation leaves Redis a minute after PostgreSQL has it; settling it again later is answered from PostgreSQL', async () => {
    await migratePostgres(ctx.postgres.url)
    const keyPrefix = `${ctx.redis.prefix}${newId('req').slice(4)}:`
    // The drain runs once at start, then not for an hour: this test says when PostgreSQL gets the settlement.
    const ledger = await openRedisLedger({ postgresUrl: ctx.postgres.url, redisUrl: ctx.redis.url, keyPrefix, ledger: { drain: { intervalMs: 3_600_000 } } })
    const redis = new Redis(ctx.redis.url)
    try {
      const orgId = `org_${newId('req').slice(4)}`
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const request = aReservation(orgId)
      expect((await ledger.store.reserve(request)).kind).toBe('reserved')
      const resolve = { reservationId: request.reservationId, outcome: 'settled' as const, actualMicros: micros(400) }
      const event = aUsageEvent(orgId, { costMicros: micros(400), reservationId: request.reservationId })
      expect(await ledger.store.commit({ orgId, atMs: T0 + 1, event, resolve })).toMatchObject({ resolution: { kind: 'settled' } })
      // Until PostgreSQL has the settlement, Redis keeps the hash for days…
      const hash = new RedisKeys(keyPrefix).reservation(orgId, request.reservationId)
      expect(await redis.pttl(hash)).toBeGreaterThan(86_400_000)

      // …and a minute at most once it has.
      expect(await ledger.store.drain.flush()).toBe(true)
      const ttl = await redis.pttl(hash)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(60_000)

      // The minute has passed: PostgreSQL answers a repeated settlement, and no money moves.
      await redis.del(hash)
      const again = await ledger.store.commit({ orgId, atMs: T0 + 2, event: aUsageEvent(orgId, { reservationId: request.reservationId }), resolve })
      expect(again).toMatchObject({ kind: 'committed', resolution: { kind: 'already_settled' } })
      expect(await ledger.store.getWallet(wallet.id)).toMatchObject({ spentMicros: 400, reservedMicros: 0 })
    } finally {
      redis.disconnect()
      await ledger.close()
    }
  })

  it('a settlement counts toward budgets that joined the call in its one script, PostgreSQL gets that spend once, and Redis emptied changes neither', async () => {
    const name = newId('req').slice(4)
    const ledger = await open(ctx.redis.url, name)
    const redis = new Redis(ctx.redis.url)
    try {
      const orgId = `org_${name}`
      await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const periodEndMs = Date.now() + 86_400_000
      const budget = (id: string) => ({ budgetId: `bud_${id}_${name}`, periodKey: '2026-12', limitMicros: undefined, periodEndMs })
      const [reservedAgainst, joined] = [budget('reserved'), budget('joined')]
      // Settles a call reserved against one budget, with the other joined; the crossings' spend after.
      const settleJoined = async (reservationId: string, cost: number) => {
        const committed = await ledger.store.commit({
          orgId,
          atMs: T0 + 1,
          event: aUsageEvent(orgId, { costMicros: micros(cost), reservationId }),
          resolve: { reservationId, outcome: 'settled', actualMicros: micros(cost), alsoCount: [joined] },
        })
        return committed.kind === 'committed' && committed.budgetCrossings.map((c) => [c.budgetId, c.spentAfterMicros])
      }
      // Both counters as PostgreSQL holds them once the journal is applied.
      const durable = async () => {
        await ledger.store.drain.flush()
        await ledger.journal.flush()
        const { rows } = await ledger.pool.query<{ budget_id: string; spent_micros: string }>(
          'SELECT budget_id, spent_micros FROM budget_counters WHERE budget_id = ANY($1) ORDER BY budget_id',
          [[reservedAgainst.budgetId, joined.budgetId]],
        )
        return rows.map((r) => [r.budget_id, Number(r.spent_micros)])
      }
      const request = aReservation(orgId, { budgets: [reservedAgainst] })
      const trips = ledger.store.redisRoundTrips
      await ledger.store.reserve(request)
      expect(await settleJoined(request.reservationId, 400)).toEqual([
        [reservedAgainst.budgetId, 400],
        [joined.budgetId, 400],
      ])
      expect(ledger.store.redisRoundTrips - trips).toBe(2)
      expect(await durable()).toEqual([
        [joined.budgetId, 400],
        [reservedAgainst.budgetId, 400],
      ])
      // Redis restarts empty: the org's counters come back from PostgreSQL, the joined one included.
      await redis.del(...(await redis.keys(`${ctx.redis.prefix}${name}:*`)))
      const spend = await ledger.store.budgetSpend(orgId, [reservedAgainst, joined])
      expect([...spend.values()].map((c) => c.spentMicros)).toEqual([400, 400])
      expect(await ledger.store.reconcile()).toEqual([])

      // A call pending when Redis is emptied is taken back from PostgreSQL at its settle, and its
      // joined budget counts it all the same.
      const pending = aReservation(orgId, { budgets: [reservedAgainst] })
      await ledger.store.reserve(pending)
      await ledger.store.drain.flush()
      await redis.del(...(await redis.keys(`${ctx.redis.prefix}${name}:*`)))
      expect(await settleJoined(pending.reservationId, 100)).toEqual([
        [reservedAgainst.budgetId, 500],
        [joined.budgetId, 500],
      ])
      expect(await durable()).toEqual([
        [joined.budgetId, 500],
        [reservedAgainst.budgetId, 500],
      ])
    } finally {
      redis.disconnect()
      await ledger.close()
    }
  })

  it('usage reaches PostgreSQL through the journal exactly as sent: every column, odd strings, and entries an older gateway journaled', async () => {
    const name = newId('req').slice(4)
    const ledger = await open(ctx.redis.url, name)
    const redis = new Redis(ctx.redis.url)
    try {
      const orgId = `org_${newId('req').slice(4)}`
      await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const request = aReservation(orgId)
      expect((await ledger.store.reserve(request)).kind).toBe('reserved')
      const odd = 'quote " backslash \\ tab \t emoji 😀 accents é lone \ud800 nul \u0000 end'
      const settled = aUsageEvent(orgId, {
        atMs: T0 + 1,
        costMicros: micros(400),
        reservationId: request.reservationId,
        modelRequested: odd,
        usageNote: 'no usage reported: estimated',
        costBreakdown: { parts: [], totalMicros: micros(400), tier: 'default' },
        reportedCostMicros: micros(399),
        latencyMs: 1234,
        isStream: true,
        attribution: { ...aUsageEvent(orgId).attribution, endpointTag: odd, userId: '' },
      })
      await ledger.store.commit({
        orgId,
        atMs: T0 + 1,
        event: settled,
        resolve: { reservationId: request.reservationId, outcome: 'settled', actualMicros: micros(400) },
      })
      // What a gateway from before rows were journaled wrote: the event itself, as JSON.
      const legacy = aUsageEvent(orgId, { atMs: T0 + 2, costMicros: micros(7), targetId: undefined })
      await redis.xadd(new RedisKeys(`${ctx.redis.prefix}${name}:`).journal(orgId), '*', 'u', JSON.stringify(legacy))
      await ledger.store.drain.flush()

      const { rows } = await ledger.pool.query({
        text: `SELECT ${USAGE_COLUMNS.join(', ')} FROM usage_events WHERE org_id = $1 ORDER BY at_ms`,
        values: [orgId],
        rowMode: 'array',
      })
      const asText = (row: readonly unknown[]) => row.map((v) => (v === null ? null : String(v)))
      // The lone surrogate and the NUL arrive as U+FFFD: PostgreSQL text can hold neither.
      const fixed = odd.replace('\ud800', '\ufffd').replace('\u0000', '\ufffd')
      const expected = [usageRow({ ...settled, modelRequested: fixed, attribution: { ...settled.attribution, endpointTag: fixed } }), usageRow(legacy)]
      expect(rows.map(asText)).toEqual(expected.map(asText))
      expect(await ledger.store.drain.backlog()).toBe(0)
    } finally {
      redis.disconnect()
      await ledger.close()
    }
  })

  it('a NUL in a reservation’s request id cannot poison the journal: the move reaches PostgreSQL, not the dead letters', async () => {
    const ledger = await open()
    try {
      const orgId = `org_${newId('req').slice(4)}`
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const request = aReservation(orgId, { requestId: 'x\u0000y' })
      expect((await ledger.store.reserve(request)).kind).toBe('reserved')
      const event = aUsageEvent(orgId, { costMicros: micros(400), reservationId: request.reservationId })
      const committed = await ledger.store.commit({
        orgId,
        atMs: T0 + 1,
        event,
        resolve: { reservationId: request.reservationId, outcome: 'settled', actualMicros: micros(400) },
      })
      expect(committed).toMatchObject({ kind: 'committed', resolution: { kind: 'settled' } })
      await ledger.store.drain.flush()
      const rows = await walletInPostgres(ledger.pool, wallet.id)
      expect(rows).toEqual([{ spent: 400, reserved: 0 }])
      const reservation = await ledger.pool.query('SELECT status, request_id FROM reservations WHERE id = $1', [request.reservationId])
      expect(reservation.rows).toEqual([{ status: 'settled', request_id: 'x\ufffdy' }])
      const dead = await ledger.pool.query('SELECT 1 FROM journal_dead_letters WHERE event::text LIKE $1', [`%${request.reservationId}%`])
      expect(dead.rows).toEqual([])
    } finally {
      await ledger.close()
    }
  })

  it('a journal event PostgreSQL refuses for its data is parked in the dead letters; the rest of its batch still applies', async () => {
    const name = newId('req').slice(4)
    const writer = await open(ctx.redis.url, name)
    const redis = new Redis(ctx.redis.url)
    let drainer: Awaited<ReturnType<typeof open>> | undefined
    try {
      const orgId = `org_${name}`
      const wallet = await writer.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      // The writer's drain stops: what follows waits in Redis for one batch of another drain.
      await writer.store.stopBackground()
      const request = aReservation(orgId)
      expect((await writer.store.reserve(request)).kind).toBe('reserved')
      const event = aUsageEvent(orgId, { costMicros: micros(400), reservationId: request.reservationId })
      const resolve = { reservationId: request.reservationId, outcome: 'settled' as const, actualMicros: micros(400) }
      expect(await writer.store.commit({ orgId, atMs: T0 + 1, event, resolve })).toMatchObject({ kind: 'committed' })
      const badId = newId('rsv')
      const bad = {
        kind: 'reserve',
        entryId: newId('led'),
        r: { id: badId, orgId, amount: 'twelve', budgets: [], createdAt: String(T0), expiresAt: String(T0 + 1) },
      }
      const journal = new RedisKeys(`${ctx.redis.prefix}${name}:`).journal(orgId)
      await redis.xadd(journal, '*', 'j', JSON.stringify(bad))

      drainer = await open(ctx.redis.url, name)
      expect(await drainer.store.drain.flush()).toBe(true)
      const rows = await walletInPostgres(drainer.pool, wallet.id)
      expect(rows).toEqual([{ spent: 400, reserved: 0 }])
      const usage = await drainer.pool.query('SELECT cost_micros::float8 AS cost FROM usage_events WHERE id = $1', [event.id])
      expect(usage.rows).toEqual([{ cost: 400 }])
      const dead = await drainer.pool.query<{ id: string }>("SELECT event->'r'->>'id' AS id FROM journal_dead_letters WHERE event->'r'->>'orgId' = $1", [orgId])
      expect(dead.rows).toEqual([{ id: badId }])
      expect(await redis.xlen(journal)).toBe(0)
    } finally {
      redis.disconnect()
      await Promise.all([writer.close(), drainer?.close()])
    }
  })

  it('Redis emptied: the org is rebuilt from PostgreSQL before the next reservation, pending ones included', async () => {
    const name = newId('req').slice(4)
    const ledger = await open(ctx.redis.url, name)
    const redis = new Redis(ctx.redis.url)
    try {
      const orgId = `org_${name}`
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const pending = aReservation(orgId, { amountMicros: micros(3_000) })
      const settled = aReservation(orgId, { amountMicros: micros(2_000) })
      await ledger.store.reserve(pending)
      await ledger.store.reserve(settled)
      await ledger.store.settle(orgId, settled.reservationId, micros(1_500), T0 + 1)
      await ledger.store.drain.flush()
      const keys = await redis.keys(`${ctx.redis.prefix}${name}:*`)
      expect(keys.length).toBeGreaterThan(0)
      await redis.del(...keys)

      // 10_000 − 3_000 pending − 1_500 spent = 5_500: 5_501 must not fit.
      expect((await ledger.store.reserve(aReservation(orgId, { amountMicros: micros(5_501) }))).kind).toBe('insufficient_quota')
      expect(await ledger.store.getWallet(wallet.id)).toMatchObject({ reservedMicros: 3_000, spentMicros: 1_500, availableMicros: 5_500 })
      expect(await ledger.store.settle(orgId, pending.reservationId, micros(1_000), T0 + 2)).toMatchObject({ kind: 'settled', releasedMicros: 2_000 })
      expect((await ledger.store.settle(orgId, settled.reservationId, micros(1), T0 + 2)).kind).toBe('already_settled')
      expect(await ledger.store.reconcile()).toEqual([])
    } finally {
      redis.disconnect()
      await ledger.close()
    }
  })

  it('the spend at the last allocation is rebuilt from PostgreSQL; a total changed without it (an older gateway) makes it unknown', async () => {
    const name = newId('req').slice(4)
    const ledger = await open(ctx.redis.url, name)
    const redis = new Redis(ctx.redis.url)
    try {
      const orgId = `org_${name}`
      const walletKey = new RedisKeys(`${ctx.redis.prefix}${name}:`).wallet(orgId, team)
      await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const spent = aReservation(orgId, { amountMicros: micros(2_000) })
      await ledger.store.reserve(spent)
      await ledger.store.settle(orgId, spent.reservationId, micros(2_000), T0 + 1)
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(5_000), description: undefined, atMs: T0 + 2 })
      expect(wallet).toMatchObject({ allocatedMicros: 15_000, spentMicros: 2_000, spentAtAllocationMicros: 2_000 })
      await ledger.store.drain.flush()
      await redis.del(...(await redis.keys(`${ctx.redis.prefix}${name}:*`)))

      expect(await ledger.store.getWallet(wallet.id)).toMatchObject({ allocatedMicros: 15_000, spentMicros: 2_000, spentAtAllocationMicros: 2_000 })
      const next = aReservation(orgId, { amountMicros: micros(500) })
      await ledger.store.reserve(next)
      const settled = await ledger.store.settle(orgId, next.reservationId, micros(500), T0 + 3)
      expect(settled.kind === 'settled' && settled.walletCrossing).toMatchObject({ spentBeforeMicros: 2_000, spentAtAllocationMicros: 2_000 })
      expect((await ledger.store.walletsSpentSinceAllocation()).map((w) => w.id)).toContain(wallet.id)

      // An older gateway's allocation moves the total and not the figure: the figure no longer says anything.
      await redis.hincrby(walletKey, 'allocated', 1_000)
      expect(await ledger.store.getWallet(wallet.id)).toMatchObject({ allocatedMicros: 16_000, spentAtAllocationMicros: undefined })
      const after = aReservation(orgId, { amountMicros: micros(100) })
      await ledger.store.reserve(after)
      const crossing = await ledger.store.settle(orgId, after.reservationId, micros(100), T0 + 4)
      expect(crossing.kind === 'settled' && crossing.walletCrossing).toMatchObject({ allocatedMicros: 16_000, spentAtAllocationMicros: undefined })
      expect((await ledger.store.walletsSpentSinceAllocation()).map((w) => w.id)).not.toContain(wallet.id)
      // So does PostgreSQL's copy, for a rebuild.
      await ledger.pool.query('UPDATE wallets SET allocated_micros = 16000 WHERE id = $1', [wallet.id])
      await ledger.store.drain.flush()
      await redis.del(...(await redis.keys(`${ctx.redis.prefix}${name}:*`)))
      expect(await ledger.store.getWallet(wallet.id)).toMatchObject({ allocatedMicros: 16_000, spentMicros: 2_600, spentAtAllocationMicros: undefined })
    } finally {
      redis.disconnect()
      await ledger.close()
    }
  })

  it('Redis emptied (or an id past its 7 days there): PostgreSQL decides an ingested duplicate, within the event’s team only', async () => {
    const name = newId('req').slice(4)
    const ledger = await open(ctx.redis.url, name)
    const redis = new Redis(ctx.redis.url)
    try {
      const orgId = `org_${name}`
      const ingested = (teamId: string | undefined) => {
        const event = aUsageEvent(orgId, { costMicros: micros(500), externalRequestId: 'ext-kept', source: 'ingest', endpoint: 'ingested' })
        return { ...event, attribution: { ...event.attribution, teamId } }
      }
      const first = ingested('ops')
      expect((await ledger.store.commit({ orgId, atMs: T0, event: first, dedupeExternalId: true })).kind).toBe('committed')
      await ledger.store.drain.flush()
      await redis.del(...(await redis.keys(`${ctx.redis.prefix}${name}:*`)))

      expect((await ledger.store.commit({ orgId, atMs: T0 + 1, event: ingested('ops'), dedupeExternalId: true })).kind).toBe('duplicate')
      const otherTeam = ingested('research')
      const noTeam = ingested(undefined)
      expect((await ledger.store.commit({ orgId, atMs: T0 + 2, event: otherTeam, dedupeExternalId: true })).kind).toBe('committed')
      expect((await ledger.store.commit({ orgId, atMs: T0 + 3, event: noTeam, dedupeExternalId: true })).kind).toBe('committed')
      await ledger.store.drain.flush()
      const { rows } = await ledger.pool.query<{ id: string }>('SELECT id FROM usage_events WHERE org_id = $1 ORDER BY at_ms', [orgId])
      expect(rows.map((r) => r.id)).toEqual([first.id, otherTeam.id, noTeam.id])
    } finally {
      redis.disconnect()
      await ledger.close()
    }
  })

  it('Redis unreachable: PostgreSQL takes an ingested event alone, and the same event sent three times at once is stored and committed once', async () => {
    const redisTarget = hostPort(ctx.redis.url)
    const redisProxy = await startTcpProxy(redisTarget.host, redisTarget.port)
    proxies.push(redisProxy)
    const name = newId('req').slice(4)
    const ledger = await open(viaPort(ctx.redis.url, redisProxy.port), name)
    try {
      const orgId = `org_${name}`
      await redisProxy.cut()
      const event = aUsageEvent(orgId, { costMicros: micros(500), externalRequestId: 'ext-outage', source: 'ingest', endpoint: 'ingested' })
      const results = await Promise.all(
        [0, 1, 2].map((i) => ledger.store.commit({ orgId, atMs: T0 + i, event: { ...event, id: `${event.id}_${i}` }, dedupeExternalId: true })),
      )
      expect(results.map((r) => r.kind).sort()).toEqual(['committed', 'duplicate', 'duplicate'])
      const { rows } = await ledger.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_events WHERE org_id = $1', [orgId])
      expect(rows[0]?.n).toBe(1)
    } finally {
      await redisProxy.restore()
      await ledger.close()
    }
  })

  it('reconciliation reports a wallet whose Redis balance differs from PostgreSQL', async () => {
    const name = newId('req').slice(4)
    const ledger = await open(ctx.redis.url, name)
    const redis = new Redis(ctx.redis.url)
    try {
      const orgId = `org_${name}`
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      expect(await ledger.store.reconcile()).toEqual([])
      await redis.hincrby(`${ctx.redis.prefix}${name}:tg:{${orgId}}:w:team:ops`, 'spent', 7)
      expect(await ledger.store.reconcile()).toEqual([{ orgId, walletId: wallet.id, field: 'spent', redisMicros: 7, postgresMicros: 0 }])
    } finally {
      redis.disconnect()
      await ledger.close()
    }
  })

  it('Redis loses journal entries the drain could not apply: the gateway writes the move and the usage row it retained', async () => {
    const pgTarget = hostPort(ctx.postgres.url)
    const pgProxy = await startTcpProxy(pgTarget.host, pgTarget.port)
    proxies.push(pgProxy)
    await migratePostgres(ctx.postgres.url)
    const prefix = `${ctx.redis.prefix}${newId('req').slice(4)}:`
    const ledger = await openRedisLedger({ postgresUrl: viaPort(ctx.postgres.url, pgProxy.port), redisUrl: ctx.redis.url, keyPrefix: prefix })
    const redis = new Redis(ctx.redis.url)
    try {
      const orgId = `org_${newId('req').slice(4)}`
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      // PostgreSQL away: the call is journaled in Redis, and the drain cannot apply it.
      await pgProxy.cut()
      const request = aReservation(orgId)
      expect((await ledger.store.reserve(request)).kind).toBe('reserved')
      // The drain reads the reservation and fails to apply it: it waits, unacknowledged, for the
      // drain's next attempt, which reads it again before anything new.
      const journalKey = `${prefix}tg:{${orgId}}:journal`
      await until('the drain to fail on the reservation', async () => {
        const [pending] = (await redis.xpending(journalKey, JOURNAL_GROUP)) as [number]
        return Number(pending) >= 1 ? true : undefined
      })
      const event = aUsageEvent(orgId, { atMs: T0 + 1, costMicros: micros(600), reservationId: request.reservationId, modelRequested: 'lost "and" found' })
      await ledger.store.commit({
        orgId,
        atMs: T0 + 1,
        event,
        resolve: { reservationId: request.reservationId, outcome: 'settled', actualMicros: micros(600) },
      })
      // So the settlement stays unread. Only the gateway's retained copy can bring either now.
      expect(await redis.xlen(journalKey)).toBe(2)
      // Redis restarts empty: the org's keys, its journal among them, are gone.
      const keys = await redis.keys(`${prefix}tg:{${orgId}}*`)
      expect(keys).toContain(journalKey)
      await redis.del(...keys)
      await pgProxy.restore()

      const stored = await until(
        'the retained usage row in PostgreSQL',
        async () => {
          await ledger.store.checkRetained()
          const { rows } = await ledger.pool.query({
            text: `SELECT ${USAGE_COLUMNS.join(', ')} FROM usage_events WHERE id = $1`,
            values: [event.id],
            rowMode: 'array',
          })
          return rows[0] as unknown[] | undefined
        },
        10_000,
        100,
      )
      expect(stored.map((v) => (v === null ? null : String(v)))).toEqual(usageRow(event).map((v) => (v === null ? null : String(v))))
      await ledger.journal.flush()
      const { rows } = await ledger.pool.query<{ spent_micros: string; reserved_micros: string }>(
        'SELECT spent_micros, reserved_micros FROM wallets WHERE id = $1',
        [wallet.id],
      )
      expect(rows.map((r) => [Number(r.spent_micros), Number(r.reserved_micros)])).toEqual([[600, 0]])
    } finally {
      redis.disconnect()
      await ledger.close()
    }
  })

  it('two processes applying one org’s journal at once: a settlement waits for the reservation the other is writing, and is applied', async () => {
    const name = newId('req').slice(4)
    const ledger = await open(ctx.redis.url, name)
    const redis = new Redis(ctx.redis.url)
    const [first, second] = [new pg.Client(ctx.postgres.url), new pg.Client(ctx.postgres.url)]
    try {
      const orgId = `org_${newId('req').slice(4)}`
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      // This process's drain stops: the entries stay in Redis for the two appliers below.
      await ledger.store.stopBackground()
      const request = aReservation(orgId)
      expect((await ledger.store.reserve(request)).kind).toBe('reserved')
      await ledger.store.settle(orgId, request.reservationId, micros(400), T0 + 1)
      const entries = await redis.xrange(new RedisKeys(`${ctx.redis.prefix}${name}:`).journal(orgId), '-', '+')
      const [reserve, resolve] = entries.map(([, fields]) => fields[fields.indexOf('j') + 1]!)
      expect(JSON.parse(reserve!)).toMatchObject({ kind: 'reserve' })
      expect(JSON.parse(resolve!)).toMatchObject({ kind: 'resolve' })

      await Promise.all([first.connect(), second.connect()])
      // One process has applied the reservation and not committed yet; another applies the settlement.
      await first.query('BEGIN')
      await first.query('SELECT tg_journal_apply($1::jsonb)', [`[${reserve}]`])
      const secondPid = (await second.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
      const settling = second.query('SELECT tg_journal_apply($1::jsonb)', [`[${resolve}]`]).then(
        () => 'applied',
        (error: { code?: string; message?: string }) => `${error.code} ${error.message}`,
      )
      await until('the settlement to wait for the other process', async () => {
        const { rows } = await first.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = $2', [secondPid, 'Lock'])
        return rows.length === 1 ? true : undefined
      })
      await first.query('COMMIT')
      expect(await settling).toBe('applied')
      const rows = await walletInPostgres(first, wallet.id)
      expect(rows).toEqual([{ spent: 400, reserved: 0 }])
      const dead = await first.query('SELECT event FROM journal_dead_letters WHERE event::text LIKE $1', [`%${request.reservationId}%`])
      expect(dead.rows).toEqual([])
    } finally {
      await Promise.all([first.end(), second.end()].map((p) => p.catch(() => {})))
      redis.disconnect()
      await ledger.close()
    }
  })

  it('a batch whose PostgreSQL connection breaks mid-apply is applied again by the drain that read it, long before a claim', async () => {
    const ledger = await open()
    const locker = new pg.Client(ctx.postgres.url)
    try {
      const orgId = `org_${newId('req').slice(4)}`
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      await locker.connect()
      const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
      // The wallet's row is held, so the drain's apply waits on it; then its connection is cut.
      await locker.query('BEGIN')
      await locker.query('SELECT 1 FROM wallets WHERE id = $1 FOR UPDATE', [wallet.id])
      const request = aReservation(orgId)
      expect((await ledger.store.reserve(request)).kind).toBe('reserved')
      await ledger.store.settle(orgId, request.reservationId, micros(400), T0 + 1)
      const drainPid = await until('the drain to wait on the wallet', async () => {
        const { rows } = await locker.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [lockerPid])
        return rows[0]?.pid
      })
      await locker.query('SELECT pg_terminate_backend($1)', [drainPid])
      await locker.query('ROLLBACK')

      // Another process would claim the entries only once idle for 10 s: this drain retries them now.
      await until(
        'the reservation and settlement in PostgreSQL',
        async () => {
          const rows = await walletInPostgres(locker, wallet.id)
          return rows[0]?.spent === 400 && rows[0].reserved === 0 ? true : undefined
        },
        5_000,
      )
      expect(await ledger.store.drain.flush(1_000)).toBe(true)
    } finally {
      await locker.end().catch(() => {})
      await ledger.close()
    }
  })

  it('a batch PostgreSQL keeps refusing, not for its data, holds back only itself: later calls still reach PostgreSQL', async () => {
    // A trigger refuses one call's usage row with a non-data error (54000, as an oversized index
    // row would): the drain cannot tell it from an outage, so it retries, but not forever first.
    const poison = `poison-${newId('req').slice(4)}`
    const admin = new pg.Client(ctx.postgres.url)
    await migratePostgres(ctx.postgres.url)
    await admin.connect()
    await admin.query(`CREATE OR REPLACE FUNCTION tg_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN IF NEW.model_requested = '${poison}' THEN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '54000'; END IF; RETURN NEW; END $fn$`)
    await admin.query(`CREATE TRIGGER tg_test_refuse_${poison.slice(7)} BEFORE INSERT ON usage_events FOR EACH ROW EXECUTE FUNCTION tg_test_refuse()`)
    const ledger = await open()
    const stored = async (orgId: string) =>
      (await admin.query<{ model_requested: string }>('SELECT model_requested FROM usage_events WHERE org_id = $1', [orgId])).rows.map((r) => r.model_requested)
    try {
      const orgId = `org_${newId('req').slice(4)}`
      await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const call = async (model: string) => {
        const request = aReservation(orgId)
        expect((await ledger.store.reserve(request)).kind).toBe('reserved')
        const event = aUsageEvent(orgId, { atMs: T0 + 1, costMicros: micros(100), reservationId: request.reservationId, modelRequested: model })
        await ledger.store.commit({
          orgId,
          atMs: T0 + 1,
          event,
          resolve: { reservationId: request.reservationId, outcome: 'settled', actualMicros: micros(100) },
        })
      }
      await call(poison)
      await new Promise((resolve) => setTimeout(resolve, 200))
      for (let i = 0; i < 3; i++) await call(`after-${i}`)
      // Well before another process would claim the refused entry (10 s idle).
      const later = await until(
        'the later calls in PostgreSQL',
        async () => {
          const models = await stored(orgId)
          return ['after-0', 'after-1', 'after-2'].every((m) => models.includes(m)) ? models : undefined
        },
        5_000,
      )
      expect(later).not.toContain(poison)
    } finally {
      await admin.query(`DROP TRIGGER IF EXISTS tg_test_refuse_${poison.slice(7)} ON usage_events`)
      await admin.end()
      await ledger.close()
    }
  })

  it('Redis unreachable: closed refuses, open serves within its allowance, and both are applied once Redis is back', async () => {
    const target = hostPort(ctx.redis.url)
    const proxy = await startTcpProxy(target.host, target.port)
    proxies.push(proxy)
    const ledger = await open(viaPort(ctx.redis.url, proxy.port))
    try {
      const orgId = `org_${newId('req').slice(4)}`
      const wallet = await ledger.store.allocate({ orgId, wallet: team, amountMicros: micros(10_000), description: undefined, atMs: T0 })
      const inFlight = aReservation(orgId, { amountMicros: micros(2_000) })
      expect((await ledger.store.reserve(inFlight)).kind).toBe('reserved')

      await proxy.cut()
      const open = { mode: 'open' as const, emergencyAllowanceMicros: micros(1_500) }
      expect((await ledger.store.reserve(aReservation(orgId, { failMode: { mode: 'closed', emergencyAllowanceMicros: micros(0) } }))).kind).toBe(
        'store_unavailable',
      )
      const emergency = aReservation(orgId, { amountMicros: micros(1_000), failMode: open })
      expect((await ledger.store.reserve(emergency)).kind).toBe('reserved')
      // The allowance is spent (1_000 of 1_500 held): the next 1_000 is refused.
      expect((await ledger.store.reserve(aReservation(orgId, { amountMicros: micros(1_000), failMode: open }))).kind).toBe('store_unavailable')
      expect(await ledger.store.settle(orgId, emergency.reservationId, micros(800), T0 + 1)).toMatchObject({ kind: 'settled', releasedMicros: 200 })
      // A reservation made before the outage settles too: the outcome is kept and applied later.
      expect(await ledger.store.settle(orgId, inFlight.reservationId, micros(1_200), T0 + 1)).toMatchObject({ kind: 'settled', releasedMicros: 800 })

      await proxy.restore()
      await until('Redis to answer', async () => ((await ledger.store.retryDeferred().catch(() => 1)) === 0 ? true : undefined), 10_000, 100)
      expect(await ledger.store.chargeEmergencySpend()).toBe(0)
      expect(await ledger.store.getWallet(wallet.id)).toMatchObject({ reservedMicros: 0, spentMicros: 2_000, availableMicros: 8_000 })
      await ledger.journal.flush()
      expect(await ledger.store.reconcile()).toEqual([])
      const entries = await ledger.store.ledgerEntries(wallet.id, 10)
      expect(entries.reduce((sum, e) => sum + e.amountMicros, 0)).toBe(8_000)
    } finally {
      await ledger.close()
    }
  })
})
