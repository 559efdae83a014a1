/**
 * The port the ledger needs. Every method is atomic on its own: implementations (SQLite
 * transactions, Redis Lua scripts + PostgreSQL journal) must never let two concurrent calls
 * observe each other half-done. The contract suite in src/store/contract/ pins the behaviour.
 */
import type { Micros } from '../money/index.js'
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

export interface LedgerStore {
  allocate(request: AllocateRequest): Promise<Wallet>
  getWallet(walletId: string): Promise<Wallet | undefined>
  findWallet(orgId: string, ref: WalletRef): Promise<Wallet | undefined>
  listWallets(orgId: string): Promise<Wallet[]>
  /** Newest first, at most `limit`. */
  ledgerEntries(walletId: string, limit: number): Promise<LedgerEntry[]>

  reserve(request: ReserveRequest): Promise<ReserveResult>
  /**
   * Charges `actualMicros` (at most what the wallet can still cover; the rest is recorded as
   * unbilled) and returns reserved − charged to the wallet.
   */
  settle(reservationId: string, actualMicros: Micros, atMs: number): Promise<ResolveResult>
  void(reservationId: string, atMs: number): Promise<ResolveResult>
  /** Settles up to `limit` pending reservations past their deadline at the reserved amount, flagged `expired`. */
  expireOverdue(nowMs: number, limit: number): Promise<ResolveResult[]>
  getReservation(reservationId: string): Promise<Reservation | undefined>
  countPending(): Promise<number>

  /** Spend that needed no reservation (enforcement off, ingested events): bumps budget counters. */
  recordSpend(budgets: readonly BudgetCounterRef[], amountMicros: Micros): Promise<BudgetCrossing[]>
  /** Current spend (settled + reserved) of each counter; 0 for counters never touched. */
  budgetSpend(budgets: readonly BudgetCounterRef[]): Promise<Map<string, { spentMicros: Micros; reservedMicros: Micros }>>
}

export function counterKey(budgetId: string, periodKey: string): string {
  return `${budgetId}|${periodKey}`
}
