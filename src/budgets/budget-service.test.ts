/**
 * BudgetService against the real SQLite adapters (a temp file) with a FakeClock: which budgets
 * cover a call, what it decides, and what a settled spend emits — once per threshold per
 * period, with the context a reader needs, and a forecast before any threshold is crossed.
 */
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../lib/clock.js'
import { micros, type Micros } from '../money/index.js'
import type { Attribution } from '../usage/types.js'
import type { BudgetSpec, NotificationChannel } from '../config/types.js'
import { insertSpend, openNotifyDb, tempDbPath, wire } from '../../test/integration/notify-support.js'
import { budgetCreateBodySchema, counterRefOf, type Budget, type BudgetCreateBody } from './budget.js'
import type { BudgetUsageReader } from './budget-store.js'
import { BudgetError } from './errors.js'
import { periodOf } from './period.js'

const HOUR = 3_600_000
const ORG = 'org_acme'
const channels: NotificationChannel[] = [
  { id: 'ops-webhook', type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 's' },
  { id: 'finance-slack', type: 'slack', webhookUrl: 'http://127.0.0.1:9/slack' },
]

function aCall(overrides: Partial<Attribution> = {}): Attribution {
  return {
    orgId: ORG,
    teamId: 'team_marketing',
    userId: 'u_ana',
    userFromKey: true,
    agentId: undefined,
    keyName: 'marketing',
    endpointTag: 'copywriter',
    promptVersion: undefined,
    environment: 'prod',
    ...overrides,
  }
}

function aBudgetBody(overrides: Record<string, unknown> = {}): BudgetCreateBody {
  return budgetCreateBodySchema.parse({
    name: 'marketing monthly',
    scope: { kind: 'team', id: 'team_marketing' },
    period: 'monthly',
    timezone: 'UTC',
    amount_usd: 100,
    ...overrides,
  })
}

function setup(options = {}) {
  const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
  const path = tempDbPath()
  const db = openNotifyDb(path)
  return { clock, db, path, ...wire(db, clock, channels, options) }
}

const usd = (value: number) => micros(value * 1_000_000)

describe('applicableBudgets and decide', () => {
  it('covers calls of its scope and environment only, with the current period', async () => {
    const { service, clock } = setup()
    const team = await service.create(ORG, aBudgetBody())
    const staging = await service.create(ORG, aBudgetBody({ name: 'staging', scope: { kind: 'team', id: 'team_marketing', environment: 'staging' } }))
    const model = await service.create(ORG, aBudgetBody({ name: 'gpt', scope: { kind: 'model', id: 'gpt-4o' } }))

    const applicable = service.applicableBudgets(aCall(), 'gpt-4o', 'openai', clock.nowMs())
    expect(applicable.map((a) => a.budget.id).sort()).toEqual([team.id, model.id].sort())
    expect(applicable[0]!.period.key).toBe('2026-11')
    expect(service.applicableBudgets(aCall({ environment: 'staging' }), 'o3', 'openai', clock.nowMs()).map((a) => a.budget.id)).toEqual(
      [staging.id, team.id].sort(),
    )
    expect(service.applicableBudgets(aCall({ teamId: 'team_sales' }), 'o3', 'openai', clock.nowMs())).toEqual([])
    expect(service.applicableBudgets(aCall({ orgId: 'org_other' }), 'gpt-4o', 'openai', clock.nowMs())).toEqual([])
  })

  it('blocks a hard budget at 100% until the period resets, and lets it through one micro below', async () => {
    const { service, clock } = setup()
    const budget = await service.create(ORG, aBudgetBody({ hard_limit: true }))
    const applicable = service.applicableBudgets(aCall(), 'gpt-4o', 'openai', clock.nowMs())
    expect(service.decide(applicable, () => usd(100), 'gpt-4o')).toEqual({
      kind: 'block',
      budget,
      resetAtMs: Date.UTC(2026, 11, 1),
      reason: 'threshold',
      explanation: '100% of $100.00 reached ($100.00 per month)',
    })
    expect(service.decide(applicable, () => micros(99_999_999), 'gpt-4o')).toEqual({ kind: 'allow' })
  })

  it('reports would_block for a shadow budget instead of blocking', async () => {
    const { service, clock } = setup()
    const budget = await service.create(ORG, aBudgetBody({ hard_limit: true, shadow: true }))
    const applicable = service.applicableBudgets(aCall(), 'gpt-4o', 'openai', clock.nowMs())
    expect(service.decide(applicable, () => usd(150), 'gpt-4o')).toEqual({ kind: 'would_block', budget })
  })

  it('degrades to the configured cheaper model, or caps output when there is none', async () => {
    const { db, clock } = setup()
    const withTarget = wire(db, clock, channels)
    const budget = await withTarget.service.create(ORG, aBudgetBody({ threshold_actions: [{ threshold_percent: 80, action: 'degrade' }] }))
    const applicable = withTarget.service.applicableBudgets(aCall(), 'gpt-4o', 'openai', clock.nowMs())
    expect(withTarget.service.decide(applicable, () => usd(85), 'gpt-4o')).toEqual({ kind: 'degrade', budget, outputTokensMax: 1024, reason: 'threshold' })
  })
})

describe('CRUD', () => {
  it('scopes budgets to their org, refuses duplicate names and unknown channels, patches a subset', async () => {
    const { service } = setup()
    const budget = await service.create(ORG, aBudgetBody({ channels: ['ops-webhook'] }))
    await expect(service.get('org_other', budget.id)).rejects.toMatchObject({ code: 'not_found' })
    await expect(service.create(ORG, aBudgetBody())).rejects.toMatchObject({ code: 'conflict' })
    await expect(service.create(ORG, aBudgetBody({ name: 'x', channels: ['nope'] }))).rejects.toBeInstanceOf(BudgetError)
    const patched = await service.patch(ORG, budget.id, { amount_usd: micros(250_000_000), alert_thresholds: [90, 10] })
    expect(patched.amountMicros).toBe(250_000_000)
    expect(patched.alertThresholds).toEqual([10, 90])
    expect(patched.name).toBe('marketing monthly')
    expect((await service.list(ORG)).map((b) => b.id)).toEqual([budget.id])
    await service.delete(ORG, budget.id)
    await expect(service.delete(ORG, budget.id)).rejects.toMatchObject({ code: 'not_found' })
  })

  it('caps the budgets of one team and of the org: a team full of budgets cannot take more, by creation or by a change of team', async () => {
    const { service } = setup({ budgetsPerTeamMax: 2, budgetsPerOrgMax: 4 })
    const userIn = (team: string, name: string) => aBudgetBody({ name, scope: { kind: 'user', id: 'ana', team_id: team } })
    await service.create(ORG, aBudgetBody({ name: 'marketing team' }))
    await service.create(ORG, userIn('team_marketing', 'ana in marketing'))
    await expect(service.create(ORG, userIn('team_marketing', 'one too many'))).rejects.toThrow('team team_marketing may have at most 2 budgets')
    const moving = await service.create(ORG, userIn('team_sales', 'ana in sales'))
    await expect(service.patch(ORG, moving.id, { scope: { kind: 'user', id: 'ana', team_id: 'team_marketing' } })).rejects.toThrow(
      'team team_marketing may have at most 2 budgets',
    )
    // Changing a budget within its team needs no room.
    await service.patch(ORG, moving.id, { amount_usd: micros(5_000_000) })
    await service.create(ORG, aBudgetBody({ name: 'org wide', scope: { kind: 'org', id: ORG } }))
    await expect(service.create(ORG, userIn('team_support', 'past the org'))).rejects.toThrow('an org may have at most 4 budgets')
    expect((await service.list(ORG)).map((b) => b.name).sort()).toEqual(['ana in marketing', 'ana in sales', 'marketing team', 'org wide'])
  })

  it('upserts config-declared budgets by name at start', async () => {
    const { service } = setup()
    const spec: BudgetSpec = {
      id: undefined,
      name: 'declared',
      scopeKind: 'org',
      scopeId: ORG,
      scopeTeamId: undefined,
      environment: undefined,
      period: 'daily',
      timezone: 'Europe/Berlin',
      amountMicros: usd(10),
      alertThresholds: [50],
      thresholdActions: [],
      hardLimit: false,
      shadow: false,
      categories: [],
      owner: undefined,
      channels: undefined,
    }
    const [first] = await service.syncDeclared([spec], ORG)
    const [second] = await service.syncDeclared([{ ...spec, amountMicros: usd(20) }], ORG)
    expect(second!.id).toBe(first!.id)
    expect((await service.get(ORG, first!.id)).amountMicros).toBe(20_000_000)
  })
})

describe('onSpendSettled', () => {
  it('fires each crossed threshold once per period, with spend, period and top spenders', async () => {
    const { service, notifyStore, db, clock } = setup()
    const budget = await service.create(ORG, aBudgetBody())
    insertSpend(db, { atMs: clock.nowMs() - HOUR, costMicros: 40_000_000, userId: 'u_ana', endpointTag: 'copywriter' })
    insertSpend(db, { atMs: clock.nowMs() - HOUR, costMicros: 15_000_000, userId: 'u_bo', endpointTag: 'summarise', model: 'gpt-4o-mini' })
    insertSpend(db, { atMs: Date.UTC(2026, 9, 31), costMicros: 99_000_000, userId: 'u_old', endpointTag: 'old' }) // previous period

    const crossing = { budgetId: budget.id, periodKey: '2026-11', spentBeforeMicros: usd(40), spentAfterMicros: usd(55) }
    const fired = await service.onSpendSettled([crossing], { atMs: clock.nowMs() })
    const thresholds = fired.filter((f) => f.type === 'budget.threshold')
    expect(thresholds.map((f) => f.dedupeKey)).toEqual([`v1:${budget.id}:2026-11:50`])
    expect(await service.onSpendSettled([crossing], { atMs: clock.nowMs() })).toEqual([])

    const inbox = await notifyStore.listInbox(ORG, { unreadOnly: true, limit: 10, beforeId: undefined, teamId: undefined })
    const entry = inbox.find((e) => e.notification.type === 'budget.threshold')
    expect(entry!.notification.data).toMatchObject({
      budget_id: budget.id,
      scope: 'team:team_marketing',
      threshold_percent: 50,
      spend_usd: 55,
      amount_usd: 100,
      percent: 55,
      period_start: '2026-11-01T00:00:00.000Z',
      period_end: '2026-12-01T00:00:00.000Z',
      top: {
        endpoints: [
          { id: 'copywriter', spend_usd: 40 },
          { id: 'summarise', spend_usd: 15 },
        ],
        users: [
          { id: 'u_ana', spend_usd: 40 },
          { id: 'u_bo', spend_usd: 15 },
        ],
        models: [
          { id: 'gpt-4o', spend_usd: 40 },
          { id: 'gpt-4o-mini', spend_usd: 15 },
        ],
      },
    })
    // Every configured channel got one outbox item (the budget names none).
    expect((await notifyStore.itemsOf(entry!.notification.id)).map((i) => i.channelId)).toEqual(['finance-slack', 'ops-webhook'])
  })

  it('lets exactly one of many concurrent settles (two services on one file) fire each threshold', async () => {
    const { service, db, clock, path } = setup()
    const budget = await service.create(ORG, aBudgetBody())
    const other = wire(openNotifyDb(path), clock, channels)
    await other.service.refresh()
    const settles = Array.from({ length: 40 }, (_, i) => {
      const s = i % 2 === 0 ? service : other.service
      return s.onSpendSettled([{ budgetId: budget.id, periodKey: '2026-11', spentBeforeMicros: usd(49), spentAfterMicros: usd(96) }], { atMs: clock.nowMs() })
    })
    const fired = (await Promise.all(settles)).flat().filter((f) => f.type === 'budget.threshold')
    expect(fired.map((f) => f.dedupeKey).sort()).toEqual(
      [80, 95, 50]
        .sort()
        .map((p) => `v1:${budget.id}:2026-11:${p}`)
        .sort(),
    )
    const count = db.prepare("SELECT COUNT(*) AS n FROM notifications WHERE type = 'budget.threshold'").get() as { n: number }
    expect(count.n).toBe(3)
  })

  it('sends budget.blocked when a hard limit is reached, and only on the budget channels', async () => {
    const { service, clock, notifyStore } = setup()
    const budget = await service.create(ORG, aBudgetBody({ hard_limit: true, alert_thresholds: [], channels: ['ops-webhook'] }))
    const fired = await service.onSpendSettled([{ budgetId: budget.id, periodKey: '2026-11', spentBeforeMicros: usd(99), spentAfterMicros: usd(101) }], {
      atMs: clock.nowMs(),
    })
    expect(fired.map((f) => f.type)).toEqual(['budget.blocked'])
    expect((await notifyStore.itemsOf(fired[0]!.notificationId)).map((i) => i.channelId)).toEqual(['ops-webhook'])
  })

  it('raises a forecast before any threshold when the recent burn will exhaust the budget, once per period', async () => {
    const { service, db, clock } = setup({ checkIntervalMs: 0 })
    const budget = await service.create(ORG, aBudgetBody({ amount_usd: 1000 }))
    // 14 quiet days at $0.50/h, then $40/h for the last 6 hours: $168 + $240 = $408 so far.
    const periodStart = Date.UTC(2026, 10, 1)
    for (let hour = 0; hour < 14 * 24 + 6; hour++) {
      clock.set(periodStart + hour * HOUR + 30 * 60_000)
      insertSpend(db, { atMs: clock.nowMs(), costMicros: hour < 14 * 24 ? 500_000 : 40_000_000 })
    }
    clock.set(periodStart + (14 * 24 + 6) * HOUR)
    const spent = micros(14 * 24 * 500_000 + 6 * 40_000_000)
    const fired = await service.onSpendSettled([{ budgetId: budget.id, periodKey: '2026-11', spentBeforeMicros: micros(spent - 1), spentAfterMicros: spent }], {
      atMs: clock.nowMs(),
    })
    const forecast = fired.find((f) => f.type === 'budget.forecast')
    expect(forecast).toBeDefined()
    expect(fired.some((f) => f.type === 'budget.spike')).toBe(true)

    const row = db.prepare('SELECT data_json FROM notifications WHERE id = ?').get(forecast!.notificationId) as { data_json: string }
    const data = JSON.parse(row.data_json) as { forecast_exhaustion_at: string; projected_spend_usd: number }
    // At the recent pace (~$30/h blended) the remaining $592 lasts roughly 20 hours; the month average would say never.
    const exhaustion = Date.parse(data.forecast_exhaustion_at)
    expect(exhaustion).toBeGreaterThan(clock.nowMs() + 12 * HOUR)
    expect(exhaustion).toBeLessThan(clock.nowMs() + 36 * HOUR)
    expect(data.projected_spend_usd).toBeGreaterThan(1000)

    clock.advance(HOUR)
    const again = await service.onSpendSettled([{ budgetId: budget.id, periodKey: '2026-11', spentBeforeMicros: spent, spentAfterMicros: micros(spent + 1) }], {
      atMs: clock.nowMs(),
    })
    expect(again.filter((f) => f.type === 'budget.forecast')).toEqual([])
  })
})

/** A usage reader that counts its `spendBuckets` reads, and fails them for `failing` teams. */
function countingUsage(usage: BudgetUsageReader, failing: readonly string[] = []) {
  const reads: string[] = []
  const reader: BudgetUsageReader = {
    spendBuckets: async (filter, endMs, bucketMs, count) => {
      reads.push(filter.scopeId)
      if (failing.includes(filter.scopeId)) throw new Error(`usage of ${filter.scopeId} unavailable`)
      return usage.spendBuckets(filter, endMs, bucketMs, count)
    },
    spendBetween: (filter, fromMs, toMs) => usage.spendBetween(filter, fromMs, toMs),
    topSpenders: (filter, fromMs, toMs, limit) => usage.topSpenders(filter, fromMs, toMs, limit),
  }
  return { reader, reads }
}

describe('checkTrends reads', () => {
  it('reads usage once for both the forecast and the spike of a settle', async () => {
    const { db, clock, path } = setup()
    const { reader, reads } = countingUsage(wire(db, clock).budgetStore)
    const { service } = wire(openNotifyDb(path), clock, channels, { checkIntervalMs: 0 }, { usage: reader })
    // No thresholds: their notices read usage for their own context.
    const budget = await service.create(ORG, aBudgetBody({ amount_usd: 1000, alert_thresholds: [] }))
    reads.length = 0
    // $2 an hour since the 1st, then a $30 hour: both a forecast and a spike.
    for (let at = Date.UTC(2026, 10, 1) + 30 * 60_000; at < clock.nowMs() - HOUR; at += HOUR) insertSpend(db, { atMs: at, costMicros: 2_000_000 })
    insertSpend(db, { atMs: clock.nowMs() - 10 * 60_000, costMicros: 30_000_000 })
    const fired = await service.onSpendSettled([{ budgetId: budget.id, periodKey: '2026-11', spentBeforeMicros: usd(500), spentAfterMicros: usd(700) }], {
      atMs: clock.nowMs(),
    })
    expect(fired.map((f) => f.type).sort()).toEqual(['budget.forecast', 'budget.spike'])
    expect(reads).toEqual(['team_marketing'])
  })
})

describe('recoverTrends (at start)', () => {
  const NOW = Date.UTC(2026, 10, 15, 12, 5)

  /** A monthly budget of `team` with `amount`. */
  const aTeamBudget = (service: ReturnType<typeof setup>['service'], team: string, amount: number) =>
    service.create(ORG, aBudgetBody({ name: team, scope: { kind: 'team', id: team }, amount_usd: amount, alert_thresholds: [] }))

  /** What a process killed after its settle committed leaves: the counter moved, the trends never looked at. */
  async function spentWithoutNotice(ledger: ReturnType<typeof setup>['ledger'], budget: Budget, atMs: number, amountUsd: number) {
    await ledger.recordSpend(ORG, [counterRefOf(budget, periodOf(budget.period, budget.timezone, atMs))], usd(amountUsd))
  }

  const countOf = (db: ReturnType<typeof setup>['db'], type: string) =>
    (db.prepare('SELECT COUNT(*) AS n FROM notifications WHERE type = ?').get(type) as { n: number }).n

  it('sends the forecast a crash lost, once, when two processes start at once; a later start sends none', async () => {
    const { service, db, clock, path, ledger } = setup()
    clock.set(NOW)
    const budget = await aTeamBudget(service, 'team_steady', 1000)
    // $2 every hour since the 1st: $697 by now, $1,441 by the end of the month at that rate. No spike.
    let spent = 0
    for (let at = Date.UTC(2026, 10, 1) + 30 * 60_000; at < NOW; at += HOUR) {
      insertSpend(db, { atMs: at, costMicros: 2_000_000, teamId: 'team_steady' })
      spent += 2
    }
    await spentWithoutNotice(ledger, budget, NOW, spent)
    expect(countOf(db, 'budget.forecast')).toBe(0)

    const other = wire(openNotifyDb(path), clock, channels)
    await other.service.refresh()
    const started = await Promise.all([service.recoverTrends(), other.service.recoverTrends()])
    expect(started.flat().map((f) => [f.type, f.dedupeKey])).toEqual([['budget.forecast', `v1:${budget.id}:2026-11:forecast`]])
    expect(countOf(db, 'budget.forecast')).toBe(1)
    expect(countOf(db, 'budget.spike')).toBe(0)
    const row = db.prepare("SELECT data_json FROM notifications WHERE type = 'budget.forecast'").get() as { data_json: string }
    const data = JSON.parse(row.data_json) as Record<string, unknown>
    expect(data).toMatchObject({ budget_id: budget.id, spend_usd: spent, amount_usd: 1000 })
    expect(data['forecast_exhaustion_at']).toMatch(/^2026-11-2/)
    expect(data['projected_spend_usd']).toBeGreaterThan(1000)

    // A later start finds the mark.
    const third = wire(openNotifyDb(path), clock, channels)
    await third.service.refresh()
    expect(await third.service.recoverTrends()).toEqual([])
    expect(countOf(db, 'budget.forecast')).toBe(1)
  })

  it('flushes usage first: events a killed process left in the journal count', async () => {
    const { service, db, clock, path, ledger } = setup()
    clock.set(NOW)
    const budget = await aTeamBudget(service, 'team_journal', 1_000_000)
    await spentWithoutNotice(ledger, budget, NOW, 25)
    // The burst becomes readable only when usage is flushed (as a drained journal does).
    let journal = [{ atMs: NOW - 60_000, costMicros: 25_000_000, teamId: 'team_journal' }]
    const flushUsage = async () => {
      for (const row of journal) insertSpend(db, row)
      journal = []
    }
    const restarted = wire(openNotifyDb(path), clock, channels, {}, { flushUsage })
    await restarted.service.refresh()
    expect((await restarted.service.recoverTrends()).map((f) => f.type)).toEqual(['budget.spike'])
  })

  it('sends a spike of the last hour whose notice is missing; not one that is over, nor one announced last hour', async () => {
    const { service, db, clock, path, ledger } = setup()
    clock.set(NOW)
    const teams = ['team_now', 'team_over', 'team_told', 'team_untold'] as const
    const budgets = new Map<string, Budget>()
    // Large amounts: no forecast, only spikes.
    for (const team of teams) budgets.set(team, await aTeamBudget(service, team, 1_000_000))
    const burst = (team: string, atMs: number) => insertSpend(db, { atMs, costMicros: 20_000_000, teamId: team })
    burst('team_now', NOW - 3 * 60_000) // this hour, its notice lost
    burst('team_over', NOW - 3 * HOUR) // three hours ago: over
    burst('team_told', NOW - 45 * 60_000) // last hour, announced then
    burst('team_untold', NOW - 45 * 60_000) // last hour, its notice lost
    for (const team of teams) await spentWithoutNotice(ledger, budgets.get(team)!, NOW, 20)
    // A settle at 11:50 announced team_told's spike (the notice of hour 11).
    clock.set(NOW - 15 * 60_000)
    const told = budgets.get('team_told')!
    const announced = await service.onSpendSettled([{ budgetId: told.id, periodKey: '2026-11', spentBeforeMicros: usd(0), spentAfterMicros: usd(20) }], {
      atMs: clock.nowMs(),
    })
    expect(announced.map((f) => f.type)).toEqual(['budget.spike'])
    clock.set(NOW)

    const restarted = wire(openNotifyDb(path), clock, channels)
    await restarted.service.refresh()
    const fired = await restarted.service.recoverTrends()
    const hour = Math.floor(NOW / HOUR)
    expect(fired.map((f) => f.dedupeKey).sort()).toEqual(
      [`v1:${budgets.get('team_now')!.id}:2026-11:spike:${hour}`, `v1:${budgets.get('team_untold')!.id}:2026-11:spike:${hour}`].sort(),
    )
    expect(fired.every((f) => f.type === 'budget.spike')).toBe(true)
    expect(countOf(db, 'budget.spike')).toBe(3)
  })

  it('reads usage once per budget with spend, none for a budget whose notices are marked, and reports failures without stopping', async () => {
    const { service, db, clock, path, ledger } = setup()
    clock.set(NOW)
    const steady = await aTeamBudget(service, 'team_steady', 1000)
    const broken = await aTeamBudget(service, 'team_broken', 1000)
    const done = await aTeamBudget(service, 'team_done', 1000)
    await aTeamBudget(service, 'team_idle', 1000)
    for (let at = Date.UTC(2026, 10, 1) + 30 * 60_000; at < NOW; at += HOUR) {
      for (const team of ['team_steady', 'team_broken', 'team_done']) insertSpend(db, { atMs: at, costMicros: 2_000_000, teamId: team })
    }
    insertSpend(db, { atMs: NOW - 60_000, costMicros: 30_000_000, teamId: 'team_done' })
    for (const budget of [steady, broken, done]) await spentWithoutNotice(ledger, budget, NOW, 700)
    // team_done's forecast and this hour's spike went out before the restart.
    const before = await service.onSpendSettled([{ budgetId: done.id, periodKey: '2026-11', spentBeforeMicros: usd(699), spentAfterMicros: usd(700) }], {
      atMs: NOW,
    })
    expect(before.map((f) => f.type).sort()).toEqual(['budget.forecast', 'budget.spike'])

    const errors: string[] = []
    const { reader, reads } = countingUsage(wire(db, clock).budgetStore, ['team_broken'])
    const restarted = wire(openNotifyDb(path), clock, channels, {}, { usage: reader, onError: (_error, what) => errors.push(what) })
    await restarted.service.refresh()
    const fired = await restarted.service.recoverTrends()
    expect(fired.map((f) => f.dedupeKey)).toEqual([`v1:${steady.id}:2026-11:forecast`])
    expect(reads.sort()).toEqual(['team_broken', 'team_steady'])
    expect(errors).toEqual([`budget ${broken.id}: looking for forecast and spike notices lost by a crash`])
  })
})

describe('onWalletSpendSettled', () => {
  it('fires the configured wallet alerts once per allocation, exhausted at the block threshold', async () => {
    const clock = new FakeClock()
    const db = openNotifyDb(tempDbPath())
    const base = wire(db, clock, channels)
    const { BudgetService } = await import('./budget-service.js')
    const service = new BudgetService({
      store: base.budgetStore,
      usage: base.budgetStore,
      counters: base.ledger,
      notifications: base.notifier,
      clock,
      channelIds: ['ops-webhook'],
      walletAlerts: [
        { thresholdPercent: 50, action: 'notify' },
        { thresholdPercent: 100, action: 'block' },
      ],
    })
    const crossing = {
      walletId: 'wal_1',
      orgId: ORG,
      scope: { kind: 'team' as const, id: 'team_marketing' },
      teamId: 'team_marketing',
      allocatedMicros: usd(500) as Micros,
      spentBeforeMicros: usd(200) as Micros,
      spentAfterMicros: usd(500) as Micros,
    }
    const fired = await service.onWalletSpendSettled([crossing], { atMs: clock.nowMs() })
    expect(fired.map((f) => f.type)).toEqual(['wallet.threshold', 'wallet.exhausted'])
    expect(await service.onWalletSpendSettled([crossing], { atMs: clock.nowMs() })).toEqual([])
  })
})

describe('wallet alerts reached since the last allocation', () => {
  const wallet = { scopeKind: 'team' as const, scopeId: 'team_marketing' }
  const alerts = [
    { thresholdPercent: 50, action: 'notify' as const },
    { thresholdPercent: 80, action: 'notify' as const },
    { thresholdPercent: 100, action: 'block' as const },
  ]

  /** A SQLite ledger and a BudgetService with wallet alerts; `process()` is another gateway process on the same file. */
  function walletSetup() {
    const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
    const db = openNotifyDb(tempDbPath())
    const base = wire(db, clock, channels)
    let storeReads = 0
    const process = () => {
      const counted = wire(db, clock, channels).budgetStore
      const firedKeys = counted.firedKeys.bind(counted)
      counted.firedKeys = async (keys) => {
        storeReads++
        return firedKeys(keys)
      }
      return wire(db, clock, channels, {}, { walletAlerts: alerts, store: counted }).service
    }
    const allocate = (amount: number) => base.ledger.allocate({ orgId: ORG, wallet, amountMicros: usd(amount), description: undefined, atMs: clock.nowMs() })
    /** Spends `amount` from the wallet through the ledger, as a settle does; returns what the service is handed. */
    const spend = async (amount: number) => {
      clock.advance(1_000)
      const reservationId = `res_${clock.nowMs()}`
      const reserved = await base.ledger.reserve({
        reservationId,
        orgId: ORG,
        cascade: [wallet],
        walletRequired: true,
        walletCapPercent: 100,
        amountMicros: usd(amount),
        budgets: [],
        requestId: undefined,
        atMs: clock.nowMs(),
        expiresAtMs: clock.nowMs() + 60_000,
      })
      expect(reserved.kind).toBe('reserved')
      const settled = await base.ledger.settle(ORG, reservationId, usd(amount), clock.nowMs())
      if (settled.kind !== 'settled' || !settled.walletCrossing) throw new Error(`not settled: ${settled.kind}`)
      // As the proxy hands it over: the ledger's report (spend at the allocation included), with the org.
      return { ...settled.walletCrossing, orgId: ORG, scope: { kind: 'team' as const, id: wallet.scopeId } }
    }
    /** The wallet notices written so far: type, percent, and the allocation it was against, by allocation, then percent. */
    const notices = async () =>
      (await base.notifyStore.listInbox(ORG, { unreadOnly: false, limit: 100, beforeId: undefined, teamId: undefined }))
        .map((e) => e.notification)
        .filter((n) => n.type.startsWith('wallet.'))
        .map((n) => [n.type, n.data['threshold_percent'], n.data['amount_usd']] as const)
        .sort(([, pa, aa], [, pb, ab]) => Number(aa) - Number(ab) || Number(pa ?? 1_000) - Number(pb ?? 1_000))
    return { clock, process, allocate, spend, notices, storeReads: () => storeReads }
  }

  it('an alert whose notice was lost after its settle committed is fired by the next settle, once, reading the store once', async () => {
    const { clock, process, allocate, spend, notices, storeReads } = walletSetup()
    const service = process()
    await allocate(100)
    // The process that settled $60 of $100 died before its notice: the 50% mark is passed, unmarked.
    await spend(60)
    expect(await notices()).toEqual([])

    // The next settle crosses nothing, but the 50% alert was reached since the allocation: it fires now.
    const fired = await service.onWalletSpendSettled([await spend(5)], { atMs: clock.nowMs() })
    expect(fired.map((f) => f.type)).toEqual(['wallet.threshold'])
    expect(await notices()).toEqual([['wallet.threshold', 50, 100]])
    expect(storeReads()).toBe(1)
    // Known written now: later settles of this process ask nothing.
    expect(await service.onWalletSpendSettled([await spend(5)], { atMs: clock.nowMs() })).toEqual([])
    expect(storeReads()).toBe(1)
    // Another process, which has not seen it fire, reads the mark once and fires nothing.
    const other = process()
    expect(await other.onWalletSpendSettled([await spend(1)], { atMs: clock.nowMs() })).toEqual([])
    expect(await other.onWalletSpendSettled([await spend(1)], { atMs: clock.nowMs() })).toEqual([])
    expect(storeReads()).toBe(2)
    // Nor does a start, which reads the marks once for all its wallets and then writes nothing.
    expect(await process().recoverWalletAlerts()).toEqual([])
    expect(storeReads()).toBe(3)
    expect(await notices()).toEqual([['wallet.threshold', 50, 100]])
  })

  it('an alert a top-up jumped over is never fired: neither by the next settle nor at start', async () => {
    const { clock, process, allocate, spend, notices } = walletSetup()
    const service = process()
    await allocate(100)
    await service.onWalletSpendSettled([await spend(60)], { atMs: clock.nowMs() })
    await service.onWalletSpendSettled([await spend(25)], { atMs: clock.nowMs() })
    expect(await notices()).toEqual([
      ['wallet.threshold', 50, 100],
      ['wallet.threshold', 80, 100],
    ])
    // $85 spent, topped up to $150: 50% of it ($75) was passed before the top-up, by no settle since.
    expect(await allocate(50)).toMatchObject({ allocatedMicros: usd(150), spentAtAllocationMicros: usd(85) })
    expect(await service.onWalletSpendSettled([await spend(5)], { atMs: clock.nowMs() })).toEqual([])
    expect(await service.recoverWalletAlerts()).toEqual([])
    expect(await process().recoverWalletAlerts()).toEqual([])
    expect(await process().onWalletSpendSettled([await spend(1)], { atMs: clock.nowMs() })).toEqual([])
    expect(await notices()).toHaveLength(2)
    // 80% of $150 is crossed by spend: it fires, against the new total.
    await service.onWalletSpendSettled([await spend(30)], { atMs: clock.nowMs() })
    expect(await notices()).toEqual([
      ['wallet.threshold', 50, 100],
      ['wallet.threshold', 80, 100],
      ['wallet.threshold', 80, 150],
    ])
  })

  it('a top-up re-arms the alerts: one crossed after it and lost is fired by the next settle, or at start', async () => {
    const { clock, process, allocate, spend, notices } = walletSetup()
    const service = process()
    await allocate(100)
    await service.onWalletSpendSettled([await spend(60)], { atMs: clock.nowMs() })
    await allocate(100)
    // $60 → $110 of $200 crosses 50% again, at the new total; that settle's notice is lost.
    await spend(50)
    expect(await notices()).toEqual([['wallet.threshold', 50, 100]])
    expect((await service.onWalletSpendSettled([await spend(1)], { atMs: clock.nowMs() })).map((f) => f.dedupeKey)).toEqual([
      expect.stringMatching(/^v1:wal_[^:]+:alloc-200000000:50$/),
    ])
    // $111 → $200: 80% and the block alert (100%) are crossed; their notices are lost too. The next start writes them.
    await spend(89)
    expect((await process().recoverWalletAlerts()).map((f) => f.type)).toEqual(['wallet.threshold', 'wallet.exhausted'])
    expect(await process().recoverWalletAlerts()).toEqual([])
    expect(await notices()).toEqual([
      ['wallet.threshold', 50, 100],
      ['wallet.threshold', 50, 200],
      ['wallet.threshold', 80, 200],
      ['wallet.exhausted', 100, 200],
    ])
  })

  it('a wallet exhausted by a refusal is not announced again when its spend reaches the block alert', async () => {
    const { clock, process, allocate, spend, notices } = walletSetup()
    const service = process()
    const funded = await allocate(100)
    await service.onWalletSpendSettled([await spend(85)], { atMs: clock.nowMs() })
    const refused = await service.onWalletRefused(
      {
        walletId: funded.id,
        orgId: ORG,
        scope: { kind: 'team', id: 'team_marketing' },
        teamId: 'team_marketing',
        allocatedMicros: usd(100),
        spentAfterMicros: usd(85),
      },
      usd(20),
      clock.nowMs(),
    )
    expect(refused.map((f) => f.type)).toEqual(['wallet.exhausted'])
    expect(await process().onWalletSpendSettled([await spend(15)], { atMs: clock.nowMs() })).toEqual([])
    expect(await notices()).toEqual([
      ['wallet.threshold', 50, 100],
      ['wallet.threshold', 80, 100],
      ['wallet.exhausted', undefined, 100],
    ])
  })

  it('a wallet with a period fires only what its settle crosses: its marks are per period, not per allocation', async () => {
    const { clock, process } = walletSetup()
    const crossing = {
      walletId: 'wal_period',
      orgId: ORG,
      scope: { kind: 'team' as const, id: 'team_marketing' },
      teamId: 'team_marketing',
      allocatedMicros: usd(100),
      spentAtAllocationMicros: usd(0),
      periodKey: '2026-11',
    }
    const service = process()
    expect(await service.onWalletSpendSettled([{ ...crossing, spentBeforeMicros: usd(60), spentAfterMicros: usd(65) }], { atMs: clock.nowMs() })).toEqual([])
    const fired = await service.onWalletSpendSettled([{ ...crossing, spentBeforeMicros: usd(65), spentAfterMicros: usd(81) }], { atMs: clock.nowMs() })
    expect(fired.map((f) => f.dedupeKey)).toEqual(['v1:wal_period:2026-11:80'])
  })
})

describe('block_if_forecast_exceeds notices', () => {
  /** A daily $10 budget whose 50% mark is a forecast-confirmed block, and `hourly` spent in each of the last 6 hours. */
  async function crossWith(hourly: number) {
    const { service, notifyStore, db, clock } = setup()
    const budget = await service.create(
      ORG,
      aBudgetBody({
        period: 'daily',
        amount_usd: 10,
        alert_thresholds: [],
        threshold_actions: [{ threshold_percent: 50, action: 'block_if_forecast_exceeds' }],
      }),
    )
    for (let hour = 1; hour <= 6; hour++) insertSpend(db, { atMs: clock.nowMs() - hour * HOUR + 1, costMicros: hourly * 1_000_000 })
    const fired = await service.onSpendSettled([{ budgetId: budget.id, periodKey: '2026-11-15', spentBeforeMicros: usd(4.9), spentAfterMicros: usd(5.1) }], {
      atMs: clock.nowMs(),
    })
    const inbox = await notifyStore.listInbox(ORG, { unreadOnly: false, limit: 10, beforeId: undefined, teamId: undefined })
    const notice = inbox.find((e) => e.notification.data['budget_id'] === budget.id && e.notification.data['threshold_percent'] === 50)!.notification
    return { fired, notice }
  }

  it('announces the block with the forecast that confirmed it', async () => {
    const { fired, notice } = await crossWith(0.8)
    // The forecast notice goes out too: the budget is on course to run out.
    expect(fired.map((f) => f.type)).toEqual(['budget.blocked', 'budget.forecast'])
    expect(notice.type).toBe('budget.blocked')
    expect(notice.data).toMatchObject({ threshold_percent: 50, action: 'block_if_forecast_exceeds', forecast_decision: 'confirmed' })
    expect(notice.data['projected_spend_usd']).toBeGreaterThan(10)
    expect(notice.data['forecast_exhaustion_at']).toMatch(/^2026-11-15T/)
    expect(notice.data['forecast_note']).toMatch(/^Blocking: the burn-rate forecast projects/)
  })

  it('only notifies, and says so, when the forecast shows the budget lasting the day', async () => {
    const { fired, notice } = await crossWith(0.01)
    expect(fired.map((f) => f.type)).toEqual(['budget.threshold'])
    expect(notice.data).toMatchObject({ forecast_decision: 'not_confirmed', forecast_exhaustion_at: null })
    expect(notice.data['projected_spend_usd']).toBeLessThan(10)
    expect(notice.data['forecast_note']).toMatch(/^Notifying only/)
  })
})
