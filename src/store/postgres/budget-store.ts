/**
 * PostgreSQL adapter for budgets' ports: the budgets table, the fired-thresholds dedupe table,
 * and the spend queries over `usage_events`. A firing's mark is taken by the notify store together
 * with its notice (`enqueue` with a mark, `INSERT … ON CONFLICT DO NOTHING` in the same
 * statement): exactly one insert wins across every gateway process. This store only reads marks.
 * Same semantics as src/store/sqlite/budget-store.ts.
 */
import type pg from 'pg'
import { summedMicros, type Micros } from '../../money/index.js'
import type { Budget } from '../../budgets/budget.js'
import type { BudgetStore, BudgetUsageReader, BudgetWriteResult, SpendByKey, SpendScopeFilter, TopSpendersMicros } from '../../budgets/budget-store.js'
import { named } from './named.js'
import { SETTLED_BEFORE_END, budgetOf, paramsOf, rowOf, scopeConditionOf, type BudgetRow } from '../rows/budget.js'

const INSERT_SQL = `INSERT INTO budgets (id, org_id, name, scope_kind, scope_id, scope_team_id, environment, period, timezone, amount_micros,
    alert_thresholds_json, threshold_actions_json, hard_limit, shadow, categories_json, owner, channels_json,
    source, created_at_ms, updated_at_ms, counter_epoch_ms, tier, escalate_after_ms)
  VALUES (@id, @org_id, @name, @scope_kind, @scope_id, @scope_team_id, @environment, @period, @timezone, @amount_micros,
    @alert_thresholds_json, @threshold_actions_json, @hard_limit, @shadow, @categories_json, @owner,
    @channels_json, @source, @created_at_ms, @updated_at_ms, @counter_epoch_ms, @tier, @escalate_after_ms)
  ON CONFLICT DO NOTHING`

const UPDATE_SQL = `UPDATE budgets SET name = @name, scope_kind = @scope_kind, scope_id = @scope_id, scope_team_id = @scope_team_id, environment = @environment,
    period = @period, timezone = @timezone, amount_micros = @amount_micros,
    alert_thresholds_json = @alert_thresholds_json, threshold_actions_json = @threshold_actions_json,
    hard_limit = @hard_limit, shadow = @shadow, categories_json = @categories_json, owner = @owner,
    channels_json = @channels_json, source = @source, updated_at_ms = @updated_at_ms, counter_epoch_ms = @counter_epoch_ms,
           tier = @tier, escalate_after_ms = @escalate_after_ms
  WHERE id = @id AND org_id = @org_id
    AND NOT EXISTS (SELECT 1 FROM budgets b WHERE b.org_id = @org_id AND b.name = @name AND b.id <> @id)`

export class PostgresBudgetStore implements BudgetStore, BudgetUsageReader {
  constructor(private readonly pool: pg.Pool) {}

  private async run(sql: string, params: Record<string, unknown>): Promise<pg.QueryResult> {
    const { text, values } = named(sql, params)
    return this.pool.query(text, values)
  }

  async insertBudget(budget: Budget): Promise<BudgetWriteResult> {
    const result = await this.run(INSERT_SQL, { ...rowOf(budget) })
    return result.rowCount === 1 ? 'written' : 'name_taken'
  }

  async updateBudget(budget: Budget): Promise<BudgetWriteResult> {
    try {
      const result = await this.run(UPDATE_SQL, { ...rowOf(budget) })
      if (result.rowCount === 1) return 'written'
    } catch (error) {
      // A concurrent rename to the same name loses on the unique index.
      if ((error as { code?: string }).code === '23505') return 'name_taken'
      throw error
    }
    const exists = await this.pool.query('SELECT 1 FROM budgets WHERE id = $1 AND org_id = $2', [budget.id, budget.orgId])
    return exists.rowCount === 1 ? 'name_taken' : 'not_found'
  }

  async deleteBudget(orgId: string, budgetId: string): Promise<boolean> {
    return (await this.pool.query('DELETE FROM budgets WHERE id = $1 AND org_id = $2', [budgetId, orgId])).rowCount === 1
  }

  async getBudget(orgId: string, budgetId: string): Promise<Budget | undefined> {
    const row = (await this.pool.query<BudgetRow>('SELECT * FROM budgets WHERE id = $1 AND org_id = $2', [budgetId, orgId])).rows[0]
    return row ? budgetOf(row) : undefined
  }

  async findBudgetByName(orgId: string, name: string): Promise<Budget | undefined> {
    const row = (await this.pool.query<BudgetRow>('SELECT * FROM budgets WHERE org_id = $1 AND name = $2', [orgId, name])).rows[0]
    return row ? budgetOf(row) : undefined
  }

  async listBudgets(orgId: string | undefined): Promise<Budget[]> {
    const { rows } =
      orgId === undefined
        ? await this.pool.query<BudgetRow>('SELECT * FROM budgets ORDER BY id')
        : await this.pool.query<BudgetRow>('SELECT * FROM budgets WHERE org_id = $1 ORDER BY id', [orgId])
    return rows.map(budgetOf)
  }

  async firedKeys(dedupeKeys: readonly string[]): Promise<string[]> {
    if (dedupeKeys.length === 0) return []
    const { rows } = await this.pool.query<{ dedupe_key: string }>('SELECT dedupe_key FROM fired_thresholds WHERE dedupe_key = ANY($1::text[])', [
      [...dedupeKeys],
    ])
    return rows.map((row) => row.dedupe_key)
  }

  async spendBuckets(filter: SpendScopeFilter, endMs: number, bucketMs: number, count: number): Promise<Micros[]> {
    const startMs = endMs - bucketMs * count
    const { rows } = await this.run(
      `SELECT (at_ms - @startMs::bigint) / @bucketMs::bigint AS bucket, SUM(cost_micros) AS spend FROM usage_events
       WHERE ${conditionOf(filter)} AND data_mode = 'real' AND at_ms >= @startMs AND at_ms < @endMs GROUP BY bucket`,
      { ...paramsOf(filter), startMs, endMs, bucketMs },
    )
    const buckets = Array.from({ length: count }, () => 0 as Micros)
    for (const row of rows as { bucket: number; spend: number }[]) {
      if (row.bucket >= 0 && row.bucket < count) buckets[row.bucket] = summedMicros(row.spend)
    }
    return buckets
  }

  async spendBetween(filter: SpendScopeFilter, fromMs: number, toMs: number): Promise<Micros> {
    const { rows } = await this.run(
      `SELECT SUM(cost_micros) AS spend FROM usage_events
       WHERE ${conditionOf(filter)} AND data_mode = 'real' AND at_ms >= @fromMs AND at_ms < @toMs
         AND ${SETTLED_BEFORE_END}`,
      { ...paramsOf(filter), fromMs, toMs },
    )
    return summedMicros((rows[0] as { spend: number | null } | undefined)?.spend)
  }

  async topSpenders(filter: SpendScopeFilter, fromMs: number, toMs: number, limit: number): Promise<TopSpendersMicros> {
    const top = async (column: string): Promise<SpendByKey[]> => {
      const { rows } = await this.run(
        `SELECT ${column} AS id, SUM(cost_micros) AS spend FROM usage_events
         WHERE ${conditionOf(filter)} AND data_mode = 'real' AND at_ms >= @fromMs AND at_ms < @toMs AND ${column} IS NOT NULL
         GROUP BY ${column} ORDER BY spend DESC, id LIMIT @limit`,
        { ...paramsOf(filter), fromMs, toMs, limit },
      )
      return (rows as { id: string; spend: number }[]).map((row) => ({ id: row.id, spendMicros: summedMicros(row.spend) }))
    }
    const [endpoints, users, models] = await Promise.all([top('endpoint_tag'), top('user_id'), top('model_served')])
    return { endpoints, users, models }
  }
}

function conditionOf(filter: SpendScopeFilter): string {
  return `org_id = @orgId AND ${scopeConditionOf(filter)} AND (@environment::text IS NULL OR environment = @environment)
    AND (@scopeTeamId::text IS NULL OR team_id = @scopeTeamId)`
}
