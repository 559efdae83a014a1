/**
 * `budgets` row ↔ Budget and the spend-query scope filter, shared by the PostgreSQL and SQLite
 * budget stores. Both schemas declare the same snake_case columns for `budgets` (src/store/postgres/schema.ts,
 * src/store/sqlite/budget-store.ts; `hard_limit` and `shadow` are INTEGER 0/1 in both) and for
 * `usage_events`. PostgreSQL's BIGINT columns arrive as JS numbers (the pool's type parser,
 * src/store/postgres/db.ts) and SQLite's INTEGER columns are numbers already.
 */
import { micros } from '../../money/index.js'
import type { BudgetPeriod, BudgetScopeKind, BudgetThresholdAction, EndpointTier } from '../../config/types.js'
import type { Budget } from '../../budgets/budget.js'
import type { SpendScopeFilter } from '../../budgets/budget-store.js'

export interface BudgetRow {
  id: string
  org_id: string
  name: string
  scope_kind: string
  scope_id: string
  scope_team_id: string | null
  environment: string | null
  period: string
  timezone: string
  amount_micros: number
  alert_thresholds_json: string
  threshold_actions_json: string
  hard_limit: number
  shadow: number
  categories_json: string
  owner: string | null
  channels_json: string | null
  source: string
  created_at_ms: number
  updated_at_ms: number
  counter_epoch_ms: number | null
  tier: string | null
  escalate_after_ms: number | null
}

/**
 * The usage_events column a scope kind filters on, as `matchesCall` (budgets/budget.ts) compares
 * the call's attribution, the model it asked for and its provider. A whitelist, so the SQL built
 * from it is never user text.
 */
const SCOPE_CONDITION: Record<BudgetScopeKind, string> = {
  org: 'org_id = @scopeId',
  team: 'team_id = @scopeId',
  user: 'user_id = @scopeId',
  agent: 'agent_id = @scopeId',
  key: 'key_name = @scopeId',
  endpoint: 'endpoint_tag = @scopeId',
  // The model asked for, not the one that served (an alias, a degrade): the model a call is
  // matched by. Any case, as budgets match calls.
  model: 'lower(model_requested) = lower(@scopeId)',
  provider: 'lower(provider) = lower(@scopeId)',
}

/**
 * Which events of the org a budget's scope covers, environment and team aside (each adapter adds
 * those in its dialect). A user budget not narrowed to a team counts a user only where the key
 * was bound to that user: one a call named counts only toward user budgets of the key's team.
 * Events stored before `user_from_key` was (NULL) count, as they did.
 */
export function scopeConditionOf(filter: Pick<SpendScopeFilter, 'scopeKind' | 'teamId'>): string {
  const condition = SCOPE_CONDITION[filter.scopeKind]
  return filter.scopeKind === 'user' && filter.teamId === undefined ? `${condition} AND coalesce(user_from_key, 1) = 1` : condition
}

/**
 * `spendBetween`'s end for proxied calls and direct reservations is when they settled (`at_ms` is
 * when they arrived or reserved, and `latency_ms` runs to the settle): a call still running when a
 * budget is created is counted by its settle, toward the budget it finds then (BudgetPolicy
 * `countersJoined`, api/reservations.ts), not by the seed. Ingested events count by their `at_ms`.
 */
export const SETTLED_BEFORE_END = `(source = 'ingest' OR at_ms + latency_ms < @toMs)`

/** Named parameters for a spend query's scope condition (each adapter writes the condition in its dialect). */
export function paramsOf(filter: SpendScopeFilter): Record<string, unknown> {
  return { orgId: filter.orgId, scopeId: filter.scopeId, environment: filter.environment ?? null, scopeTeamId: filter.teamId ?? null }
}

export function rowOf(budget: Budget): BudgetRow {
  return {
    id: budget.id,
    org_id: budget.orgId,
    name: budget.name,
    scope_kind: budget.scopeKind,
    scope_id: budget.scopeId,
    scope_team_id: budget.scopeTeamId ?? null,
    environment: budget.environment ?? null,
    period: budget.period,
    timezone: budget.timezone,
    amount_micros: budget.amountMicros,
    alert_thresholds_json: JSON.stringify(budget.alertThresholds),
    threshold_actions_json: JSON.stringify(budget.thresholdActions),
    hard_limit: budget.hardLimit ? 1 : 0,
    shadow: budget.shadow ? 1 : 0,
    categories_json: JSON.stringify(budget.categories),
    owner: budget.owner ?? null,
    channels_json: budget.channels === undefined ? null : JSON.stringify(budget.channels),
    source: budget.source,
    created_at_ms: budget.createdAtMs,
    updated_at_ms: budget.updatedAtMs,
    counter_epoch_ms: budget.counterEpochMs,
    tier: budget.tier ?? null,
    escalate_after_ms: budget.escalateAfterMs ?? null,
  }
}

export function budgetOf(row: BudgetRow): Budget {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    scopeKind: row.scope_kind as BudgetScopeKind,
    scopeId: row.scope_id,
    scopeTeamId: row.scope_team_id ?? undefined,
    environment: row.environment ?? undefined,
    period: row.period as BudgetPeriod,
    timezone: row.timezone,
    amountMicros: micros(row.amount_micros),
    alertThresholds: JSON.parse(row.alert_thresholds_json) as number[],
    thresholdActions: JSON.parse(row.threshold_actions_json) as BudgetThresholdAction[],
    hardLimit: row.hard_limit === 1,
    shadow: row.shadow === 1,
    categories: JSON.parse(row.categories_json) as string[],
    owner: row.owner ?? undefined,
    channels: row.channels_json === null ? undefined : (JSON.parse(row.channels_json) as string[]),
    source: row.source === 'config' ? 'config' : 'api',
    createdAtMs: row.created_at_ms,
    updatedAtMs: row.updated_at_ms,
    counterEpochMs: row.counter_epoch_ms ?? 0,
    tier: (row.tier ?? undefined) as EndpointTier | undefined,
    escalateAfterMs: row.escalate_after_ms ?? undefined,
  }
}
