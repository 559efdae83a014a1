/**
 * Policy replay: recorded usage events, in time order, through a proposed policy. Each event is
 * decided by the functions the gateway itself runs — `applicableBudgetsOf` / `decideBudgets`
 * (budgets), `walletDegradeDecision` (wallet degrade alerts), `hardCapRefusal` / `choosePayer`
 * (the ledger's admission), `usageDecisionOf` (the label an event records) — against in-memory
 * state: spend per budget and period, wallet balances. The clock is each event's `atMs`.
 *
 * Where replay cannot know what the live gateway knew, it says so:
 * - A reservation holds the call's worst case; replay admits a call against its actual cost
 *   (the worst case is not recorded). Live, a hard cap can refuse a call a little earlier.
 * - A call the recording refused has no cost; replay prices it as the last call of the same key
 *   and model (`costEstimated`), or at zero before any.
 * - Every budget and wallet starts the window with nothing spent.
 * - There is no burn-rate forecast: a `block_if_forecast_exceeds` mark is never confirmed, so it
 *   notifies instead of blocking.
 */
import {
  applicableBudgetsOf,
  crossedThresholds,
  decideBudgets,
  firingThresholds,
  scopeLabel,
  type Budget,
  type DegradeSettings,
  type PeriodCounter,
} from '../budgets/index.js'
import { choosePayer, hardCapRefusal, refusedScopeOf, type BudgetCounterRef, type CascadeStep } from '../ledger/index.js'
import { addSaturating, micros, type Micros } from '../money/index.js'
import {
  cascadeOf,
  countersOf,
  usageDecisionOf,
  walletCapPercentOf,
  walletDegradeDecision,
  type PolicyDecision,
  type WalletDegradeSettings,
} from '../proxy/index.js'
import type { Usage } from '../providers/types.js'
import type { ScannedEvent, UsageDecision } from '../usage/index.js'
import type { EndpointTier, ReplayPolicy, ReplayWallet } from './policy-file.js'
import { ReplayTally, type ReplayLimits } from './tally.js'

export interface ReplaySettings {
  readonly policy: ReplayPolicy
  /** How the gateway carries out a budget's `degrade` (`BudgetService.degradeSettings()`). */
  readonly degrade: DegradeSettings
  /** Output cap of a wallet degrade when the model has no cheaper target. */
  readonly walletDegradeOutputTokensMax: number
  /** The cost of `usage` served by `model` on the event's provider; undefined when it has no price. */
  readonly repriceAt: (event: ScannedEvent, model: string, usage: Usage) => Micros | undefined
  /** Whether the event's user is its key's own user, for events stored before `user_from_key` (today's key bindings). */
  readonly userFromKey: (keyName: string | undefined, userId: string | undefined) => boolean
  /** Width of the spend-over-time series. */
  readonly bucketMs: number
  /** What the report lists at most (tests shrink them); `REPLAY_LIMITS` by default. */
  readonly limits?: Partial<ReplayLimits>
}

/** What the policy would have done to one event. */
export interface ReplayOutcome {
  readonly eventId: string
  readonly requestId: string
  readonly atMs: number
  /** What the event recorded (the gateway's decision at the time). */
  readonly recorded: UsageDecision
  /** What the proposed policy decides, in the same vocabulary. */
  readonly replayed: UsageDecision
  /** What the call would have cost under the policy (0 when refused). */
  readonly costMicros: Micros
  /** What it costs with no policy: served as requested. */
  readonly baselineMicros: Micros
  /** True when the baseline is an estimate (the recording refused the call, so it has no cost). */
  readonly costEstimated: boolean
  /** The budget (`budget:ID`) or wallet (`wallet:SCOPE`) that refused or degraded it. */
  readonly decidedBy: string | undefined
}

/** A budget's spend in its current period (events come in time order: an older period is never needed again). */
interface SpendState {
  periodKey: string
  micros: number
}

interface WalletState {
  readonly wallet: ReplayWallet
  spentMicros: number
}

type Verdict =
  | {
      readonly kind: 'refused'
      readonly decision: 'budget_cap_exceeded' | 'insufficient_quota'
      readonly by: string
      readonly blockedBudget?: { readonly budget: Budget; readonly periodKey: string }
    }
  | { readonly kind: 'served'; readonly decision: PolicyDecision; readonly by: string | undefined; readonly cost: Micros }

export class ReplayEngine {
  private readonly spent = new Map<string, SpendState>()
  private readonly wallets = new Map<string, WalletState>()
  private readonly lastCost = new Map<string, Micros>()
  /** `firingThresholds` per budget, computed once: it is asked on every event. */
  private readonly firingOf = new Map<string, readonly number[]>()
  private readonly budgetsById: ReadonlyMap<string, Budget>
  private readonly walletDegrade: WalletDegradeSettings | undefined
  private readonly capPercent: number
  readonly tally: ReplayTally
  /**
   * Work done so far, in budget evaluations and threshold checks: the runner gives the event loop
   * back after a fixed amount of it, since one event under a large policy costs far more than one
   * under a small one.
   */
  work = 0

  constructor(private readonly settings: ReplaySettings) {
    const { policy } = settings
    this.budgetsById = new Map(policy.budgets.map((b) => [b.id, b]))
    for (const budget of policy.budgets) this.firingOf.set(budget.id, firingThresholds(budget))
    for (const wallet of policy.wallets) this.wallets.set(`${wallet.scopeKind}:${wallet.scopeId}`, { wallet, spentMicros: 0 })
    const degradeAlerts = policy.walletAlerts.filter((a) => a.action === 'degrade')
    this.walletDegrade =
      policy.walletsEnforced && degradeAlerts.length > 0
        ? {
            alerts: degradeAlerts,
            degradeTargetFor: (model) => settings.degrade.degradeTargetFor?.(model),
            outputTokensMax: settings.walletDegradeOutputTokensMax,
          }
        : undefined
    this.capPercent = walletCapPercentOf(policy.walletAlerts)
    this.tally = new ReplayTally(policy, settings.bucketMs, settings.limits)
  }

  /** Decides one event (events must come in time order) and counts its spend. */
  apply(scanned: ScannedEvent): ReplayOutcome {
    const event = this.withUserFromKey(scanned)
    const { baseline, estimated } = this.baselineOf(event)
    const applicable = applicableBudgetsOf(this.settings.policy.budgets, event.attribution, event.modelRequested, event.provider, event.atMs)
    const tier = this.settings.policy.tiers.get(event.attribution.endpointTag ?? '')
    const counters = countersOf(applicable, tier)
    this.work += 1 + this.settings.policy.budgets.length + applicable.length
    const verdict = this.decide(event, applicable, counters, baseline, tier)
    const outcome = verdict.kind === 'refused' ? this.refused(event, verdict, baseline, estimated) : this.served(event, verdict, counters, baseline, estimated)
    this.tally.count(event, outcome, tier)
    return outcome
  }

  private decide(
    event: ScannedEvent,
    applicable: ReturnType<typeof applicableBudgetsOf>,
    counters: readonly PeriodCounter[],
    baseline: Micros,
    tier: EndpointTier | undefined,
  ): Verdict {
    const periodKeyOf = new Map(counters.map((c) => [c.budgetId, c.periodKey]))
    const budgetDecision = decideBudgets(
      applicable,
      (id) => micros(this.spentIn(id, periodKeyOf.get(id)!)),
      event.modelRequested,
      this.settings.degrade,
      // No forecast in a replay: a `block_if_forecast_exceeds` mark notifies (see the file comment).
      { request: { endpointTag: event.attribution.endpointTag, endpointTier: tier }, nowMs: event.atMs },
    )
    if (budgetDecision.kind === 'block') {
      const periodKey = periodKeyOf.get(budgetDecision.budget.id)!
      return {
        kind: 'refused',
        decision: 'budget_cap_exceeded',
        by: budgetKey(budgetDecision.budget.id),
        blockedBudget: { budget: budgetDecision.budget, periodKey },
      }
    }
    let decision: PolicyDecision
    let by: string | undefined
    switch (budgetDecision.kind) {
      case 'allow': {
        const degraded = this.walletDegradeOf(event, counters)
        decision = degraded?.decision ?? { kind: 'allow', counters }
        by = degraded?.by
        break
      }
      case 'degrade':
        decision = {
          kind: 'degrade',
          counters,
          budgetId: budgetDecision.budget.id,
          degradeTo: budgetDecision.degradeTo,
          outputTokensMax: budgetDecision.outputTokensMax,
        }
        by = budgetKey(budgetDecision.budget.id)
        break
      case 'would_block':
        decision = { kind: 'would_block', counters, budgetId: budgetDecision.budget.id, scope: scopeLabel(budgetDecision.budget) }
        by = budgetKey(budgetDecision.budget.id)
        break
    }
    const cost = this.costUnder(event, decision, baseline)
    if (!this.needsReservation(counters)) return { kind: 'served', decision, by, cost }
    const capped = hardCapRefusal(counters, (c) => this.spentIn(c.budgetId, c.periodKey), cost)
    if (capped) {
      const budget = this.budgetsById.get(capped.budgetId)!
      return { kind: 'refused', decision: 'budget_cap_exceeded', by: budgetKey(capped.budgetId), blockedBudget: { budget, periodKey: capped.periodKey } }
    }
    if (this.settings.policy.walletsEnforced) {
      const cascade = cascadeOf({ attribution: event.attribution })
      const choice = choosePayer(cascade, (step) => this.walletAt(step), cost, this.capPercent)
      if (choice.kind === 'insufficient_quota') {
        return { kind: 'refused', decision: 'insufficient_quota', by: `wallet:${refusedScopeOf(cascade, event.attribution.orgId, choice.firstFunded)}` }
      }
    }
    return { kind: 'served', decision, by, cost }
  }

  /** A budget's spend in `periodKey`: nothing yet when its stored spend is of another period. */
  private spentIn(budgetId: string, periodKey: string): number {
    const state = this.spent.get(budgetId)
    return state !== undefined && state.periodKey === periodKey ? state.micros : 0
  }

  private needsReservation(counters: readonly BudgetCounterRef[]): boolean {
    return this.settings.policy.walletsEnforced || counters.some((c) => c.limitMicros !== undefined)
  }

  /** The paying wallet's degrade alert, as the gateway's BudgetPolicy applies it after an `allow`. */
  private walletDegradeOf(event: ScannedEvent, counters: readonly BudgetCounterRef[]): { decision: PolicyDecision; by: string } | undefined {
    if (!this.walletDegrade) return undefined
    for (const step of cascadeOf({ attribution: event.attribution })) {
      const found = this.walletAt(step)
      if (!found) continue
      const { wallet } = found.state
      const decision = walletDegradeDecision(
        this.walletDegrade,
        { id: wallet.id, allocatedMicros: wallet.allocatedMicros, spentMicros: found.spentMicros, reservedMicros: 0 },
        event.modelRequested,
        counters,
      )
      return decision && { decision, by: walletKey(wallet) }
    }
    return undefined
  }

  /** The wallet a cascade step names, when it exists and may pay for this step. */
  private walletAt(step: CascadeStep) {
    const state = this.wallets.get(`${step.scopeKind}:${step.scopeId}`)
    if (!state) return undefined
    const { wallet } = state
    if (step.teamOf !== undefined && (wallet.teamId ?? '') !== step.teamOf) return undefined
    return { state, teamId: wallet.teamId, allocatedMicros: wallet.allocatedMicros, reservedMicros: 0, spentMicros: state.spentMicros }
  }

  private refused(event: ScannedEvent, verdict: Extract<Verdict, { kind: 'refused' }>, baseline: Micros, estimated: boolean): ReplayOutcome {
    if (verdict.blockedBudget) this.tally.blocked(verdict.blockedBudget.budget, verdict.blockedBudget.periodKey, event.atMs)
    return outcomeOf(event, verdict.decision, micros(0), baseline, estimated, verdict.by)
  }

  private served(
    event: ScannedEvent,
    verdict: Extract<Verdict, { kind: 'served' }>,
    counters: readonly PeriodCounter[],
    baseline: Micros,
    estimated: boolean,
  ): ReplayOutcome {
    const { cost } = verdict
    for (const counter of counters) {
      const before = this.spentIn(counter.budgetId, counter.periodKey)
      const after = addSaturating(before, cost)
      this.spent.set(counter.budgetId, { periodKey: counter.periodKey, micros: after })
      const budget = this.budgetsById.get(counter.budgetId)!
      const marks = this.firingOf.get(budget.id)!
      this.work += marks.length
      for (const percent of crossedThresholds(marks, budget.amountMicros, micros(before), micros(after))) {
        this.tally.threshold(budget, counter.periodKey, percent, event.atMs)
      }
    }
    this.payFromWallet(event, cost)
    const reserved = this.needsReservation(counters)
    return outcomeOf(event, usageDecisionOf(verdict.decision.kind, reserved, this.settings.policy.walletsEnforced), cost, baseline, estimated, verdict.by)
  }

  /** The first wallet of the cascade that can cover the cost pays it; its alert thresholds are counted. */
  private payFromWallet(event: ScannedEvent, cost: Micros): void {
    if (!this.settings.policy.walletsEnforced || cost <= 0) return
    const choice = choosePayer(cascadeOf({ attribution: event.attribution }), (step) => this.walletAt(step), cost, this.capPercent)
    if (choice.kind !== 'paid') return
    const state = choice.wallet.state
    const before = state.spentMicros
    state.spentMicros = addSaturating(before, cost)
    const percents = this.settings.policy.walletAlerts.map((a) => a.thresholdPercent)
    this.work += percents.length
    for (const percent of crossedThresholds(percents, state.wallet.allocatedMicros, micros(before), micros(state.spentMicros))) {
      this.tally.walletThreshold(state.wallet, percent, event.atMs)
    }
  }

  /**
   * What the call costs served as requested. A call the recording degraded is repriced at the
   * model it asked for; a call the recording refused is estimated from its key's last call of the
   * same model.
   */
  private baselineOf(event: ScannedEvent): { baseline: Micros; estimated: boolean } {
    const key = `${event.attribution.keyName ?? ''}|${event.modelRequested}`
    if (event.status === 'refused') return { baseline: this.lastCost.get(key) ?? micros(0), estimated: true }
    let baseline = event.costMicros
    if (event.decision === 'degraded' && event.modelServed !== event.modelRequested) {
      baseline = this.settings.repriceAt(event, event.modelRequested, event.usage) ?? event.costMicros
    }
    this.lastCost.set(key, baseline)
    return { baseline, estimated: false }
  }

  /** The cost of the call under a decision: a degrade serves the cheaper model and/or caps the output. */
  private costUnder(event: ScannedEvent, decision: PolicyDecision, baseline: Micros): Micros {
    if (decision.kind !== 'degrade' || event.status === 'refused') return baseline
    const model = decision.degradeTo ?? event.modelRequested
    const usage = decision.outputTokensMax === undefined ? event.usage : capOutput(event.usage, decision.outputTokensMax)
    if (model === event.modelServed && usage === event.usage) return event.costMicros
    const cost = this.settings.repriceAt(event, model, usage)
    return cost === undefined ? baseline : micros(Math.min(cost, baseline))
  }

  /** An event stored whether its user was its key's own keeps that; an older one is judged by today's keys. */
  private withUserFromKey(event: ScannedEvent): ScannedEvent {
    const { attribution } = event
    if (event.userFromKeyStored === true || attribution.userId === undefined || !this.settings.userFromKey(attribution.keyName, attribution.userId))
      return event
    return { ...event, attribution: { ...attribution, userFromKey: true } }
  }
}

function budgetKey(budgetId: string): string {
  return `budget:${budgetId}`
}

function walletKey(wallet: Pick<ReplayWallet, 'scopeKind' | 'scopeId'>): string {
  return `wallet:${wallet.scopeKind}:${wallet.scopeId}`
}

function capOutput(usage: Usage, outputTokensMax: number): Usage {
  if (usage.outputTokens <= outputTokensMax) return usage
  return { ...usage, outputTokens: outputTokensMax, reasoningTokens: Math.min(usage.reasoningTokens, outputTokensMax) }
}

function outcomeOf(event: ScannedEvent, replayed: UsageDecision, cost: Micros, baseline: Micros, estimated: boolean, by: string | undefined): ReplayOutcome {
  return {
    eventId: event.id,
    requestId: event.requestId,
    atMs: event.atMs,
    recorded: event.decision,
    replayed,
    costMicros: cost,
    baselineMicros: baseline,
    costEstimated: estimated,
    decidedBy: by,
  }
}
