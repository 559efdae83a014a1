/**
 * What a replay reports, counted as it goes: per budget or wallet, the calls it would have
 * refused, degraded or marked would_block (count, first and last time, a few examples), the spend
 * it avoided, the refusals that would have hit critical endpoints, and when each threshold would
 * have fired; plus totals and a spend-over-time series. Money is integer micro-dollars.
 *
 * Memory is bounded by the policy, never by the traffic: counts are exact, but what is *listed*
 * is capped (`ReplayLimits`): the first firings per scope and per report, a few examples per
 * scope and per report, and the wallet scopes outside the policy that refusals name. A daily
 * budget with 1,000 thresholds crossed every day of a year fires 365,000 times; the report
 * lists its first 100 and counts all of them per threshold.
 */
import { scopeLabel, type Budget } from '../budgets/index.js'
import type { ScannedEvent, UsageDecision } from '../usage/index.js'
import type { ReplayOutcome } from './engine.js'
import type { EndpointTier, ReplayPolicy, ReplayWallet } from './policy-file.js'
import type { ReplayReport, ReplaySeriesPoint, ReplayStat, ReplayTotals, ScopeReport, ThresholdCount, ThresholdFiring } from '../api/contract/wire.js'

export type {
  ReplayExample,
  ReplayReport,
  ReplaySeriesPoint,
  ReplayStat,
  ReplayTotals,
  ScopeReport,
  ThresholdCount,
  ThresholdFiring,
} from '../api/contract/wire.js'

/** What a report lists at most; everything beyond is counted, not listed. */
export interface ReplayLimits {
  /** Firings listed per budget or wallet. */
  readonly firingsPerScope: number
  /** Firings listed in the whole report. */
  readonly firings: number
  /** Examples per scope and kind (blocked, degraded, …). */
  readonly examplesPerStat: number
  /** Examples in the whole report. */
  readonly examples: number
  /** Wallet scopes a refusal may name that are not in the policy (a user or team without a wallet). */
  readonly extraScopes: number
}

export const REPLAY_LIMITS: ReplayLimits = { firingsPerScope: 100, firings: 10_000, examplesPerStat: 5, examples: 2_000, extraScopes: 1_000 }

/** Marks the first refusal of a period in the count table (threshold percents are 1 or more). */
const BLOCKED = 0

interface CountEntry {
  readonly percent: number | null
  readonly kind: ThresholdFiring['kind']
  readonly action: ThresholdFiring['action']
  count: number
  readonly firstMs: number
  lastMs: number
}

/** Per scope: which marks fired in its current period (each fires once per period), and the count table. */
interface FiringState {
  period: string | null
  readonly fired: Set<number>
  readonly counts: Map<number, CountEntry>
}

const REFUSALS: ReadonlySet<UsageDecision> = new Set(['budget_cap_exceeded', 'insufficient_quota'])

/** A report's totals before its first event. */
export function emptyTotals(): ReplayTotals {
  return {
    events: 0,
    recorded_cost_micros: 0,
    baseline_cost_micros: 0,
    replayed_cost_micros: 0,
    avoided_micros: 0,
    changed_decisions: 0,
    estimated_costs: 0,
    critical_refusals: 0,
    unlisted_scope_events: 0,
    decisions: {},
    recorded_decisions: {},
  }
}

export class ReplayTally {
  private readonly scopes = new Map<string, ScopeReport>()
  private readonly series = new Map<number, ReplaySeriesPoint>()
  private readonly firingState = new Map<string, FiringState>()
  private firingsListed = 0
  private examplesListed = 0
  private extraScopes = 0
  private readonly limits: ReplayLimits
  readonly totals: ReplayTotals = emptyTotals()

  constructor(
    policy: ReplayPolicy,
    private readonly bucketMs: number,
    limits: Partial<ReplayLimits> = {},
  ) {
    this.limits = { ...REPLAY_LIMITS, ...limits }
    // Every scope of the policy is listed, even one that never acted: "this budget would not have fired" is an answer.
    for (const budget of policy.budgets)
      this.scopes.set(`budget:${budget.id}`, emptyScope(`budget:${budget.id}`, 'budget', scopeLabel(budget), budget.id, budget.name))
    for (const wallet of policy.wallets) {
      const key = `wallet:${wallet.scopeKind}:${wallet.scopeId}`
      if (!this.scopes.has(key)) this.scopes.set(key, emptyScope(key, 'wallet', key.slice('wallet:'.length), null, null))
    }
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
    const scope = this.scopes.get(outcome.decidedBy) ?? this.extraWalletScope(outcome.decidedBy)
    if (!scope) {
      t.unlisted_scope_events++
      if (REFUSALS.has(outcome.replayed) && tier === 'critical') t.critical_refusals++
      return
    }
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
    const key = `budget:${budget.id}`
    if (!this.once(key, periodKey, percent)) return
    this.fire(key, percent, 'threshold', actionAt(budget, percent), periodKey, atMs)
  }

  /** The first refusal of a budget's period (the gateway's `budget.blocked` notice). */
  blocked(budget: Budget, periodKey: string, atMs: number): void {
    const key = `budget:${budget.id}`
    if (!this.once(key, periodKey, BLOCKED)) return
    this.fire(key, null, 'blocked', 'block', periodKey, atMs)
  }

  walletThreshold(wallet: ReplayWallet, percent: number, atMs: number): void {
    const key = `wallet:${wallet.scopeKind}:${wallet.scopeId}`
    if (!this.once(key, null, percent)) return
    this.fire(key, percent, 'threshold', null, null, atMs)
  }

  report(): ReplayReport {
    return {
      totals: { ...this.totals },
      scopes: [...this.scopes.values()].map((scope) => ({ ...scope, threshold_counts: this.countsOf(scope.key) })),
      series: [...this.series.entries()].sort(([a], [b]) => a - b).map(([, point]) => point),
    }
  }

  /** True the first time `mark` fires in `period` for the scope (events come in time order, so a new period starts afresh). */
  private once(scopeKey: string, period: string | null, mark: number): boolean {
    const state = this.stateOf(scopeKey)
    if (state.period !== period) {
      state.period = period
      state.fired.clear()
    }
    if (state.fired.has(mark)) return false
    state.fired.add(mark)
    return true
  }

  private stateOf(scopeKey: string): FiringState {
    let state = this.firingState.get(scopeKey)
    if (!state) {
      state = { period: null, fired: new Set(), counts: new Map() }
      this.firingState.set(scopeKey, state)
    }
    return state
  }

  /** Counts a firing, and lists it while the scope's and the report's lists have room. */
  private fire(
    scopeKey: string,
    percent: number | null,
    kind: ThresholdFiring['kind'],
    action: ThresholdFiring['action'],
    period: string | null,
    atMs: number,
  ): void {
    const scope = this.scopes.get(scopeKey)
    if (!scope) return
    const counts = this.stateOf(scopeKey).counts
    const mark = percent ?? BLOCKED
    const entry = counts.get(mark)
    if (entry) {
      entry.count++
      entry.lastMs = atMs
    } else counts.set(mark, { percent, kind, action, count: 1, firstMs: atMs, lastMs: atMs })
    scope.thresholds_total++
    if (scope.thresholds.length < this.limits.firingsPerScope && this.firingsListed < this.limits.firings) {
      scope.thresholds.push({ threshold_percent: percent, kind, action, period, at: iso(atMs) })
      this.firingsListed++
    } else scope.thresholds_truncated = true
  }

  /** The count table of a scope: thresholds by percent, then the first refusals. */
  private countsOf(scopeKey: string): ThresholdCount[] {
    const counts = this.firingState.get(scopeKey)?.counts
    if (!counts) return []
    return [...counts.values()]
      .sort((a, b) => (a.percent ?? Number.MAX_SAFE_INTEGER) - (b.percent ?? Number.MAX_SAFE_INTEGER))
      .map((e) => ({ threshold_percent: e.percent, kind: e.kind, action: e.action, count: e.count, first_at: iso(e.firstMs), last_at: iso(e.lastMs) }))
  }

  /** A wallet scope a refusal names that the policy does not list (no wallet there): listed while there is room. */
  private extraWalletScope(key: string): ScopeReport | undefined {
    if (this.extraScopes >= this.limits.extraScopes) return undefined
    this.extraScopes++
    const scope = emptyScope(key, 'wallet', key.slice('wallet:'.length), null, null)
    this.scopes.set(key, scope)
    return scope
  }

  private note(stat: ReplayStat, event: ScannedEvent, outcome: ReplayOutcome): void {
    const at = iso(event.atMs)
    stat.count++
    stat.first_at ??= at
    stat.last_at = at
    if (stat.examples.length < this.limits.examplesPerStat && this.examplesListed < this.limits.examples) {
      this.examplesListed++
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

/** A scope's report before anything happened to it. */
export function emptyScope(key: string, kind: 'budget' | 'wallet', scope: string, budgetId: string | null, name: string | null): ScopeReport {
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
    thresholds_total: 0,
    thresholds_truncated: false,
    threshold_counts: [],
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

/**
 * A report's size as JSON, estimated without serialising it (within a factor of about two): what
 * the job list weighs finished reports by.
 */
export function reportBytesOf(report: ReplayReport): number {
  let bytes = 1_000 + report.series.length * 120
  for (const scope of report.scopes) {
    bytes += 700 + scope.key.length + (scope.name?.length ?? 0)
    bytes += scope.thresholds.length * 130 + scope.threshold_counts.length * 160
    for (const stat of [scope.blocked, scope.degraded, scope.would_block, scope.critical_refusals]) bytes += stat.examples.length * 220
  }
  return bytes
}
