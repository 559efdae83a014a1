/**
 * Wallets and reservations: the hard control. Semantics follow two-phase transfers:
 * a reservation is pending until exactly one of settle | void | expire resolves it.
 *
 *   available = allocated − reserved − spent        (never below zero)
 *   a wallet pays a reservation only if reserved + spent + amount ≤ cap,
 *   cap = allocated × walletCapPercent / 100 (the `block` entry of cost_tracking.budget_alerts)
 */
import { micros, type Micros } from '../money/index.js'

export type WalletScopeKind = 'user' | 'team' | 'org'

/** `team:marketing` — how a scope is named in errors, headers and tickets. */
export type ScopeName = string

export interface WalletRef {
  readonly scopeKind: WalletScopeKind
  readonly scopeId: string
}

/**
 * One step of a reservation's cascade. `teamOf`, when set, is the team the wallet must belong to
 * ('' = a wallet of no team): a user named by the call (not bound to its key) may only spend a
 * user wallet of the key's team. A wallet of another team is skipped as if it did not exist.
 */
export interface CascadeStep extends WalletRef {
  readonly teamOf?: string
}

export function scopeName(ref: WalletRef): ScopeName {
  return `${ref.scopeKind}:${ref.scopeId}`
}

export interface Wallet {
  readonly id: string
  readonly orgId: string
  readonly scopeKind: WalletScopeKind
  readonly scopeId: string
  /** The team a user wallet belongs to (set at its first allocation); undefined for team/org wallets and team-less user wallets. */
  readonly teamId: string | undefined
  readonly currency: 'USD'
  readonly allocatedMicros: Micros
  readonly reservedMicros: Micros
  readonly spentMicros: Micros
  readonly availableMicros: Micros
  readonly createdAtMs: number
  /**
   * What the wallet had spent when its current allocated total was set (its last allocation),
   * recorded in the same atomic step as that allocation. A threshold of the current total whose
   * mark lies above it and at or below `spentMicros` was crossed by spend after the allocation;
   * one at or below it was passed already when the allocation came ("jumped over" by a top-up).
   * Undefined when not known: a wallet last allocated before the figure was recorded.
   */
  readonly spentAtAllocationMicros: Micros | undefined
}

export type ReservationStatus = 'pending' | 'settled' | 'voided' | 'expired'

export interface Reservation {
  readonly id: string
  readonly orgId: string
  /** Undefined when no wallet pays (enforcement off) and only hard budgets were reserved against. */
  readonly walletId: string | undefined
  readonly scope: ScopeName | undefined
  readonly amountMicros: Micros
  readonly status: ReservationStatus
  /** What was finally charged: actual (settled), 0 (voided), amount (expired). */
  readonly settledMicros: Micros | undefined
  /** Actual cost above what the wallet could still cover at settle time; flagged for reconciliation. */
  readonly unbilledMicros: Micros
  readonly budgets: readonly BudgetCounterRef[]
  readonly requestId: string | undefined
  readonly createdAtMs: number
  readonly expiresAtMs: number
  readonly resolvedAtMs: number | undefined
  /** What the caller of a direct reservation attached (its attribution, as JSON); undefined for proxied calls. */
  readonly context: string | undefined
}

/**
 * One budget's counter for one period. The ledger keeps period spend beside wallets so a hard
 * budget is checked in the same atomic step as the wallet.
 */
export interface BudgetCounterRef {
  readonly budgetId: string
  readonly periodKey: string
  /** Set for hard budgets: reservations may not take reserved + spent above it. */
  readonly limitMicros: Micros | undefined
  /** Counters can be dropped after this (Redis TTL). */
  readonly periodEndMs: number
}

export interface BudgetCrossing {
  readonly budgetId: string
  readonly periodKey: string
  readonly spentBeforeMicros: Micros
  readonly spentAfterMicros: Micros
}

export interface WalletCrossing {
  readonly walletId: string
  readonly scope: ScopeName
  /** A team wallet's team, or the team a user wallet belongs to. */
  readonly teamId: string | undefined
  readonly allocatedMicros: Micros
  readonly spentBeforeMicros: Micros
  readonly spentAfterMicros: Micros
  /** The wallet's spend when its allocated total was set (`Wallet.spentAtAllocationMicros`); undefined when not known. */
  readonly spentAtAllocationMicros: Micros | undefined
}

export interface ReserveRequest {
  readonly reservationId: string
  readonly orgId: string
  /** Tried in order (user → team → org); the first that can cover the amount pays. */
  readonly cascade: readonly CascadeStep[]
  /** False when wallet enforcement is off: only hard budgets are reserved against. */
  readonly walletRequired: boolean
  readonly walletCapPercent: number
  readonly amountMicros: Micros
  readonly budgets: readonly BudgetCounterRef[]
  readonly requestId: string | undefined
  readonly atMs: number
  readonly expiresAtMs: number
  /** Kept with the reservation and returned with it (a direct reservation's attribution, as JSON). */
  readonly context?: string | undefined
  /**
   * What to do when the shared counter store cannot be reached: `closed` refuses
   * (`store_unavailable`), `open` serves against a per-process emergency allowance of this many
   * micros, reconciled into the ledger later. Backends with no separate counter store ignore it.
   */
  readonly failMode?: { readonly mode: 'closed' | 'open'; readonly emergencyAllowanceMicros: Micros }
}

/**
 * The reservation a `reserve` creates: pending, nothing settled yet. `payer` is the wallet that
 * holds the amount, or undefined when no wallet pays (enforcement off, or an emergency reservation).
 */
export function pendingReservation(request: ReserveRequest, payer: { readonly walletId: string; readonly scope: ScopeName } | undefined): Reservation {
  return {
    id: request.reservationId,
    orgId: request.orgId,
    walletId: payer?.walletId,
    scope: payer?.scope,
    amountMicros: request.amountMicros,
    status: 'pending',
    settledMicros: undefined,
    unbilledMicros: micros(0),
    budgets: request.budgets,
    requestId: request.requestId,
    createdAtMs: request.atMs,
    expiresAtMs: request.expiresAtMs,
    resolvedAtMs: undefined,
    context: request.context,
  }
}

/** The team a wallet belongs to: a team wallet's own, a user wallet's team (if any); undefined for the org. */
export function teamOfWallet(wallet: Pick<Wallet, 'scopeKind' | 'scopeId' | 'teamId'>): string | undefined {
  if (wallet.scopeKind === 'team') return wallet.scopeId
  if (wallet.scopeKind === 'user') return wallet.teamId
  return undefined
}

export type ReserveResult =
  | { readonly kind: 'reserved'; readonly reservation: Reservation; readonly walletAvailableMicros: Micros | undefined }
  | {
      readonly kind: 'insufficient_quota'
      /** The first wallet in the cascade that exists (it would be topped up), else the team. */
      readonly scope: ScopeName
      /** The most any wallet in the cascade could have paid. */
      readonly availableMicrosMax: Micros
    }
  | { readonly kind: 'budget_cap_exceeded'; readonly budgetId: string; readonly periodKey: string; readonly remainingMicros: Micros }
  | { readonly kind: 'already_exists'; readonly reservation: Reservation }
  /** The counter store is unreachable and the consumer fails closed (or its allowance is spent). */
  | { readonly kind: 'store_unavailable'; readonly message: string }

export type ResolveResult =
  | {
      readonly kind: 'settled' | 'voided' | 'expired'
      readonly reservation: Reservation
      /** Reserved − charged, returned to the wallet at once. */
      readonly releasedMicros: Micros
      readonly walletCrossing: WalletCrossing | undefined
      readonly budgetCrossings: readonly BudgetCrossing[]
      readonly walletAvailableMicros: Micros | undefined
    }
  | { readonly kind: 'already_settled' | 'already_voided' | 'already_expired'; readonly reservation: Reservation }
  | { readonly kind: 'not_found' }

export type LedgerEntryKind = 'allocation' | 'reservation' | 'settlement' | 'void' | 'expiry' | 'spend'

export interface LedgerEntry {
  readonly id: string
  readonly walletId: string
  readonly kind: LedgerEntryKind
  /** Signed effect on `available`: +allocation, −reservation, +release. */
  readonly amountMicros: Micros
  readonly reservationId: string | undefined
  readonly description: string | undefined
  readonly atMs: number
}

export interface AllocateRequest {
  readonly orgId: string
  readonly wallet: WalletRef
  /** For a user wallet: the team it belongs to. Set at the first allocation; a later one naming another team is refused. */
  readonly teamId?: string | undefined
  readonly amountMicros: Micros
  readonly description: string | undefined
  readonly atMs: number
}
