/**
 * What the proxy asks of the soft-budget side before and after a call. The budgets domain
 * implements it; the proxy knows nothing of periods, thresholds or notifications.
 */
import type { BudgetCounterRef, BudgetCrossing, WalletCrossing } from '../ledger/types.js'
import type { Attribution, UsageDecision } from '../usage/types.js'

export interface PolicyInput {
  readonly attribution: Attribution
  readonly model: string
  readonly provider: string
  readonly atMs: number
}

/** How a budget reads in a refusal: `team:marketing`, its name, and the period (`monthly 2026-11`). */
export interface BudgetLabel {
  readonly scope: string
  readonly name: string
  readonly periodLabel: string
  /** Why the budget refuses, when it is more than "spent": an experimental endpoint's hard cap. */
  readonly reason?: string
}

/**
 * `counters` are every budget that counts this call (hard ones carry a limit the ledger enforces
 * at reserve time); `labelOf` names one, so a refusal at reserve time reads like one made here
 * (made when asked: only a refusal needs it). `countersJoined`, asked when the call settles, names
 * the budgets that count it but did not when it was decided (created, or changed to count it,
 * while it ran): its spend counts toward them too.
 */
export type PolicyDecision = (
  | { readonly kind: 'allow'; readonly counters: readonly BudgetCounterRef[] }
  | {
      readonly kind: 'degrade'
      readonly counters: readonly BudgetCounterRef[]
      readonly budgetId: string
      readonly degradeTo: string | undefined
      readonly outputTokensMax: number | undefined
    }
  | { readonly kind: 'would_block'; readonly counters: readonly BudgetCounterRef[]; readonly budgetId: string; readonly scope: string }
  | {
      readonly kind: 'block'
      readonly counters: readonly BudgetCounterRef[]
      readonly budgetId: string
      readonly scope: string
      readonly budgetName: string
      readonly periodLabel: string
      readonly resetAtMs: number
      /** Why, when more than a threshold reached: a forecast-confirmed block, an experimental endpoint. */
      readonly explanation?: string
    }
) & {
  readonly labelOf?: (budgetId: string) => BudgetLabel | undefined
  readonly countersJoined?: () => readonly BudgetCounterRef[]
}

export interface SettledSpend {
  readonly attribution: Attribution
  readonly model: string
  readonly provider: string
  readonly atMs: number
  readonly budgetCrossings: readonly BudgetCrossing[]
  readonly walletCrossing: WalletCrossing | undefined
}

export interface SpendPolicy {
  /** Hot path: which budgets count this call and what they say now. */
  decide(input: PolicyInput): Promise<PolicyDecision>
  /** After a call's spend is settled (or ingested): thresholds, forecasts, notifications. Never throws. */
  onSpend(spend: SettledSpend): void
  /** A budget refused a call (at the decision or at the reservation): `budget.blocked`, once per period. Never throws. */
  onBlocked(counter: { readonly budgetId: string; readonly periodKey: string }, input: PolicyInput): void
  /** No wallet of the cascade could cover a call: `wallet.exhausted` for the wallet named `scope`, once. Never throws. */
  onWalletRefused(scope: string, input: PolicyInput, availableMicros: number): void
}

/**
 * What a served call's usage event says of the spend controls: `degraded` / `would_block` as
 * decided; `unenforced` when nothing was reserved and wallets are not enforced; else `allowed`.
 * Policy replay labels its decisions with this too.
 */
export function usageDecisionOf(kind: PolicyDecision['kind'], reserved: boolean, walletsEnforced: boolean): UsageDecision {
  if (kind === 'degrade') return 'degraded'
  if (kind === 'would_block') return 'would_block'
  if (!reserved && !walletsEnforced) return 'unenforced'
  return 'allowed'
}

/** Until budgets are configured: every call allowed, nothing counted. */
export const noBudgets: SpendPolicy = {
  decide: async () => ({ kind: 'allow', counters: [] }),
  onSpend: () => {},
  onBlocked: () => {},
  onWalletRefused: () => {},
}
