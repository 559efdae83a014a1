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

describe('replay decisions', () => {
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
