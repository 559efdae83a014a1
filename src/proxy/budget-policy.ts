/**
 * SpendPolicy over the budgets domain: which budgets count a call, what they decide given their
 * period spend (read from the ledger's counters, the same ones reservations check), and what
 * happens after spend settles (thresholds, forecasts, notifications — off the response path).
 */
import { counterKey, countersMissing, type BudgetCounterRef, type LedgerStore } from '../ledger/index.js'
import {
  counterRefOf,
  experimentalExplanation,
  scopeLabel,
  walletCrossingOf,
  walletDegradeAlert,
  type BudgetService,
  type DecideFacts,
} from '../budgets/index.js'
import type { Logger } from '../observability/logger.js'
import type { BudgetAlert, EndpointTier } from '../config/index.js'
import { micros, type Micros } from '../money/index.js'
import { teamOfWallet, walletBelongs, type WalletRef } from '../ledger/index.js'
import { cascadeOf } from './reserve.js'
import { RecentSpend } from './recent-spend.js'
import type { BudgetLabel, PolicyDecision, PolicyInput, SettledSpend, SpendPolicy } from './spend-policy.js'

/**
 * How old the budget spend behind a policy decision may be. Each settle brings back its budgets'
 * global spend (onSpend), so under load the decision costs no read; a budget idle in this process
 * for longer is read before deciding. Hard limits are not decided here but in the reservation.
 */
export const POLICY_SPEND_MAX_AGE_MS = 1_000

/** Output cap of a wallet degrade when the model has no cheaper target. */
export const WALLET_DEGRADE_OUTPUT_TOKENS_MAX = 1024

export interface WalletDegradeSettings {
  /** `cost_tracking.budget_alerts` entries with `action: degrade`, lowest first. */
  readonly alerts: readonly BudgetAlert[]
  readonly degradeTargetFor: (model: string) => string | undefined
  /** Output cap applied when the model has no cheaper target. */
  readonly outputTokensMax: number
}

/**
 * The paying wallet's degrade (the first wallet of the cascade that exists), or undefined below
 * every degrade alert. Pure: the live path and policy replay both call it.
 */
export function walletDegradeDecision(
  settings: WalletDegradeSettings,
  wallet: { readonly id: string; readonly allocatedMicros: Micros; readonly spentMicros: number; readonly reservedMicros: number },
  model: string,
  counters: readonly BudgetCounterRef[],
): PolicyDecision | undefined {
  const alert = walletDegradeAlert(settings.alerts, wallet.allocatedMicros, wallet.spentMicros + wallet.reservedMicros)
  if (!alert) return undefined
  const degradeTo = settings.degradeTargetFor(model)
  return {
    kind: 'degrade',
    counters,
    budgetId: `wallet:${wallet.id}`,
    degradeTo,
    outputTokensMax: degradeTo === undefined ? settings.outputTokensMax : undefined,
  }
}

/**
 * The ledger counters a call counts toward. A critical endpoint's call is degraded, never
 * refused: no hard limit is checked for it at reserve time either (its spend still counts).
 * Pure: replay calls it too.
 */
export function countersOf(applicable: ReturnType<BudgetService['applicableBudgets']>, endpointTier: EndpointTier | undefined): BudgetCounterRef[] {
  return applicable.map(({ budget, period }) => {
    const ref = counterRefOf(budget, period)
    return endpointTier === 'critical' ? Object.assign({}, ref, { limitMicros: undefined }) : ref
  })
}

export class BudgetPolicy implements SpendPolicy {
  /** Counter values from this process's settles and reads (see POLICY_SPEND_MAX_AGE_MS). */
  private readonly recentSpend = new RecentSpend()

  constructor(
    private readonly budgets: BudgetService,
    private readonly ledger: LedgerStore,
    private readonly logger: Logger,
    private readonly walletDegrade: WalletDegradeSettings | undefined = undefined,
  ) {}

  async decide(input: PolicyInput): Promise<PolicyDecision> {
    const decision = await this.decideBudgets(input)
    if (decision.kind !== 'allow' || !this.walletDegrade) return decision
    const degrade = await this.decideWalletDegrade(input, decision.counters)
    return degrade ? Object.assign({}, degrade, decision.countersJoined && { countersJoined: decision.countersJoined }) : decision
  }

  /**
   * The budgets counting the call now that did not when it was decided: none while the cache is
   * the one it was decided with (a settle pays one comparison), else the difference, by counter.
   */
  private countersJoinedSince(input: PolicyInput, seen: number, counters: readonly BudgetCounterRef[]): readonly BudgetCounterRef[] {
    if (this.budgets.cacheGeneration === seen) return []
    const applicable = this.budgets.applicableBudgets(input.attribution, input.model, input.provider, input.atMs)
    const now = countersOf(applicable, this.budgets.endpointTierOf(input.attribution.endpointTag))
    return countersMissing(now, counters)
  }

  /**
   * `budget_alerts` with `action: degrade` at X%: once the paying wallet (the first in the
   * cascade that exists) has X% of its allocation spent or reserved, calls are degraded.
   */
  private async decideWalletDegrade(input: PolicyInput, counters: readonly BudgetCounterRef[]): Promise<PolicyDecision | undefined> {
    for (const ref of cascadeOf({ attribution: input.attribution })) {
      const wallet = await this.ledger.findWallet(input.attribution.orgId, ref)
      if (!wallet || !walletBelongs(wallet, ref)) continue
      return walletDegradeDecision(this.walletDegrade!, wallet, input.model, counters)
    }
    return undefined
  }

  private async decideBudgets(input: PolicyInput): Promise<PolicyDecision> {
    // Read with the applicable budgets, before any await: the settle compares with it.
    const seen = this.budgets.cacheGeneration
    const applicable = this.budgets.applicableBudgets(input.attribution, input.model, input.provider, input.atMs)
    if (applicable.length === 0) return { kind: 'allow', counters: [], countersJoined: () => this.countersJoinedSince(input, seen, []) }
    const request = { endpointTag: input.attribution.endpointTag, endpointTier: this.budgets.endpointTierOf(input.attribution.endpointTag) }
    const counters = countersOf(applicable, request.endpointTier)
    const countersJoined = () => this.countersJoinedSince(input, seen, counters)
    const spend = await this.spendOf(input.attribution.orgId, counters)
    // A call counts toward a handful of budgets at most: a scan, not a Map per call.
    const spentOf = (id: string) => {
      const counter = counters.find((c) => c.budgetId === id)
      return counter && spend.get(counterKey(id, counter.periodKey))?.spentMicros
    }
    const labelOf = (budgetId: string): BudgetLabel | undefined => {
      const found = applicable.find((a) => a.budget.id === budgetId)
      if (found === undefined) return undefined
      const { budget, period } = found
      return {
        scope: scopeLabel(budget),
        name: budget.name,
        periodLabel: `${budget.period} ${period.key}`,
        ...(budget.tier === 'experimental' && { reason: experimentalExplanation(budget, input.attribution.endpointTag) }),
      }
    }
    // Forecasts are read only for budgets whose `block_if_forecast_exceeds` mark is reached.
    const forecasts = this.budgets.anyNeedsForecast(applicable, spentOf) ? await this.budgets.forecastsFor(applicable, spentOf, input.atMs) : undefined
    const decision = this.decideWith(applicable, counters, spentOf, input.model, { request, nowMs: input.atMs, ...(forecasts && { forecasts }) })
    return Object.assign({}, decision, { labelOf, countersJoined })
  }

  /** The counters' spend as settles last told it, or read from the ledger when any is too old. */
  private async spendOf(orgId: string, counters: readonly BudgetCounterRef[]): Promise<ReadonlyMap<string, { spentMicros: Micros }>> {
    const recent = this.recentSpend.recent(orgId, counters, POLICY_SPEND_MAX_AGE_MS)
    if (recent) return recent
    const seenAt = performance.now()
    const read = await this.ledger.budgetSpend(orgId, counters)
    this.recentSpend.sawRead(orgId, counters, read, seenAt)
    return read
  }

  private decideWith(
    applicable: ReturnType<BudgetService['applicableBudgets']>,
    counters: BudgetCounterRef[],
    spentOf: (budgetId: string) => ReturnType<Parameters<BudgetService['decide']>[1]>,
    model: string,
    facts: DecideFacts,
  ): PolicyDecision {
    const decision = this.budgets.decide(applicable, spentOf, model, facts)
    switch (decision.kind) {
      case 'allow':
        return { kind: 'allow', counters }
      case 'degrade':
        return { kind: 'degrade', counters, budgetId: decision.budget.id, degradeTo: decision.degradeTo, outputTokensMax: decision.outputTokensMax }
      case 'would_block':
        this.logger.info({ budgetId: decision.budget.id, scope: scopeLabel(decision.budget) }, 'budget: would_block (shadow budget)')
        return { kind: 'would_block', counters, budgetId: decision.budget.id, scope: scopeLabel(decision.budget) }
      case 'block': {
        const period = applicable.find((a) => a.budget.id === decision.budget.id)!.period
        return {
          kind: 'block',
          counters,
          budgetId: decision.budget.id,
          scope: scopeLabel(decision.budget),
          budgetName: decision.budget.name,
          periodLabel: `${decision.budget.period} ${period.key}`,
          resetAtMs: decision.resetAtMs,
          // Plain threshold blocks read as before; a forecast or an experimental tier says why.
          ...((decision.reason === 'forecast_confirmed' || decision.budget.tier === 'experimental') && { explanation: decision.explanation }),
        }
      }
    }
  }

  onSpend(spend: SettledSpend): void {
    this.recentSpend.sawCrossings(spend.attribution.orgId, spend.budgetCrossings)
    const context = { atMs: spend.atMs }
    if (spend.budgetCrossings.length > 0) void this.budgets.onSpendSettled(spend.budgetCrossings, context)
    if (spend.walletCrossing) void this.budgets.onWalletSpendSettled([walletCrossingOf(spend.walletCrossing, spend.attribution.orgId)], context)
  }

  onBlocked(counter: { budgetId: string; periodKey: string }, input: PolicyInput): void {
    const orgId = input.attribution.orgId
    void this.ledger
      .budgetSpend(orgId, [{ budgetId: counter.budgetId, periodKey: counter.periodKey, limitMicros: undefined, periodEndMs: 0 }])
      .then((spend) =>
        this.budgets.onBlocked(
          counter.budgetId,
          counter.periodKey,
          spend.get(counterKey(counter.budgetId, counter.periodKey))?.spentMicros ?? micros(0),
          input.atMs,
        ),
      )
      .catch((error: unknown) => this.logger.error({ err: error, budgetId: counter.budgetId }, 'budgets: announcing a block failed'))
  }

  onWalletRefused(scope: string, input: PolicyInput, availableMicros: number): void {
    const orgId = input.attribution.orgId
    const ref = walletRefOfScope(scope)
    if (!ref) return
    void this.ledger
      .findWallet(orgId, ref)
      .then((wallet) => {
        if (!wallet) return
        return this.budgets.onWalletRefused(
          {
            walletId: wallet.id,
            orgId,
            scope: { kind: wallet.scopeKind, id: wallet.scopeId },
            teamId: teamOfWallet(wallet),
            allocatedMicros: wallet.allocatedMicros,
            spentAfterMicros: wallet.spentMicros,
          },
          micros(Math.max(0, availableMicros)),
          input.atMs,
        )
      })
      .catch((error: unknown) => this.logger.error({ err: error, scope }, 'budgets: announcing an exhausted wallet failed'))
  }
}

function walletRefOfScope(scope: string): WalletRef | undefined {
  const [kind, ...rest] = scope.split(':')
  if (kind !== 'user' && kind !== 'team' && kind !== 'org') return undefined
  return { scopeKind: kind, scopeId: rest.join(':') }
}
