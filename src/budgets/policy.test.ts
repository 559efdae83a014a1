/**
 * The pure budget decision, table by table: the action ladder (block > degrade > notify, hard
 * limit, shadow), each tier's expansion and what it then decides, and `block_if_forecast_exceeds`
 * with forecasts computed from hourly buckets at fake-clock instants in a real monthly period.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { FakeClock } from '../lib/clock.js'
import { micros, type Micros } from '../money/index.js'
import type { BudgetSpec, BudgetThresholdAction, EndpointTier } from '../config/types.js'
import { forecastSpend } from './forecast.js'
import { periodOf } from './period.js'
import { decideBudgetAction, forecastConfirms, strongestAction, type BudgetPolicyInput, type RequestFacts } from './policy.js'
import { expandTier, tierConflict, TIER_RULES } from './tiers.js'

const HOUR = 3_600_000
const usd = (value: number) => micros(Math.round(value * 1_000_000))
const NO_REQUEST: RequestFacts = { endpointTag: undefined, endpointTier: undefined }

function spec(overrides: Partial<BudgetSpec> = {}): BudgetSpec & { id: string } {
  return {
    name: 'search monthly',
    scopeKind: 'endpoint',
    scopeId: 'search',
    scopeTeamId: undefined,
    environment: undefined,
    period: 'monthly',
    timezone: 'UTC',
    amountMicros: usd(100),
    alertThresholds: [],
    thresholdActions: [],
    hardLimit: false,
    shadow: false,
    categories: [],
    owner: undefined,
    channels: undefined,
    ...overrides,
    id: overrides.id ?? 'bud_1',
  }
}

const clock = new FakeClock(Date.UTC(2026, 10, 15, 12))
const period = periodOf('monthly', 'UTC', clock.nowMs())

function input(budget: BudgetSpec & { id: string }, spent: Micros, overrides: Partial<BudgetPolicyInput> = {}): BudgetPolicyInput {
  return { budget, period, spentMicros: spent, forecast: undefined, request: NO_REQUEST, nowMs: clock.nowMs(), ...overrides }
}

describe('the action ladder', () => {
  const ladder: BudgetThresholdAction[] = [
    { thresholdPercent: 50, action: 'notify' },
    { thresholdPercent: 80, action: 'degrade' },
    { thresholdPercent: 95, action: 'block' },
  ]
  it.each<[string, Partial<BudgetSpec>, number, Record<string, unknown>]>([
    ['allows below every threshold', { thresholdActions: ladder }, 49_999_999, { kind: 'allow' }],
    ['notifies at 50%', { thresholdActions: ladder }, 50_000_000, { kind: 'notify', thresholdPercent: 50 }],
    ['degrades from 80%', { thresholdActions: ladder }, 80_000_000, { kind: 'degrade', thresholdPercent: 80 }],
    ['still degrades one micro below 95%', { thresholdActions: ladder }, 94_999_999, { kind: 'degrade', thresholdPercent: 80 }],
    ['blocks from 95%', { thresholdActions: ladder }, 95_000_000, { kind: 'block', thresholdPercent: 95, reason: 'threshold' }],
    ['a hard limit blocks at 100%', { hardLimit: true }, 100_000_000, { kind: 'block', thresholdPercent: 100 }],
    ['a hard limit allows one micro below 100%', { hardLimit: true }, 99_999_999, { kind: 'allow' }],
    [
      'shadow turns block into would_block',
      { thresholdActions: [ladder[0]!, ladder[2]!], shadow: true },
      96_000_000,
      { kind: 'would_block', thresholdPercent: 95 },
    ],
    [
      'shadow keeps the degrade it reached rather than blocking',
      { thresholdActions: ladder, shadow: true },
      96_000_000,
      { kind: 'degrade', thresholdPercent: 80 },
    ],
    ['shadow with a hard limit would block at 100%', { hardLimit: true, shadow: true }, 100_000_000, { kind: 'would_block', thresholdPercent: 100 }],
  ])('%s', (_name, overrides, spent, expected) => {
    expect(decideBudgetAction(input(spec(overrides), spent as Micros))).toMatchObject(expected)
  })

  it("degrades a critical endpoint's call where any other call is refused", () => {
    const budget = spec({ scopeKind: 'team', scopeId: 'search-team', hardLimit: true })
    const critical: RequestFacts = { endpointTag: 'checkout', endpointTier: 'critical' }
    expect(decideBudgetAction(input(budget, usd(100), { request: critical }))).toEqual({ kind: 'degrade', thresholdPercent: 100, reason: 'critical_endpoint' })
    expect(decideBudgetAction(input(budget, usd(100), { request: { endpointTag: 'lab', endpointTier: 'experimental' } }))).toMatchObject({ kind: 'block' })
  })

  it('reports the strongest action across budgets, and the block that resets last', () => {
    const block = (endMs: number) => ({ action: { kind: 'block', thresholdPercent: 100, reason: 'threshold', explanation: '' } as const, periodEndMs: endMs })
    const degrade = { action: { kind: 'degrade', thresholdPercent: 80, reason: 'threshold' } as const, periodEndMs: 5 }
    expect(strongestAction([degrade, block(1), block(3), block(2)])).toEqual(block(3))
    expect(strongestAction([{ action: { kind: 'allow' } as const, periodEndMs: 1 }])).toBeUndefined()
  })
})

describe('endpoint tiers', () => {
  const tiers: Record<string, EndpointTier> = { checkout: 'critical', search: 'standard', lab: 'experimental' }
  const onEndpoint = (id: string, overrides: Partial<BudgetSpec> = {}) => expandTier(spec({ scopeId: id, ...overrides }), tiers)

  it.each<[string, string, number, Record<string, unknown>]>([
    ['critical only notifies below 100%', 'checkout', 99, { kind: 'notify' }],
    ['critical degrades at 100% and never blocks', 'checkout', 250, { kind: 'degrade', thresholdPercent: 100 }],
    ['standard notifies at 50%', 'search', 50, { kind: 'notify', thresholdPercent: 50 }],
    ['standard degrades from the 80% warning threshold', 'search', 80, { kind: 'degrade', thresholdPercent: 80 }],
    ['standard still only degrades past 100% (soft cap)', 'search', 130, { kind: 'degrade', thresholdPercent: 80 }],
    ['experimental only notifies below 100%', 'lab', 99.99, { kind: 'notify' }],
    ['experimental refuses at 100%', 'lab', 100, { kind: 'block', thresholdPercent: 100 }],
    ['an endpoint with no tier keeps its budget as written', 'other', 100, { kind: 'allow' }],
  ])('%s', (_name, endpoint, percent, expected) => {
    expect(decideBudgetAction(input(onEndpoint(endpoint), usd(percent)))).toMatchObject(expected)
  })

  it('expands into exactly the documented actions, escalation and cap', () => {
    expect(onEndpoint('checkout')).toMatchObject({
      tier: 'critical',
      thresholdActions: TIER_RULES.critical.thresholdActions,
      hardLimit: false,
      escalateAfterMs: 30 * 60_000,
    })
    expect(onEndpoint('search')).toMatchObject({
      tier: 'standard',
      thresholdActions: TIER_RULES.standard.thresholdActions,
      hardLimit: false,
      escalateAfterMs: 4 * HOUR,
    })
    expect(onEndpoint('lab')).toMatchObject({ tier: 'experimental', hardLimit: true, escalateAfterMs: undefined })
  })

  it("lets explicit actions replace the tier's at the same percent, and a budget's own tier win over its endpoint's", () => {
    const budget = onEndpoint('search', { thresholdActions: [{ thresholdPercent: 80, action: 'notify', channels: ['slack'] }], escalateAfterMs: HOUR })
    expect(budget.thresholdActions).toEqual([
      { thresholdPercent: 50, action: 'notify' },
      { thresholdPercent: 80, action: 'notify', channels: ['slack'] },
      { thresholdPercent: 100, action: 'notify' },
    ])
    expect(budget.escalateAfterMs).toBe(HOUR)
    expect(onEndpoint('search', { tier: 'experimental' }).hardLimit).toBe(true)
    expect(expandTier(spec({ scopeKind: 'team', scopeId: 'lab' }), tiers).tier).toBeUndefined()
  })

  it('refuses a critical budget that would block, and names the endpoint in an experimental refusal', () => {
    expect(tierConflict({ hardLimit: true, thresholdActions: [] }, 'critical')).toMatch(/degrades instead of blocking/)
    expect(tierConflict({ hardLimit: false, thresholdActions: [{ thresholdPercent: 90, action: 'block_if_forecast_exceeds' }] }, 'critical')).toMatch(
      /block_if_forecast_exceeds action at 90%/,
    )
    expect(tierConflict({ hardLimit: true, thresholdActions: [] }, 'experimental')).toBeUndefined()
    const refusal = decideBudgetAction(input(onEndpoint('lab'), usd(100), { request: { endpointTag: 'lab', endpointTier: 'experimental' } }))
    expect(refusal).toMatchObject({
      kind: 'block',
      explanation: 'endpoint "lab" is experimental, so its budget is a hard cap of $100.00 per month and it is spent',
    })
  })
})

describe('block_if_forecast_exceeds', () => {
  const budget = spec({ thresholdActions: [{ thresholdPercent: 50, action: 'block_if_forecast_exceeds' }] })

  /** A forecast at `nowMs` after `spent` with the last six hours each spending `hourly`. */
  function forecastAt(nowMs: number, spent: Micros, hourly: number) {
    return forecastSpend({
      periodStartMs: period.startMs,
      periodEndMs: period.endMs,
      nowMs,
      spentMicros: spent,
      amountMicros: budget.amountMicros,
      recentBucketsMicros: Array.from({ length: 6 }, () => usd(hourly)),
      bucketMs: HOUR,
    })
  }

  it.each<[string, number, number, number, Record<string, unknown>]>([
    // [name, hours after the fake clock's start, spend USD, recent USD/hour, expected]
    ['below the mark: allowed whatever the forecast', 0, 49.99, 50, { kind: 'allow' }],
    ['at the mark, burning $2/h with 15.5 days left: runs out → block', 0, 50, 2, { kind: 'block', reason: 'forecast_confirmed' }],
    ['at the mark, burning $0.01/h: will not run out → notify only', 0, 50, 0.01, { kind: 'notify', reason: 'forecast_not_confirmed' }],
    ['at the mark, idle: notify only', 0, 55, 0, { kind: 'notify', reason: 'forecast_not_confirmed' }],
    ['2 hours before the month ends, slow burn short of the amount: notify', 15 * 24 + 10, 90, 0.1, { kind: 'notify', reason: 'forecast_not_confirmed' }],
    ['2 hours before the month ends, $10/h: block', 15 * 24 + 10, 90, 10, { kind: 'block', reason: 'forecast_confirmed' }],
    ['already over the amount: exhausted now → block', 24, 101, 0, { kind: 'block', reason: 'forecast_confirmed' }],
  ])('%s', (_name, hours, spentUsd, hourly, expected) => {
    const at = new FakeClock(clock.nowMs())
    at.advance(hours * HOUR)
    const spent = usd(spentUsd)
    const forecast = forecastAt(at.nowMs(), spent, hourly)
    expect(decideBudgetAction(input(budget, spent, { forecast, nowMs: at.nowMs() }))).toMatchObject(expected)
  })

  it('confirms nothing without a forecast or once the period is over', () => {
    expect(decideBudgetAction(input(budget, usd(95)))).toMatchObject({ kind: 'notify', reason: 'forecast_not_confirmed' })
    const forecast = forecastAt(clock.nowMs(), usd(95), 10)
    expect(forecastConfirms(forecast, period, clock.nowMs())).toBe(true)
    expect(forecastConfirms(forecast, period, period.endMs)).toBe(false)
  })

  it('says in the refusal what the forecast projected', () => {
    const forecast = forecastAt(clock.nowMs(), usd(50), 2)
    const action = decideBudgetAction(input(budget, usd(50), { forecast }))
    expect(action.kind === 'block' && action.explanation).toMatch(
      /^the burn-rate forecast projects \$\d+\.\d\d by period end, above \$100\.00, running out at 2026-11-/,
    )
  })

  it('would only report on a shadow budget', () => {
    const forecast = forecastAt(clock.nowMs(), usd(50), 2)
    expect(decideBudgetAction(input({ ...budget, shadow: true }, usd(50), { forecast }))).toEqual({
      kind: 'would_block',
      thresholdPercent: 50,
      reason: 'forecast_confirmed',
    })
  })
})

describe('properties over any budget and spend', () => {
  const actionArb = fc.record({
    thresholdPercent: fc.integer({ min: 1, max: 1000 }),
    action: fc.constantFrom('notify', 'degrade', 'block', 'block_if_forecast_exceeds') as fc.Arbitrary<BudgetThresholdAction['action']>,
  })
  const budgetArb = fc.record({
    amount: fc.integer({ min: 1, max: 10_000_000_000 }),
    actions: fc.uniqueArray(actionArb, { selector: (a) => a.thresholdPercent, maxLength: 6 }),
    hardLimit: fc.boolean(),
    shadow: fc.boolean(),
  })
  const rank = { allow: 0, notify: 1, would_block: 1.5, degrade: 2, block: 3 } as const
  const forecast = (exhausts: boolean) => ({ projectedSpendMicros: usd(1e6), exhaustionAtMs: exhausts ? period.endMs - 1 : undefined })

  it('never blocks a shadow budget or a critical endpoint, and more spend never weakens the action', () => {
    fc.assert(
      fc.property(budgetArb, fc.nat(20_000_000_000), fc.nat(20_000_000_000), fc.boolean(), (b, x, y, exhausts) => {
        const budget = spec({ amountMicros: micros(b.amount), thresholdActions: b.actions, hardLimit: b.hardLimit, shadow: b.shadow })
        const at = (spent: number, request: RequestFacts = NO_REQUEST) =>
          decideBudgetAction(input(budget, micros(spent), { forecast: forecast(exhausts), request }))
        const [low, high] = x <= y ? [x, y] : [y, x]
        expect(rank[at(high).kind]).toBeGreaterThanOrEqual(rank[at(low).kind])
        expect(at(high, { endpointTag: 'checkout', endpointTier: 'critical' }).kind).not.toBe('block')
        if (b.shadow) expect(at(high).kind).not.toBe('block')
      }),
      { numRuns: 500 },
    )
  })
})
