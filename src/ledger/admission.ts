/**
 * What a reservation is admitted against, as pure functions: the hard budget caps and the wallet
 * cascade. The SQLite ledger runs them inside its transaction; policy replay runs them over its
 * in-memory counters and wallets, so both refuse the same calls. (The Redis backend repeats the
 * same two rules in Lua, where they run atomically beside the counters.)
 */
import { micros, percentOf, type Micros } from '../money/index.js'
import { scopeName, type BudgetCounterRef, type CascadeStep, type WalletRef } from './types.js'

/** A hard budget that cannot take `amountMicros` more: reserved + spent + amount above its limit. */
export interface HardCapRefusal {
  readonly kind: 'budget_cap_exceeded'
  readonly budgetId: string
  readonly periodKey: string
  readonly remainingMicros: Micros
}

/** The first hard budget (one with `limitMicros`) the amount would take past its limit, if any. */
export function hardCapRefusal(
  budgets: readonly BudgetCounterRef[],
  usedMicrosOf: (counter: BudgetCounterRef) => number,
  amountMicros: number,
): HardCapRefusal | undefined {
  for (const budget of budgets) {
    if (budget.limitMicros === undefined) continue
    const used = usedMicrosOf(budget)
    if (used + amountMicros > budget.limitMicros) {
      return {
        kind: 'budget_cap_exceeded',
        budgetId: budget.budgetId,
        periodKey: budget.periodKey,
        remainingMicros: micros(Math.max(0, budget.limitMicros - used)),
      }
    }
  }
  return undefined
}

/** What the cascade needs to know of one wallet. */
export interface WalletBalance {
  readonly teamId: string | undefined
  readonly allocatedMicros: number
  readonly reservedMicros: number
  readonly spentMicros: number
}

/** How much more a wallet may take on: its cap (the `block` alert's percent, never above the allocation) minus what is reserved or spent. */
export function spendableMicros(wallet: WalletBalance, capPercent: number): number {
  const cap = Math.min(percentOf(micros(wallet.allocatedMicros), capPercent), wallet.allocatedMicros)
  return Math.max(0, cap - wallet.reservedMicros - wallet.spentMicros)
}

/** A cascade step naming a team (a user named by the call) takes only a wallet of that team. */
export function walletBelongs(wallet: Pick<WalletBalance, 'teamId'>, step: CascadeStep): boolean {
  return step.teamOf === undefined || (wallet.teamId ?? '') === step.teamOf
}

export type PayerChoice<W> =
  | { readonly kind: 'paid'; readonly wallet: W; readonly step: CascadeStep }
  | { readonly kind: 'insufficient_quota'; readonly firstFunded: WalletRef | undefined; readonly availableMicrosMax: Micros }

/** The first wallet of the cascade (user → team → org) that exists, belongs, and can cover the amount. */
export function choosePayer<W extends WalletBalance>(
  cascade: readonly CascadeStep[],
  walletOf: (step: CascadeStep) => W | undefined,
  amountMicros: number,
  capPercent: number,
): PayerChoice<W> {
  let availableMax = 0
  let firstFunded: WalletRef | undefined
  for (const step of cascade) {
    const wallet = walletOf(step)
    if (!wallet || !walletBelongs(wallet, step)) continue
    firstFunded ??= step
    const headroom = spendableMicros(wallet, capPercent)
    if (amountMicros <= headroom) return { kind: 'paid', wallet, step }
    availableMax = Math.max(availableMax, headroom)
  }
  return { kind: 'insufficient_quota', firstFunded, availableMicrosMax: micros(availableMax) }
}

/**
 * The scope a wallet refusal (and its cost ticket) names: the first wallet in the cascade that
 * exists — the one that normally pays and would be topped up — or, with no wallet at all, the team.
 */
export function refusedScopeOf(cascade: readonly CascadeStep[], orgId: string, firstFunded: WalletRef | undefined): string {
  const scope = firstFunded ?? cascade.find((ref) => ref.scopeKind === 'team') ?? cascade[cascade.length - 1]
  return scope ? scopeName(scope) : `org:${orgId}`
}
