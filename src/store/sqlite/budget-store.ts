/**
 * SQLite adapter for budgets' ports: the budgets table, the fired-thresholds dedupe table, and
 * the spend queries over `usage_events` (so the database must also run `usageMigrations`).
 * A firing's mark is written with its notice by the notify store (`enqueue` with a mark), in one
 * transaction; this store only reads marks back.
 */
import type { SqliteDatabase, SqliteMigration } from './db.js'
import { summedMicros, type Micros } from '../../money/index.js'
import type { Budget } from '../../budgets/budget.js'
import type { BudgetStore, BudgetUsageReader, BudgetWriteResult, SpendByKey, SpendScopeFilter, TopSpendersMicros } from '../../budgets/budget-store.js'
import { SETTLED_BEFORE_END, budgetOf, paramsOf, rowOf, scopeConditionOf, type BudgetRow } from '../rows/budget.js'

export const budgetMigrations: readonly SqliteMigration[] = [
  {
    id: 'budgets-0001-budgets-fired-thresholds',
    sql: `
      CREATE TABLE budgets (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        name TEXT NOT NULL,
        scope_kind TEXT NOT NULL
          CHECK (scope_kind IN ('org', 'team', 'user', 'agent', 'key', 'endpoint', 'model', 'provider')),
        scope_id TEXT NOT NULL,
        environment TEXT,
        period TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
        timezone TEXT NOT NULL,
        amount_micros INTEGER NOT NULL CHECK (amount_micros > 0),
        alert_thresholds_json TEXT NOT NULL,
        threshold_actions_json TEXT NOT NULL,
        hard_limit INTEGER NOT NULL CHECK (hard_limit IN (0, 1)),
        shadow INTEGER NOT NULL CHECK (shadow IN (0, 1)),
        categories_json TEXT NOT NULL,
        owner TEXT,
        channels_json TEXT,
        source TEXT NOT NULL CHECK (source IN ('config', 'api')),
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        UNIQUE (org_id, name)
      );
      CREATE TABLE fired_thresholds (
        dedupe_key TEXT PRIMARY KEY,
        subject_id TEXT NOT NULL,
        fired_at_ms INTEGER NOT NULL
      );
      CREATE INDEX fired_thresholds_subject ON fired_thresholds (subject_id);
    `,
  },
  { id: 'budgets-0002-scope-team', sql: `ALTER TABLE budgets ADD COLUMN scope_team_id TEXT` },
  { id: 'budgets-0003-counter-epoch', sql: `ALTER TABLE budgets ADD COLUMN counter_epoch_ms INTEGER NOT NULL DEFAULT 0` },
  {
    id: 'budgets-0004-tier-escalation',
    sql: `ALTER TABLE budgets ADD COLUMN tier TEXT CHECK (tier IN ('critical', 'standard', 'experimental'));
          ALTER TABLE budgets ADD COLUMN escalate_after_ms INTEGER`,
  },
]

export class SqliteBudgetStore implements BudgetStore, BudgetUsageReader {
  constructor(private readonly db: SqliteDatabase) {}

  async insertBudget(budget: Budget): Promise<BudgetWriteResult> {
    const result = this.db
      .prepare(
        `INSERT INTO budgets (id, org_id, name, scope_kind, scope_id, scope_team_id, environment, period, timezone, amount_micros,
           alert_thresholds_json, threshold_actions_json, hard_limit, shadow, categories_json, owner, channels_json,
           source, created_at_ms, updated_at_ms, counter_epoch_ms, tier, escalate_after_ms)
         VALUES (@id, @org_id, @name, @scope_kind, @scope_id, @scope_team_id, @environment, @period, @timezone, @amount_micros,
           @alert_thresholds_json, @threshold_actions_json, @hard_limit, @shadow, @categories_json, @owner,
           @channels_json, @source, @created_at_ms, @updated_at_ms, @counter_epoch_ms, @tier, @escalate_after_ms)
         ON CONFLICT DO NOTHING`,
      )
      .run(rowOf(budget))
    return result.changes === 1 ? 'written' : 'name_taken'
  }

  async updateBudget(budget: Budget): Promise<BudgetWriteResult> {
    const taken = this.db
      .prepare<[string, string, string], { id: string }>('SELECT id FROM budgets WHERE org_id = ? AND name = ? AND id <> ?')
      .get(budget.orgId, budget.name, budget.id)
    if (taken) return 'name_taken'
    const result = this.db
      .prepare(
        `UPDATE budgets SET name = @name, scope_kind = @scope_kind, scope_id = @scope_id, scope_team_id = @scope_team_id, environment = @environment,
           period = @period, timezone = @timezone, amount_micros = @amount_micros,
           alert_thresholds_json = @alert_thresholds_json, threshold_actions_json = @threshold_actions_json,
           hard_limit = @hard_limit, shadow = @shadow, categories_json = @categories_json, owner = @owner,
           channels_json = @channels_json, source = @source, updated_at_ms = @updated_at_ms, counter_epoch_ms = @counter_epoch_ms,
           tier = @tier, escalate_after_ms = @escalate_after_ms
         WHERE id = @id AND org_id = @org_id`,
      )
      .run(rowOf(budget))
    return result.changes === 1 ? 'written' : 'not_found'
  }

  async deleteBudget(orgId: string, budgetId: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM budgets WHERE id = ? AND org_id = ?').run(budgetId, orgId).changes === 1
  }

  async getBudget(orgId: string, budgetId: string): Promise<Budget | undefined> {
    const row = this.db.prepare<[string, string], BudgetRow>('SELECT * FROM budgets WHERE id = ? AND org_id = ?').get(budgetId, orgId)
    return row ? budgetOf(row) : undefined
  }

  async findBudgetByName(orgId: string, name: string): Promise<Budget | undefined> {
    const row = this.db.prepare<[string, string], BudgetRow>('SELECT * FROM budgets WHERE org_id = ? AND name = ?').get(orgId, name)
    return row ? budgetOf(row) : undefined
  }

  async listBudgets(orgId: string | undefined): Promise<Budget[]> {
    const rows =
      orgId === undefined
        ? this.db.prepare<[], BudgetRow>('SELECT * FROM budgets ORDER BY id').all()
        : this.db.prepare<[string], BudgetRow>('SELECT * FROM budgets WHERE org_id = ? ORDER BY id').all(orgId)
    return rows.map(budgetOf)
  }

  async firedKeys(dedupeKeys: readonly string[]): Promise<string[]> {
    if (dedupeKeys.length === 0) return []
    return this.db
      .prepare<[string], { dedupe_key: string }>('SELECT dedupe_key FROM fired_thresholds WHERE dedupe_key IN (SELECT value FROM json_each(?))')
      .all(JSON.stringify(dedupeKeys))
      .map((row) => row.dedupe_key)
  }

  async spendBuckets(filter: SpendScopeFilter, endMs: number, bucketMs: number, count: number): Promise<Micros[]> {
    const startMs = endMs - bucketMs * count
    const rows = this.db
      .prepare<Record<string, unknown>, { bucket: number; spend: number }>(
        // better-sqlite3 binds JS numbers as REAL: cast, or the division is fractional.
        `SELECT (at_ms - CAST(@startMs AS INTEGER)) / CAST(@bucketMs AS INTEGER) AS bucket, SUM(cost_micros) AS spend FROM usage_events
         WHERE ${conditionOf(filter)} AND data_mode = 'real' AND at_ms >= @startMs AND at_ms < @endMs GROUP BY bucket`,
      )
      .all({ ...paramsOf(filter), startMs, endMs, bucketMs })
    const buckets = Array.from({ length: count }, () => 0 as Micros)
    for (const row of rows) {
      if (row.bucket >= 0 && row.bucket < count) buckets[row.bucket] = summedMicros(row.spend)
    }
    return buckets
  }

  async spendBetween(filter: SpendScopeFilter, fromMs: number, toMs: number): Promise<Micros> {
    const row = this.db
      .prepare<Record<string, unknown>, { spend: number | null }>(
        `SELECT SUM(cost_micros) AS spend FROM usage_events
         WHERE ${conditionOf(filter)} AND data_mode = 'real' AND at_ms >= @fromMs AND at_ms < @toMs
           AND ${SETTLED_BEFORE_END}`,
      )
      .get({ ...paramsOf(filter), fromMs, toMs })
    return summedMicros(row?.spend)
  }

  async topSpenders(filter: SpendScopeFilter, fromMs: number, toMs: number, limit: number): Promise<TopSpendersMicros> {
    const top = (column: string): SpendByKey[] =>
      this.db
        .prepare<Record<string, unknown>, { id: string; spend: number }>(
          `SELECT ${column} AS id, SUM(cost_micros) AS spend FROM usage_events
           WHERE ${conditionOf(filter)} AND data_mode = 'real' AND at_ms >= @fromMs AND at_ms < @toMs AND ${column} IS NOT NULL
           GROUP BY ${column} ORDER BY spend DESC, id LIMIT @limit`,
        )
        .all({ ...paramsOf(filter), fromMs, toMs, limit })
        .map((row) => ({ id: row.id, spendMicros: summedMicros(row.spend) }))
    return { endpoints: top('endpoint_tag'), users: top('user_id'), models: top('model_served') }
  }
}

function conditionOf(filter: SpendScopeFilter): string {
  return `org_id = @orgId AND ${scopeConditionOf(filter)} AND (@environment IS NULL OR environment = @environment)
    AND (@scopeTeamId IS NULL OR team_id = @scopeTeamId)`
}
