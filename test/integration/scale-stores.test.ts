/**
 * The other store ports on PostgreSQL (usage, tickets, idempotency, auth, budgets, notify) give
 * the same answers as on SQLite: each scenario runs against both backends and must produce the
 * same result, so the adapters cannot disagree. Each backend gets a fresh database/schema.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { Stores } from '../../src/app.js'
import { systemClock } from '../../src/lib/clock.js'
import { micros } from '../../src/money/index.js'
import type { Budget } from '../../src/budgets/budget.js'
import type { UsageEvent } from '../../src/usage/types.js'
import type { CostTicket } from '../../src/tickets/types.js'
import type { Consumer } from '../../src/auth/types.js'
import { openSqliteStores } from '../../src/store/sqlite/index.js'
import { openPostgresRedisStores } from '../../src/store/postgres-redis.js'
import { describeWithBoth } from '../support/services.js'

const T0 = Date.UTC(2026, 10, 15, 12)
const quiet = { info: () => {}, warn: () => {}, error: () => {} }

function anEvent(id: string, overrides: Partial<UsageEvent> = {}): UsageEvent {
  return {
    id,
    requestId: `req_${id}`,
    atMs: T0,
    attribution: {
      orgId: 'acme',
      teamId: 'marketing',
      userId: 'ana',
      userFromKey: false,
      agentId: undefined,
      keyName: 'svc',
      endpointTag: 'summary',
      promptVersion: undefined,
      environment: 'prod',
    },
    provider: 'openai',
    targetId: 'openai',
    modelRequested: 'fast',
    modelServed: 'gpt-4o-mini',
    endpoint: 'chat_completions',
    usage: {
      inputTokens: 10,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      cacheWrite1hTokens: 0,
      outputTokens: 20,
      reasoningTokens: 0,
      audioInputTokens: 0,
      audioOutputTokens: 0,
    },
    usageSource: 'reported',
    usageNote: undefined,
    costBreakdown: undefined,
    costMicros: micros(300),
    priceSource: 'test',
    latencyMs: 12,
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

function aTicket(id: string, overrides: Partial<CostTicket> = {}): CostTicket {
  return {
    id,
    orgId: 'acme',
    scope: 'team:marketing',
    teamId: 'marketing',
    requestId: `req_${id}`,
    consumerName: 'svc',
    model: 'fast',
    estimateMicros: micros(1_000),
    reason: 'insufficient_quota',
    status: 'pending',
    createdAtMs: T0,
    expiresAtMs: T0 + 60_000,
    resolvedAtMs: undefined,
    resolvedBy: undefined,
    grantMicros: undefined,
    note: undefined,
    refusedCount: 1,
    lastSeenAtMs: T0,
    digestCount: 1,
    ...overrides,
  }
}

function aBudget(id: string, name: string): Budget {
  return {
    id,
    orgId: 'acme',
    name,
    scopeKind: 'team',
    scopeId: 'marketing',
    scopeTeamId: undefined,
    environment: undefined,
    period: 'monthly',
    timezone: 'UTC',
    amountMicros: micros(5_000_000),
    alertThresholds: [50, 80],
    thresholdActions: [{ thresholdPercent: 100, action: 'block' }] as unknown as Budget['thresholdActions'],
    hardLimit: true,
    shadow: false,
    categories: [],
    owner: undefined,
    channels: undefined,
    source: 'api',
    createdAtMs: T0,
    updatedAtMs: T0,
    counterEpochMs: 0,
  }
}

/** Everything a scenario observed, compared across backends. */
async function scenario(stores: Stores): Promise<unknown[]> {
  const seen: unknown[] = []
  const { usage, tickets, idempotency, auth, budgets, notify } = stores

  await usage.insertBatch([
    anEvent('evt_1'),
    anEvent('evt_2', { atMs: T0 + 3_600_000, costMicros: micros(700), userId: undefined } as Partial<UsageEvent>),
    anEvent('evt_3', { externalRequestId: 'ext-1' }),
  ])
  seen.push(await usage.insertIngested(anEvent('evt_4', { externalRequestId: 'ext-1' })))
  seen.push(await usage.insertIngested(anEvent('evt_5', { externalRequestId: 'ext-2', atMs: T0 + 1 })))
  seen.push(
    await usage.query({
      orgId: 'acme',
      fromMs: T0,
      toMs: T0 + 86_400_000,
      groupBy: ['model', 'user'],
      bucketMs: 3_600_000,
      teamId: undefined,
      environment: 'prod',
    }),
  )

  seen.push(await tickets.openOrJoin(aTicket('ct_1')))
  seen.push(await tickets.openOrJoin(aTicket('ct_1b', { requestId: 'req_join', estimateMicros: micros(5_000), createdAtMs: T0 + 1 })))
  seen.push(await tickets.openOrJoin(aTicket('ct_2', { consumerName: 'other', expiresAtMs: T0 + 10 })))
  // Two teams' consumers of one name refused against the org wallet: a ticket each; no team joins no team.
  const joins: boolean[] = []
  for (const [id, teamId] of [
    ['ct_org_m', 'marketing'],
    ['ct_org_s', 'sales'],
    ['ct_org_m2', 'marketing'],
    ['ct_org_none', undefined],
    ['ct_org_none2', undefined],
  ] as const) {
    const createdAtMs = T0 + 100 + joins.length
    joins.push((await tickets.openOrJoin(aTicket(id, { scope: 'org:acme', teamId, consumerName: 'shared', createdAtMs, lastSeenAtMs: createdAtMs }))).joined)
  }
  expect(joins).toEqual([false, false, true, false, true])
  seen.push(joins)
  seen.push(await tickets.resolve('ct_1', { status: 'approved', atMs: T0 + 5, by: 'tok_1', grantMicros: micros(2_000), note: 'ok' }))
  seen.push((await tickets.resolve('ct_1', { status: 'denied', atMs: T0 + 6, by: 'tok_1', grantMicros: undefined, note: undefined })).kind)
  seen.push(await tickets.resolve('ct_missing', { status: 'denied', atMs: T0, by: 'x', grantMicros: undefined, note: undefined }))
  seen.push(await tickets.claimDigests(T0 + 20, 0, 10))
  seen.push(await tickets.claimDigests(T0 + 21, 0, 10))
  seen.push(await tickets.expireOverdue(T0 + 10, 10))
  seen.push(await tickets.list('acme', { status: undefined, teamId: 'marketing', limit: 10 }))
  seen.push(await tickets.get('ct_2'))

  seen.push(await idempotency.claim('k1', 'h1', T0, 1_000))
  seen.push(await idempotency.claim('k1', 'h1', T0 + 1, 1_000))
  seen.push(await idempotency.claim('k1', 'h2', T0 + 1, 1_000))
  await idempotency.complete('k1', { status: 200, headers: { a: 'b' }, bodyBase64: 'eA==' })
  seen.push(await idempotency.claim('k1', 'h1', T0 + 2, 1_000))
  seen.push(await idempotency.claim('k1', 'h9', T0 + 1_000, 1_000))
  seen.push(await idempotency.claim('k2', 'h1', T0, 1_000))
  await idempotency.release('k2')
  seen.push(await idempotency.claim('k2', 'h1', T0, 1_000))

  seen.push(await auth.countAdminTokens())
  await auth.createAdminToken({
    tokenId: 'tok_1',
    tokenHash: 'hash1',
    prefix: 'tg_adm',
    orgId: 'acme',
    role: 'team_admin',
    teamId: 'marketing',
    name: 'n',
    createdAtMs: T0,
    revokedAtMs: undefined,
  })
  seen.push(await auth.findAdminToken('hash1'))
  seen.push(await auth.findAdminToken('nope'))
  seen.push(await auth.listAdminTokens('acme'))
  const consumer = {
    name: 'k',
    apiKeyHash: 'kh',
    orgId: 'acme',
    teamId: 'marketing',
    userId: undefined,
    agentId: undefined,
    environment: 'prod',
    endpointTag: undefined,
    onInsufficientFunds: 'refuse',
    holdTimeoutMs: 1_000,
    failMode: 'open',
    emergencyAllowanceMicros: micros(5),
  } as unknown as Consumer
  await auth.createConsumerKey('ck_1', consumer, 'tg_k', T0)
  seen.push(await auth.listConsumerKeys())
  seen.push(await auth.listConsumerKeyRecords('acme'))
  seen.push(await auth.revokeConsumerKey('acme', 'ck_1', T0 + 1))
  seen.push(await auth.revokeConsumerKey('other', 'ck_1', T0 + 2))
  seen.push(await auth.listConsumerKeys())
  seen.push(await auth.revokeAdminToken('acme', 'tok_1', T0 + 3))
  seen.push(await auth.findAdminToken('hash1'))

  seen.push(await budgets.insertBudget(aBudget('bud_1', 'Marketing')))
  seen.push(await budgets.insertBudget(aBudget('bud_2', 'Marketing')))
  seen.push(await budgets.insertBudget(aBudget('bud_2', 'Support')))
  seen.push(await budgets.updateBudget({ ...aBudget('bud_2', 'Marketing') }))
  seen.push(await budgets.updateBudget({ ...aBudget('bud_9', 'Other') }))
  seen.push(await budgets.updateBudget({ ...aBudget('bud_2', 'Support 2'), amountMicros: micros(7) }))
  seen.push(await budgets.findBudgetByName('acme', 'Support 2'))
  seen.push((await budgets.listBudgets(undefined)).map((b) => b.id))
  seen.push(await budgets.firedKeys(['v1:bud_1:2026-11:50']))
  seen.push(await budgets.deleteBudget('acme', 'bud_2'))
  seen.push(await budgets.getBudget('acme', 'bud_2'))
  const filter = { orgId: 'acme', scopeKind: 'team' as const, scopeId: 'marketing', environment: undefined }
  seen.push(await budgets.spendBuckets(filter, T0 + 2 * 3_600_000, 3_600_000, 3))
  seen.push(await budgets.topSpenders(filter, T0, T0 + 86_400_000, 5))

  await notify.enqueue(
    { id: 'ntf_1', type: 'budget.threshold', createdAtMs: T0, orgId: 'acme', teamId: 'marketing', data: { percent: 50 } },
    ['hook', 'slack', 'hook'],
    T0,
  )
  // Same instant: the order between items is their random id's, so compare by channel.
  const claimed = (await notify.claimDue(T0, 10, 30_000)).sort((a, b) => a.item.channelId.localeCompare(b.item.channelId))
  seen.push(claimed.map((c) => [c.item.channelId, c.item.attempts, c.notification.data]))
  seen.push((await notify.claimDue(T0 + 1, 10, 30_000)).length)
  const [first, second] = claimed
  seen.push(await notify.markDelivered(first!.item.id, 'wrong-token', T0 + 2))
  seen.push(await notify.markDelivered(first!.item.id, first!.leaseToken, T0 + 2))
  seen.push(await notify.markFailed(second!.item.id, second!.leaseToken, 'boom', T0 + 100))
  seen.push((await notify.itemsOf('ntf_1')).map((i) => [i.channelId, i.status, i.nextAttemptAtMs, i.lastError ?? null]))
  seen.push(await notify.listInbox('acme', { unreadOnly: true, limit: 10, beforeId: undefined, teamId: undefined }))
  seen.push(await notify.listInbox('acme', { unreadOnly: true, limit: 10, beforeId: undefined, teamId: 'support' }))
  seen.push(await notify.markRead('acme', 'ntf_1', T0 + 5, 'support'))
  seen.push(await notify.markRead('acme', 'ntf_1', T0 + 5, 'marketing'))
  seen.push(await notify.markRead('other', 'ntf_1', T0 + 5, undefined))
  seen.push(await notify.listInbox('acme', { unreadOnly: true, limit: 10, beforeId: undefined, teamId: undefined }))
  await notify.putPreference({ orgId: 'acme', subjectType: 'role', subjectId: 'admin', channelsByType: { 'budget.threshold': ['hook'] }, updatedAtMs: T0 })
  await notify.putPreference({ orgId: 'acme', subjectType: 'role', subjectId: 'admin', channelsByType: { 'budget.threshold': ['slack'] }, updatedAtMs: T0 + 1 })
  seen.push(await notify.listPreferences('acme'))
  seen.push(await notify.getPreference('acme', 'user', 'nobody'))

  // A firing mark is taken with its notice: the first write wins, the second writes nothing.
  const mark = { dedupeKey: 'v1:bud_1:2026-11:50', subjectId: 'bud_1' }
  const notice = (id: string) => ({ id, type: 'budget.threshold' as const, createdAtMs: T0, orgId: 'acme', teamId: 'marketing', data: { percent: 51 } })
  seen.push(await notify.enqueue(notice('ntf_2'), ['hook'], T0 + 10, mark))
  seen.push(await notify.enqueue(notice('ntf_3'), ['hook'], T0 + 11, mark))
  seen.push(await notify.enqueue(notice('ntf_4'), [], T0 + 12, { dedupeKey: 'v1:bud_1:2026-11:80', subjectId: 'bud_1' }))
  seen.push((await budgets.firedKeys(['v1:bud_1:2026-11:50', 'v1:bud_1:2026-11:80', 'v1:bud_1:2026-11:95'])).sort())
  seen.push((await notify.itemsOf('ntf_2')).map((i) => [i.channelId, i.status]))
  seen.push((await notify.itemsOf('ntf_3')).length)
  seen.push((await notify.listInbox('acme', { unreadOnly: false, limit: 10, beforeId: undefined, teamId: undefined })).map((e) => e.notification.id))
  return seen
}

describeWithBoth('other store ports: PostgreSQL answers as SQLite does', (ctx) => {
  const dirs: string[] = []
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('usage, tickets, idempotency, auth, budgets and notify give the same results on both backends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-stores-'))
    dirs.push(dir)
    const sqlite = openSqliteStores(join(dir, 'stores.db'))
    const postgres = await openPostgresRedisStores(
      { postgresUrl: ctx.postgres.url, redisUrl: ctx.redis.url, keyPrefix: ctx.redis.prefix, reconcileIntervalMs: 0 },
      { logger: quiet, clock: systemClock },
    )
    try {
      const expected = await scenario(sqlite)
      const actual = await scenario(postgres)
      for (const [i, value] of expected.entries()) expect([i, actual[i]]).toEqual([i, value])
      expect(await postgres.ready()).toBe(true)
    } finally {
      await sqlite.close()
      await postgres.close()
    }
  })
})
