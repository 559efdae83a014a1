/**
 * The port the ledger needs. Every method is atomic on its own: implementations (SQLite
 * transactions, Redis Lua scripts + a journal drained into PostgreSQL) must never let two
 * concurrent calls observe each other half-done. The contract suite in src/store/contract/ pins
 * the behaviour.
 *
 * `commit` is the one write after a call: it resolves the call's reservation (or counts its spend
 * when it had none) AND stores its usage event, in one durable step. Once it resolves, a process
 * killed at any moment loses neither (docs/architecture.md, "Durability").
 */
import type { Micros } from '../money/index.js'
import type { UsageEvent } from '../usage/types.js'
import type {
  AllocateRequest,
  BudgetCounterRef,
  BudgetCrossing,
  LedgerEntry,
  Reservation,
  ReserveRequest,
  ReserveResult,
  ResolveResult,
  Wallet,
  WalletRef,
} from './types.js'

export interface CallCommit {
  readonly orgId: string
  readonly atMs: number
  /** Stored in the same atomic step; undefined for a bare settle or void. */
  readonly event: UsageEvent | undefined
  /**
   * Resolve this reservation: settle at `actualMicros` (capped at what its wallet can cover), or
   * void. `alsoCount` names budgets that came to count the call after it reserved (created while
   * it ran): a settlement counts `actualMicros` toward them too, in the same atomic step, and their
   * crossings come back with the others (in the resolution's and the result's `budgetCrossings`).
   * A void, or a reservation already resolved, counts nothing toward them.
   */
  readonly resolve?: {
    readonly reservationId: string
    readonly outcome: 'settled' | 'voided'
    readonly actualMicros: Micros
    readonly alsoCount?: readonly BudgetCounterRef[]
  }
  /** Spend without a reservation (enforcement off, ingested events): bumps these budget counters. */
  readonly spend?: { readonly budgets: readonly BudgetCounterRef[]; readonly amountMicros: Micros }
  /**
   * Ingested events: when the event's team (for an event of no team: the org's events of no team)
   * already has an event with this event's `externalRequestId`, nothing at all happens
   * (`duplicate`), also when two commits race. Another team's event with the same id is no duplicate.
   */
  readonly dedupeExternalId?: boolean
}

export type CommitResult =
  | {
      readonly kind: 'committed'
      /** The resolution of `resolve` (undefined without one). */
      readonly resolution: ResolveResult | undefined
      /** Budget counters that moved with this commit's spend (for thresholds). */
      readonly budgetCrossings: readonly BudgetCrossing[]
    }
  | { readonly kind: 'duplicate' }

/**
 * Ingested events (`POST /v1/events`), committed as one atomic step: each event is stored unless
 * its team already has its `externalRequestId` (then it is a duplicate and counts nowhere), and
 * each budget counter moves once, by the summed cost of the stored events that count against it.
 */
export interface IngestCommit {
  readonly atMs: number
  readonly events: ReadonlyArray<{ readonly event: UsageEvent; readonly budgets: readonly BudgetCounterRef[] }>
}

export interface IngestCommitResult {
  /** Per event, in order: stored (true) or a duplicate (false). */
  readonly stored: readonly boolean[]
  /** The counters the batch moved, once each (for thresholds). */
  readonly budgetCrossings: readonly BudgetCrossing[]
}

/**
 * `commitIngested` as one `commit` per event, issued together: for a store whose commits cost
 * little apart (Redis scripts), the same outcome per event. Crossings are per event.
 */
export async function commitIngestedEach(ledger: Pick<LedgerStore, 'commit'>, batch: IngestCommit): Promise<IngestCommitResult> {
  const results = await Promise.all(
    batch.events.map(({ event, budgets }) =>
      ledger.commit({
        orgId: event.attribution.orgId,
        atMs: batch.atMs,
        event,
        ...(budgets.length > 0 && { spend: { budgets, amountMicros: event.costMicros } }),
        dedupeExternalId: true,
      }),
    ),
  )
  return {
    stored: results.map((r) => r.kind === 'committed'),
    budgetCrossings: results.flatMap((r) => (r.kind === 'committed' ? r.budgetCrossings : [])),
  }
}

export interface LedgerStore {
  /** Throws `AllocationRefused` past the money bound or for a user wallet of another team. */
  allocate(request: AllocateRequest): Promise<Wallet>
  getWallet(walletId: string): Promise<Wallet | undefined>
  findWallet(orgId: string, ref: WalletRef): Promise<Wallet | undefined>
  listWallets(orgId: string): Promise<Wallet[]>
  /**
   * Every wallet, of every org, that has spent since its last allocation: its
   * `spentAtAllocationMicros` is known and below `spentMicros`. What the start-up pass for wallet
   * alerts lost by a crash reads (`BudgetService.recoverWalletAlerts`); current figures, as a
   * settle would see them.
   */
  walletsSpentSinceAllocation(): Promise<Wallet[]>
  /** Newest first, at most `limit`. */
  ledgerEntries(walletId: string, limit: number): Promise<LedgerEntry[]>

  reserve(request: ReserveRequest): Promise<ReserveResult>
  commit(commit: CallCommit): Promise<CommitResult>
  /** All the events of one ingestion request in one atomic step (see IngestCommit); rejects when none could be stored. */
  commitIngested(batch: IngestCommit): Promise<IngestCommitResult>
  /**
   * Charges `actualMicros` (at most what the wallet can still cover; the rest is recorded as
   * unbilled) and returns reserved − charged to the wallet. A `commit` without an event.
   */
  settle(orgId: string, reservationId: string, actualMicros: Micros, atMs: number): Promise<ResolveResult>
  void(orgId: string, reservationId: string, atMs: number): Promise<ResolveResult>
  /** Settles up to `limit` pending reservations past their deadline at the reserved amount, flagged `expired`. */
  expireOverdue(nowMs: number, limit: number): Promise<ResolveResult[]>
  getReservation(orgId: string, reservationId: string): Promise<Reservation | undefined>
  countPending(): Promise<number>

  /** Spend that needed no reservation: bumps budget counters (saturating). A `commit` without an event. */
  recordSpend(orgId: string, budgets: readonly BudgetCounterRef[], amountMicros: Micros): Promise<BudgetCrossing[]>
  /** Current spend (settled + reserved) of each counter; 0 for counters never touched. */
  budgetSpend(orgId: string, budgets: readonly BudgetCounterRef[]): Promise<Map<string, { spentMicros: Micros; reservedMicros: Micros }>>
}

export function counterKey(budgetId: string, periodKey: string): string {
  return `${budgetId}|${periodKey}`
}
