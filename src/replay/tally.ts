/**
 * What a replay reports, counted as it goes (constant memory per scope, whatever the number of
 * events): per budget or wallet, the calls it would have refused, degraded or marked would_block
 * (count, first and last time, a few examples), the spend it avoided, the refusals that would
 * have hit critical endpoints, and when each threshold would have fired; plus totals and a
 * spend-over-time series. Money is integer micro-dollars.
 */
import { scopeLabel, type Budget } from '../budgets/index.js'
import type { ScannedEvent, UsageDecision } from '../usage/index.js'
import type { ReplayOutcome } from './engine.js'
import type { EndpointTier, ReplayPolicy, ReplayWallet } from './policy-file.js'
import type { ReplayReport, ReplaySeriesPoint, ReplayStat, ReplayTotals, ScopeReport, ThresholdFiring } from '../api/contract/wire.js'

export type { ReplayExample, ReplayReport, ReplaySeriesPoint, ReplayStat, ReplayTotals, ScopeReport, ThresholdFiring } from '../api/contract/wire.js'

const REFUSALS: ReadonlySet<UsageDecision> = new Set(['budget_cap_exceeded', 'insufficient_quota'])

export class ReplayTally {
  private readonly scopes = new Map<string, ScopeReport>()
  private readonly series = new Map<number, ReplaySeriesPoint>()
  private readonly firings = new Set<string>()
  readonly totals: ReplayTotals = {
    events: 0,
    recorded_cost_micros: 0,
    baseline_cost_micros: 0,
    replayed_cost_micros: 0,
    avoided_micros: 0,
    changed_decisions: 0,
    estimated_costs: 0,
    critical_refusals: 0,
    decisions: {},
    recorded_decisions: {},
  }

  constructor(
    policy: ReplayPolicy,
    private readonly bucketMs: number,
    private readonly examplesMax: number,
  ) {
    // Every scope of the policy is listed, even one that never acted: "this budget would not have fired" is an answer.
    for (const budget of policy.budgets)
      this.scopes.set(`budget:${budget.id}`, emptyScope(`budget:${budget.id}`, 'budget', scopeLabel(budget), budget.id, budget.name))
    for (const wallet of policy.wallets) this.walletScope(`wallet:${wallet.scopeKind}:${wallet.scopeId}`)
  }

  count(event: ScannedEvent, outcome: ReplayOutcome, tier: EndpointTier | undefined): void {
    const t = this.totals
    t.events++
    t.recorded_cost_micros += event.costMicros
    t.baseline_cost_micros += outcome.baselineMicros
    t.replayed_cost_micros += outcome.costMicros
    const avoided = Math.max(0, outcome.baselineMicros - outcome.costMicros)
    t.avoided_micros += avoided
    if (outcome.replayed !== outcome.recorded) t.changed_decisions++
    if (outcome.costEstimated) t.estimated_costs++
    t.decisions[outcome.replayed] = (t.decisions[outcome.replayed] ?? 0) + 1
    t.recorded_decisions[outcome.recorded] = (t.recorded_decisions[outcome.recorded] ?? 0) + 1
    this.addToSeries(outcome, avoided)
    if (outcome.decidedBy === undefined) return
    const scope = this.scopes.get(outcome.decidedBy) ?? this.walletScope(outcome.decidedBy)
    scope.avoided_micros += avoided
    const stat = REFUSALS.has(outcome.replayed)
      ? scope.blocked
      : outcome.replayed === 'degraded'
        ? scope.degraded
        : outcome.replayed === 'would_block'
          ? scope.would_block
          : undefined
    if (stat) this.note(stat, event, outcome)
    if (REFUSALS.has(outcome.replayed) && tier === 'critical') {
      t.critical_refusals++
      this.note(scope.critical_refusals, event, outcome)
    }
  }

  /** Spend reached `percent` of a budget in `periodKey` (once per budget, period and percent). */
  threshold(budget: Budget, periodKey: string, percent: number, atMs: number): void {
    if (!this.once(`${budget.id}|${periodKey}|${percent}`)) return
    const action = actionAt(budget, percent)
    this.scopes.get(`budget:${budget.id}`)?.thresholds.push({ threshold_percent: percent, kind: 'threshold', action, period: periodKey, at: iso(atMs) })
  }

  /** The first refusal of a budget's period (the gateway's `budget.blocked` notice). */
  blocked(budget: Budget, periodKey: string, atMs: number): void {
    if (!this.once(`${budget.id}|${periodKey}|blocked`)) return
    this.scopes.get(`budget:${budget.id}`)?.thresholds.push({ threshold_percent: null, kind: 'blocked', action: 'block', period: periodKey, at: iso(atMs) })
  }

  walletThreshold(wallet: ReplayWallet, percent: number, atMs: number): void {
    const key = `wallet:${wallet.scopeKind}:${wallet.scopeId}`
    if (!this.once(`${key}|${percent}`)) return
    this.walletScope(key).thresholds.push({ threshold_percent: percent, kind: 'threshold', action: null, period: null, at: iso(atMs) })
  }

  report(): ReplayReport {
    return {
      totals: { ...this.totals },
      scopes: [...this.scopes.values()],
      series: [...this.series.entries()].sort(([a], [b]) => a - b).map(([, point]) => point),
    }
  }

  private once(key: string): boolean {
    if (this.firings.has(key)) return false
    this.firings.add(key)
    return true
  }

  private walletScope(key: string): ScopeReport {
    let scope = this.scopes.get(key)
    if (!scope) {
      scope = emptyScope(key, 'wallet', key.slice('wallet:'.length), null, null)
      this.scopes.set(key, scope)
    }
    return scope
  }

  private note(stat: ReplayStat, event: ScannedEvent, outcome: ReplayOutcome): void {
    const at = iso(event.atMs)
    stat.count++
    stat.first_at ??= at
    stat.last_at = at
    if (stat.examples.length < this.examplesMax) {
      stat.examples.push({
        event_id: event.id,
        request_id: event.requestId,
        at,
        model: event.modelRequested,
        endpoint_tag: event.attribution.endpointTag ?? null,
        cost_micros: outcome.baselineMicros,
      })
    }
  }

  private addToSeries(outcome: ReplayOutcome, avoided: number): void {
    const start = Math.floor(outcome.atMs / this.bucketMs) * this.bucketMs
    let point = this.series.get(start)
    if (!point) {
      point = { bucket_start: iso(start), baseline_micros: 0, replayed_micros: 0, avoided_micros: 0 }
      this.series.set(start, point)
    }
    point.baseline_micros += outcome.baselineMicros
    point.replayed_micros += outcome.costMicros
    point.avoided_micros += avoided
  }
}

function emptyScope(key: string, kind: 'budget' | 'wallet', scope: string, budgetId: string | null, name: string | null): ScopeReport {
  const stat = (): ReplayStat => ({ count: 0, first_at: null, last_at: null, examples: [] })
  return {
    key,
    kind,
    scope,
    budget_id: budgetId,
    name,
    blocked: stat(),
    degraded: stat(),
    would_block: stat(),
    critical_refusals: stat(),
    avoided_micros: 0,
    thresholds: [],
  }
}

/** What reaching `percent` starts: the action set there (`hard_limit` is a block at 100%), or a notice. */
function actionAt(budget: Budget, percent: number): ThresholdFiring['action'] {
  const set = budget.thresholdActions.find((a) => a.thresholdPercent === percent)?.action ?? (budget.hardLimit && percent === 100 ? 'block' : 'notify')
  return set === 'block' && budget.shadow ? 'would_block' : set
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}
