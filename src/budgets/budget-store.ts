/**
 * The ports budgets need: where budgets and fired thresholds are kept (`BudgetStore`), and the
 * read-only spend queries over usage events that give notifications their context and feed the
 * forecast (`BudgetUsageReader`). Adapters live in `store/`.
 */
import type { Micros } from '../money/index.js'
import type { BudgetScopeKind } from '../config/types.js'
import type { Budget } from './budget.js'

export type BudgetWriteResult = 'written' | 'not_found' | 'name_taken'

export interface BudgetStore {
  /** `name_taken` when the org already has a budget with this name. */
  insertBudget(budget: Budget): Promise<BudgetWriteResult>
  updateBudget(budget: Budget): Promise<BudgetWriteResult>
  deleteBudget(orgId: string, budgetId: string): Promise<boolean>
  getBudget(orgId: string, budgetId: string): Promise<Budget | undefined>
  findBudgetByName(orgId: string, name: string): Promise<Budget | undefined>
  /** Every org's budgets when `orgId` is undefined (the service's cache load). */
  listBudgets(orgId: string | undefined): Promise<Budget[]>
  /**
   * Which of these firings (`v1:{budgetId}:{periodKey}:{percent}`) were made: their mark is
   * stored, and with it their notice (`NotificationSink.emitOnce` writes both in one
   * transaction, and is the only way to take a mark). A plain read, in any order.
   */
  firedKeys(dedupeKeys: readonly string[]): Promise<string[]>
}

/** Which usage events belong to a scope: the same rule as `matchesCall`, in a query. */
export interface SpendScopeFilter {
  readonly orgId: string
  readonly scopeKind: BudgetScopeKind
  readonly scopeId: string
  readonly environment: string | undefined
  /** Only spend of this team (a budget's `scope.team_id`). */
  readonly teamId?: string | undefined
}

export interface SpendByKey {
  readonly id: string
  readonly spendMicros: Micros
}

export interface TopSpendersMicros {
  readonly endpoints: readonly SpendByKey[]
  readonly users: readonly SpendByKey[]
  readonly models: readonly SpendByKey[]
}

export interface BudgetUsageReader {
  /** `count` consecutive buckets of `bucketMs` ending at `endMs` (exclusive), oldest first; real (not demo) usage only. */
  spendBuckets(filter: SpendScopeFilter, endMs: number, bucketMs: number, count: number): Promise<Micros[]>
  /**
   * Spend in [fromMs, toMs) of real (not demo) usage events; a proxied call or a direct reservation
   * counts when it both started and settled before `toMs` (one still running then counts toward
   * the budgets it finds when it settles). What a budget's counter is seeded with.
   */
  spendBetween(filter: SpendScopeFilter, fromMs: number, toMs: number): Promise<Micros>
  /** Largest real (not demo) spenders in [fromMs, toMs), at most `limit` of each kind, largest first. */
  topSpenders(filter: SpendScopeFilter, fromMs: number, toMs: number, limit: number): Promise<TopSpendersMicros>
}
