/**
 * Replay, decided event by event with a simulated clock (each event's time): what a proposed
 * policy would have blocked, degraded or marked would_block, when its thresholds would have
 * fired, the spend it avoids, and refusals on critical endpoints. Money invariants are checked
 * with fast-check over arbitrary traffic: every micro-dollar is either spent or avoided, and
 * traffic alone never takes a hard budget past its amount.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { micros, type Micros } from '../money/index.js'
import { emptyUsage } from '../providers/index.js'
import type { ScannedEvent, UsageDecision } from '../usage/index.js'
import { ReplayEngine, type ReplaySettings } from './engine.js'
import { parsePolicy, policyDataOfText, PolicyFileError } from './policy-file.js'
import { REPLAY_LIMITS } from './tally.js'

const ORG = 'default'
const T0 = Date.UTC(2026, 10, 1, 9)
const MINUTE = 60_000
const USD = 1_000_000

let seq = 0
function anEvent(overrides: Partial<ScannedEvent> & { team?: string; tag?: string; user?: string; key?: string } = {}): ScannedEvent {
  const { team = 'team_growth', tag = 'chat', user, key = 'growth', ...rest } = overrides
  seq++
  return {
    id: `evt_${String(seq).padStart(6, '0')}`,
    requestId: `req_${seq}`,
    atMs: T0 + seq * MINUTE,
    attribution: {
      orgId: ORG,
      teamId: team,
      userId: user,
      userFromKey: false,
      agentId: undefined,
      keyName: key,
      endpointTag: tag,
      promptVersion: undefined,
      environment: 'prod',
    },
    provider: 'openai',
    modelRequested: 'gpt-4o',
    modelServed: 'gpt-4o',
    endpoint: 'chat_completions',
    usage: { ...emptyUsage(), inputTokens: 100, outputTokens: 100 },
    costMicros: micros(USD),
    status: 'ok',
    decision: 'unenforced',
    source: 'gateway',
    ...rest,
  }
}

const defaults = {
  orgId: ORG,
  channelIds: [],
  costTracking: { enabled: true, walletEnforcement: false, budgetAlerts: [{ thresholdPercent: 100, action: 'block' as const }] },
}

function engineFor(policyYaml: string, overrides: Partial<ReplaySettings> = {}): ReplayEngine {
  return new ReplayEngine({
    policy: parsePolicy(policyDataOfText(policyYaml), defaults),
    degrade: { degradeTargetFor: (model) => (model === 'gpt-4o' ? 'gpt-4o-mini' : undefined), degradeOutputTokensMax: 1024 },
    walletDegradeOutputTokensMax: 1024,
    // gpt-4o-mini costs a tenth of gpt-4o in this test's price list.
    repriceAt: (_event, model, usage) => micros((usage.inputTokens + usage.outputTokens) * (model === 'gpt-4o-mini' ? 500 : 5_000)),
    userFromKey: () => false,
    bucketMs: 3_600_000,
    ...overrides,
  })
}

const TEAM_BUDGET = (extra: string) => `
budgets:
  - name: growth monthly
    scope: { kind: team, id: team_growth }
    period: monthly
    amount_usd: 3
${extra}`

function decisions(engine: ReplayEngine, events: readonly ScannedEvent[]): UsageDecision[] {
  return events.map((e) => engine.apply(e).replayed)
}

/** A hard $1.50 budget for carol, org-wide; today `carol-laptop` is the key bound to her. */
function carolEngine(): ReplayEngine {
  return engineFor(
    `
budgets:
  - name: carol
    scope: { kind: user, id: carol }
    period: monthly
    amount_usd: 1.5
    hard_limit: true
`,
    { userFromKey: (key, user) => key === 'carol-laptop' && user === 'carol' },
  )
}

describe('replay decisions', () => {
  it("an org-wide user budget counts a call by whether its user was the key's own as stored, not as today's keys say", () => {
    // Today `carol-laptop` is bound to carol and `shared` is not; when the calls were made it was
    // the other way round, and the events say so.
    const engine = carolEngine()
    const stored = (key: string, fromKey: boolean) => {
      const event = anEvent({ user: 'carol', key, userFromKeyStored: true })
      return { ...event, attribution: { ...event.attribution, userFromKey: fromKey } }
    }
    const events = [stored('shared', true), stored('carol-laptop', false), stored('shared', true)]
    // $1 each: the first and third count ($2 > $1.50); the second (carol named by a call) is no budget's.
    expect(decisions(engine, events)).toEqual(['allowed', 'unenforced', 'budget_cap_exceeded'])
    // An event from before the column is judged by today's keys.
    const older = carolEngine()
    const unstored = [
      anEvent({ user: 'carol', key: 'carol-laptop' }),
      anEvent({ user: 'carol', key: 'shared' }),
      anEvent({ user: 'carol', key: 'carol-laptop' }),
    ]
    expect(decisions(older, unstored)).toEqual(['allowed', 'unenforced', 'budget_cap_exceeded'])
  })

  it('a hard budget refuses every call its spend cannot cover, from the first one that would pass the amount', () => {
    const engine = engineFor(TEAM_BUDGET('    hard_limit: true'))
    const events = Array.from({ length: 5 }, () => anEvent())
    expect(decisions(engine, events)).toEqual(['allowed', 'allowed', 'allowed', 'budget_cap_exceeded', 'budget_cap_exceeded'])
    const report = engine.tally.report()
    const scope = report.scopes[0]!
    expect(scope.scope).toBe('team:team_growth')
    expect(scope.blocked).toMatchObject({ count: 2, first_at: new Date(events[3]!.atMs).toISOString(), last_at: new Date(events[4]!.atMs).toISOString() })
    expect(scope.blocked.examples.map((e) => e.request_id)).toEqual([events[3]!.requestId, events[4]!.requestId])
    expect(scope.avoided_micros).toBe(2 * USD)
    expect(report.totals).toMatchObject({
      events: 5,
      baseline_cost_micros: 5 * USD,
      replayed_cost_micros: 3 * USD,
      avoided_micros: 2 * USD,
      changed_decisions: 5,
    })
  })

  it('thresholds fire once each, at the event whose spend reaches them', () => {
    const engine = engineFor(TEAM_BUDGET('    alert_thresholds: [50, 80]\n    hard_limit: true'))
    const events = Array.from({ length: 4 }, () => anEvent())
    decisions(engine, events)
    const fired = engine.tally.report().scopes[0]!.thresholds
    // $1, $2, $3 of $3: 50% at the 2nd call ($1.50 ≤ $2), 80% and 100% at the 3rd; the 4th is refused.
    expect(fired.map((f) => [f.kind, f.threshold_percent, f.at])).toEqual([
      ['threshold', 50, new Date(events[1]!.atMs).toISOString()],
      ['threshold', 80, new Date(events[2]!.atMs).toISOString()],
      ['threshold', 100, new Date(events[2]!.atMs).toISOString()],
      ['blocked', null, new Date(events[3]!.atMs).toISOString()],
    ])
    expect(fired[2]!.action).toBe('block')
  })

  it('a new period starts from nothing: the same budget serves again on the 1st', () => {
    const engine = engineFor(TEAM_BUDGET('    hard_limit: true'))
    const late = Array.from({ length: 4 }, (_, i) => anEvent({ atMs: Date.UTC(2026, 10, 30, 20, i) }))
    const next = anEvent({ atMs: Date.UTC(2026, 11, 1, 0, 5) })
    expect(decisions(engine, [...late, next])).toEqual(['allowed', 'allowed', 'allowed', 'budget_cap_exceeded', 'allowed'])
  })

  it('a degrade serves the cheaper model: the call is costed at its price, the difference is avoided', () => {
    const engine = engineFor(TEAM_BUDGET('    threshold_actions: [{ threshold_percent: 50, action: degrade }]'))
    const events = Array.from({ length: 4 }, () => anEvent())
    const outcomes = events.map((e) => engine.apply(e))
    expect(outcomes.map((o) => o.replayed)).toEqual(['unenforced', 'unenforced', 'degraded', 'degraded'])
    // 200 tokens at gpt-4o-mini's 500 micros per token.
    expect(outcomes[2]!.costMicros).toBe(100_000)
    expect(engine.tally.report().scopes[0]!.degraded.count).toBe(2)
    expect(engine.tally.report().scopes[0]!.avoided_micros).toBe(2 * (USD - 100_000))
  })

  it('a shadow budget marks would_block and serves: nothing avoided', () => {
    const engine = engineFor(TEAM_BUDGET('    hard_limit: true\n    shadow: true'))
    const events = Array.from({ length: 5 }, () => anEvent())
    expect(decisions(engine, events)).toEqual(['unenforced', 'unenforced', 'unenforced', 'would_block', 'would_block'])
    expect(engine.tally.report().totals.avoided_micros).toBe(0)
    expect(engine.tally.report().scopes[0]!.would_block.count).toBe(2)
  })

  it('other teams and environments do not count toward a team budget', () => {
    const engine = engineFor(TEAM_BUDGET('    hard_limit: true'))
    const events = [anEvent(), anEvent({ team: 'team_other' }), anEvent(), anEvent({ team: 'team_other' }), anEvent(), anEvent()]
    expect(decisions(engine, events)).toEqual(['allowed', 'unenforced', 'allowed', 'unenforced', 'allowed', 'budget_cap_exceeded'])
  })

  it('a critical endpoint is degraded where others are refused, as live; a wallet refusal on it is counted apart', () => {
    const hard = engineFor(`${TEAM_BUDGET('    hard_limit: true')}\nendpoint_tiers:\n  checkout: critical\n`)
    const calls = [anEvent(), anEvent(), anEvent(), anEvent({ tag: 'checkout' }), anEvent({ tag: 'chat' })]
    expect(decisions(hard, calls)).toEqual(['allowed', 'allowed', 'allowed', 'degraded', 'budget_cap_exceeded'])

    const wallets = engineFor(`
cost_tracking: { enabled: true, wallet_enforcement: true, budget_alerts: [{ threshold_percent: 100, action: block }] }
wallets:
  - { scope: { kind: team, id: team_growth }, allocated_usd: 2 }
endpoint_tiers:
  checkout: critical
`)
    decisions(wallets, [anEvent(), anEvent(), anEvent({ tag: 'checkout' }), anEvent({ tag: 'chat' })])
    const report = wallets.tally.report()
    expect(report.totals.critical_refusals).toBe(1)
    expect(report.scopes[0]!.critical_refusals.examples.map((e) => e.endpoint_tag)).toEqual(['checkout'])
  })

  it('wallets: the cascade pays user → team → org; a call no wallet covers is insufficient_quota; alerts fire once', () => {
    const engine = engineFor(`
cost_tracking: { enabled: true, wallet_enforcement: true, budget_alerts: [{ threshold_percent: 50, action: notify }, { threshold_percent: 100, action: block }] }
wallets:
  - { scope: { kind: team, id: team_growth }, allocated_usd: 2 }
  - { scope: { kind: org, id: default }, allocated_usd: 1 }
`)
    const events = Array.from({ length: 4 }, () => anEvent())
    expect(decisions(engine, events)).toEqual(['allowed', 'allowed', 'allowed', 'insufficient_quota'])
    const report = engine.tally.report()
    const team = report.scopes.find((s) => s.key === 'wallet:team:team_growth')!
    expect(team.thresholds.map((t) => t.threshold_percent)).toEqual([50, 100])
    expect(team.blocked.count).toBe(1)
  })

  it('a call the recording refused is costed as its key’s last call of that model, and says so', () => {
    const engine = engineFor('budgets: []')
    const outcomes = [anEvent(), anEvent({ status: 'refused', costMicros: micros(0), decision: 'budget_cap_exceeded' })].map((e) => engine.apply(e))
    expect(outcomes[1]).toMatchObject({ replayed: 'unenforced', costMicros: USD, costEstimated: true })
    expect(engine.tally.report().totals).toMatchObject({ estimated_costs: 1, changed_decisions: 1 })
  })
})

describe('what a report holds is bounded by its limits, never by the traffic', () => {
  const DAY = 86_400_000
  const dailyBudgets = (n: number, fields: string) =>
    `budgets:\n${Array.from({ length: n }, (_, i) => `  - { name: b${i}, scope: { kind: team, id: team_growth }, period: daily, ${fields} }`).join('\n')}\n`

  it('a budget with 1,000 thresholds crossed every day for a year lists its first 100 firings and counts all 365,000', () => {
    const all = `[${Array.from({ length: 1000 }, (_, i) => i + 1).join(', ')}]`
    const engine = engineFor(dailyBudgets(1, `amount_usd: "0.000001", alert_thresholds: ${all}`))
    for (let day = 0; day < 365; day++) engine.apply(anEvent({ atMs: T0 + day * DAY }))
    const scope = engine.tally.report().scopes[0]!
    expect(scope.thresholds).toHaveLength(REPLAY_LIMITS.firingsPerScope)
    // The first listed are the first day's, in order.
    expect(scope.thresholds.map((f) => f.threshold_percent)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    expect(scope.thresholds_total).toBe(365_000)
    expect(scope.thresholds_truncated).toBe(true)
    expect(scope.threshold_counts).toHaveLength(1000)
    expect(scope.threshold_counts.every((c) => c.count === 365)).toBe(true)
    expect(scope.threshold_counts[0]).toEqual({
      threshold_percent: 1,
      kind: 'threshold',
      action: 'notify',
      count: 365,
      first_at: new Date(T0).toISOString(),
      last_at: new Date(T0 + 364 * DAY).toISOString(),
    })
  })

  it('the report as a whole lists at most `firings` firings and `examples` examples; counts stay exact', () => {
    const engine = engineFor(dailyBudgets(3, 'amount_usd: 1, alert_thresholds: [50, 80], hard_limit: true'), {
      limits: { firingsPerScope: 5, firings: 8, examplesPerStat: 3, examples: 2 },
    })
    // Two $1 calls a day for four days: the first crosses 50, 80 and 100 of each $1 budget, the second is refused.
    // Firings are listed in time order across budgets: the first call lists 3 + 3 + 2, and the report is full.
    for (let day = 0; day < 4; day++) for (let call = 0; call < 2; call++) engine.apply(anEvent({ atMs: T0 + day * DAY + call * MINUTE }))
    const scopes = engine.tally.report().scopes
    expect(scopes.map((s) => s.thresholds.length)).toEqual([3, 3, 2])
    // The first budget that blocks is the one that refuses (and records the period's first refusal).
    expect(scopes.map((s) => s.thresholds_total)).toEqual([16, 12, 12])
    expect(scopes.map((s) => s.thresholds_truncated)).toEqual([true, true, true])
    const marks = [
      [50, 4],
      [80, 4],
      [100, 4],
    ]
    expect(scopes.map((s) => s.threshold_counts.map((c) => [c.threshold_percent, c.count]))).toEqual([[...marks, [null, 4]], marks, marks])
    // All four refusals fall to b0: 3 examples would fit its list, the report has room for 2.
    expect(scopes[0]!.blocked.count).toBe(4)
    expect(scopes[0]!.blocked.examples).toHaveLength(2)
  })

  it('wallet scopes a refusal names outside the policy are listed up to `extraScopes`; the rest are counted in the totals', () => {
    const engine = engineFor('cost_tracking: { enabled: true, wallet_enforcement: true }\nwallets: []\n', { limits: { extraScopes: 2 } })
    const teams = ['t1', 't2', 't3', 't4']
    for (const team of teams) engine.apply(anEvent({ team }))
    const report = engine.tally.report()
    expect(report.scopes.map((s) => s.key)).toEqual(['wallet:team:t1', 'wallet:team:t2'])
    expect(report.totals).toMatchObject({ events: 4, unlisted_scope_events: 2, decisions: { insufficient_quota: 4 } })
  })
})

describe('replay money invariants (property)', () => {
  const traffic = fc.array(
    fc.record({
      cost: fc.integer({ min: 0, max: 2 * USD }),
      team: fc.constantFrom('team_growth', 'team_other'),
      gapMinutes: fc.integer({ min: 0, max: 600 }),
      refused: fc.boolean(),
    }),
    { maxLength: 200 },
  )

  it('baseline = replayed + avoided, in whole micros; a hard budget never spends past its amount', () => {
    fc.assert(
      fc.property(traffic, fc.integer({ min: 1, max: 20 * USD }), (calls, amountMicros) => {
        const engine = engineFor(`
budgets:
  - { name: hard, scope: { kind: team, id: team_growth }, period: daily, amount_usd: ${amountMicros / USD}, hard_limit: true }
  - { name: soft, scope: { kind: org, id: default }, period: daily, amount_usd: 1, threshold_actions: [{ threshold_percent: 50, action: degrade }] }
`)
        let at = T0
        const perDay = new Map<number, number>()
        for (const call of calls) {
          at += call.gapMinutes * MINUTE
          const event = anEvent({ atMs: at, team: call.team, costMicros: micros(call.refused ? 0 : call.cost), status: call.refused ? 'refused' : 'ok' })
          const outcome = engine.apply(event)
          expect(Number.isSafeInteger(outcome.costMicros)).toBe(true)
          expect(outcome.costMicros).toBeLessThanOrEqual(outcome.baselineMicros)
          if (call.team === 'team_growth') {
            const day = Math.floor(at / 86_400_000)
            perDay.set(day, (perDay.get(day) ?? 0) + outcome.costMicros)
            expect(perDay.get(day)).toBeLessThanOrEqual(amountMicros)
          }
        }
        const t = engine.tally.report().totals
        expect(t.replayed_cost_micros + t.avoided_micros).toBe(t.baseline_cost_micros)
        const perScope = engine.tally.report().scopes.reduce((sum, s) => sum + s.avoided_micros, 0)
        expect(perScope).toBe(t.avoided_micros)
      }),
      { numRuns: 200 },
    )
  })
})

describe('policy file', () => {
  it('names the field of every problem, as the config does', () => {
    const bad = `
budgets:
  - name: x
    scope: { kind: team, id: t }
    period: fortnightly
    amount_usd: -1
wallets:
  - { scope: { kind: team, id: t }, allocated_usd: 1, team_id: t }
`
    const error = (() => {
      try {
        parsePolicy(policyDataOfText(bad), defaults)
      } catch (e) {
        return e
      }
    })() as PolicyFileError
    expect(error).toBeInstanceOf(PolicyFileError)
    expect(error.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['budgets[0].period']))
    const wallet = (() => {
      try {
        parsePolicy(policyDataOfText('wallets:\n  - { scope: { kind: team, id: t }, allocated_usd: 1, team_id: t }\n'), defaults)
      } catch (e) {
        return e
      }
    })() as PolicyFileError
    expect(wallet.issues).toEqual([{ path: 'wallets[0].team_id', message: 'only a user wallet belongs to a team' }])
    expect(() => parsePolicy(policyDataOfText('budget: []'), defaults)).toThrow(/budget/)
    expect(() => policyDataOfText('budgets: [')).toThrow(PolicyFileError)
  })

  it('a policy of budgets alone is replayed without wallets, even where the gateway enforces them', () => {
    const enforcing = { ...defaults, costTracking: { ...defaults.costTracking, walletEnforcement: true } }
    expect(parsePolicy(policyDataOfText(TEAM_BUDGET('')), enforcing).walletsEnforced).toBe(false)
    expect(parsePolicy(policyDataOfText('wallets: []'), enforcing).walletsEnforced).toBe(true)
    expect(parsePolicy(policyDataOfText('cost_tracking: { enabled: true, wallet_enforcement: false }\nwallets: []'), enforcing).walletsEnforced).toBe(false)
  })

  it('a budget without an id gets one from its position, so the report can name it', () => {
    const policy = parsePolicy(policyDataOfText(TEAM_BUDGET('')), defaults)
    expect(policy.budgets.map((b) => [b.id, b.name, b.amountMicros as Micros])).toEqual([['policy-budget-0', 'growth monthly', 3 * USD]])
  })
})
