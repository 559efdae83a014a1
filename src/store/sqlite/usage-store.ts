/** UsageStore on SQLite: batched inserts in one transaction; reports are GROUP BY over indexes. */
import { micros } from '../../money/index.js'
import { GROUP_COLUMN, REQUEST_OUTCOMES_MAX, type RequestOutcome, type ScanCursor, type UsageEventQuery, type UsageQuery, type UsageReport, type UsageScan, type UsageStore, type UsageTotals } from '../../usage/usage-store.js'
import { EVENT_FILTER_COLUMN, usageEventOf, type UsageEventRow } from '../rows/usage.js'
import type { ScannedEvent, UsageEvent, UsageGroupBy } from '../../usage/types.js'
import type { SqliteDatabase } from './db.js'

export { usageMigrations } from './usage-schema.js'

const COLUMNS = [
  'id', 'request_id', 'at_ms', 'org_id', 'team_id', 'user_id', 'agent_id', 'key_name', 'endpoint_tag',
  'prompt_version', 'environment', 'provider', 'target_id', 'model_requested', 'model_served', 'endpoint',
  'input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'output_tokens', 'reasoning_tokens',
  'audio_input_tokens', 'audio_output_tokens', 'usage_source', 'cost_micros', 'price_source', 'latency_ms',
  'status', 'http_status', 'is_stream', 'decision', 'reservation_id', 'wallet_id', 'data_mode', 'source',
  'external_request_id', 'cache_write_1h_tokens', 'usage_note', 'cost_breakdown_json', 'reported_cost_micros',
] as const

export function usageRow(e: UsageEvent): unknown[] {
  const a = e.attribution
  const u = e.usage
  return [
    e.id, e.requestId, e.atMs, a.orgId, a.teamId ?? null, a.userId ?? null, a.agentId ?? null, a.keyName ?? null,
    a.endpointTag ?? null, a.promptVersion ?? null, a.environment, e.provider, e.targetId ?? null, e.modelRequested,
    e.modelServed, e.endpoint, u.inputTokens, u.cacheReadTokens, u.cacheWriteTokens, u.outputTokens,
    u.reasoningTokens, u.audioInputTokens, u.audioOutputTokens, e.usageSource, e.costMicros, e.priceSource,
    e.latencyMs, e.status, e.httpStatus, e.isStream ? 1 : 0, e.decision, e.reservationId ?? null,
    e.walletId ?? null, e.dataMode, e.source, e.externalRequestId ?? null, u.cacheWrite1hTokens, e.usageNote ?? null,
    e.costBreakdown === undefined ? null : JSON.stringify(e.costBreakdown), e.reportedCostMicros ?? null,
  ]
}

export const USAGE_COLUMNS = COLUMNS

/** The columns `scan` reads (replay needs no breakdown, note or latency). */
export const SCAN_COLUMNS = `id, request_id, at_ms, org_id, team_id, user_id, agent_id, key_name, endpoint_tag, prompt_version,
  environment, provider, model_requested, model_served, endpoint, input_tokens, cache_read_tokens, cache_write_tokens,
  cache_write_1h_tokens, output_tokens, reasoning_tokens, audio_input_tokens, audio_output_tokens, cost_micros, status,
  decision, source`

export type ScanRow = Record<string, string | number | null>

/** A scanned row (PostgreSQL returns BIGINT as text: every number goes through Number). */
export function scannedEventOf(row: ScanRow): ScannedEvent {
  return scannedEventOfValues(SCAN_COLUMN_NAMES.map((name) => row[name] ?? null))
}

const SCAN_COLUMN_NAMES = SCAN_COLUMNS.split(',').map((name) => name.trim())

/** The same from the values in SCAN_COLUMNS order (SQLite's raw rows: no object per row to build and collect). */
export function scannedEventOfValues(v: ReadonlyArray<string | number | null>): ScannedEvent {
  const text = (i: number) => (v[i] === null ? undefined : String(v[i]))
  const int = (i: number) => Number(v[i] ?? 0)
  return {
    id: String(v[0]),
    requestId: String(v[1]),
    atMs: int(2),
    attribution: {
      orgId: String(v[3]),
      teamId: text(4),
      userId: text(5),
      userFromKey: false,
      agentId: text(6),
      keyName: text(7),
      endpointTag: text(8),
      promptVersion: text(9),
      environment: String(v[10]),
    },
    provider: String(v[11]),
    modelRequested: String(v[12]),
    modelServed: String(v[13]),
    endpoint: String(v[14]) as ScannedEvent['endpoint'],
    usage: {
      inputTokens: int(15),
      cacheReadTokens: int(16),
      cacheWriteTokens: int(17),
      cacheWrite1hTokens: int(18),
      outputTokens: int(19),
      reasoningTokens: int(20),
      audioInputTokens: int(21),
      audioOutputTokens: int(22),
    },
    costMicros: micros(int(23)),
    status: String(v[24]) as ScannedEvent['status'],
    decision: String(v[25]) as ScannedEvent['decision'],
    source: String(v[26]) as ScannedEvent['source'],
  }
}

export interface OutcomeRow {
  request_id: string
  status: RequestOutcome['status']
  http_status: number
  cost_micros: number
  at_ms: number
}

/** The latest event per request wins (rows come oldest first). */
export function outcomesOf(rows: readonly OutcomeRow[]): Map<string, RequestOutcome> {
  const outcomes = new Map<string, RequestOutcome>()
  for (const row of rows) {
    outcomes.set(row.request_id, { status: row.status, httpStatus: Number(row.http_status), costMicros: micros(Number(row.cost_micros)), atMs: Number(row.at_ms) })
  }
  return outcomes
}

interface TotalsRow {
  requests: number
  cost_micros: number | null
  input_tokens: number | null
  output_tokens: number | null
  cache_read_tokens: number | null
  cache_write_tokens: number | null
  cache_write_1h_tokens: number | null
  reasoning_tokens: number | null
  audio_input_tokens: number | null
  audio_output_tokens: number | null
}

/** The sums every report carries; both SQL stores use it. */
export const TOTALS_SQL = `count(*) AS requests, sum(cost_micros) AS cost_micros, sum(input_tokens) AS input_tokens,
  sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
  sum(cache_write_tokens) AS cache_write_tokens, sum(cache_write_1h_tokens) AS cache_write_1h_tokens,
  sum(reasoning_tokens) AS reasoning_tokens, sum(audio_input_tokens) AS audio_input_tokens,
  sum(audio_output_tokens) AS audio_output_tokens`

export function totalsOf(row: TotalsRow): UsageTotals {
  // PostgreSQL's sum(bigint) is numeric and arrives as a string.
  const n = (value: number | string | null) => Number(value ?? 0)
  return {
    requests: n(row.requests),
    costMicros: micros(n(row.cost_micros)),
    inputTokens: n(row.input_tokens),
    outputTokens: n(row.output_tokens),
    cacheReadTokens: n(row.cache_read_tokens),
    cacheWriteTokens: n(row.cache_write_tokens),
    cacheWrite1hTokens: n(row.cache_write_1h_tokens),
    reasoningTokens: n(row.reasoning_tokens),
    audioInputTokens: n(row.audio_input_tokens),
    audioOutputTokens: n(row.audio_output_tokens),
  }
}

/** WHERE clause and parameters of an event list; `param` names a parameter in the SQL dialect. */
export function eventListWhere(q: UsageEventQuery, param: (value: unknown) => string): string {
  const where = [`org_id = ${param(q.orgId)}`, `at_ms >= ${param(q.fromMs)}`, `at_ms < ${param(q.toMs)}`]
  for (const [field, column] of Object.entries(EVENT_FILTER_COLUMN)) {
    const value = q[field as keyof typeof EVENT_FILTER_COLUMN]
    if (value !== undefined) where.push(`${column} = ${param(value)}`)
  }
  if (q.before !== undefined) {
    // Each use binds its own parameter: SQLite's `?` is positional.
    where.push(`(at_ms < ${param(q.before.atMs)} OR (at_ms = ${param(q.before.atMs)} AND id < ${param(q.before.id)}))`)
  }
  return where.join(' AND ')
}

export class SqliteUsageStore implements UsageStore {
  private readonly insert
  private readonly insertMany

  constructor(private readonly db: SqliteDatabase) {
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO usage_events (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
    )
    this.insertMany = db.transaction((events: readonly UsageEvent[]) => {
      for (const e of events) this.insertSync(e)
    })
  }

  async insertBatch(events: readonly UsageEvent[]): Promise<void> {
    this.insertMany.immediate(events)
  }

  async insertIngested(event: UsageEvent): Promise<boolean> {
    return this.insertSync(event)
  }

  /**
   * Inserts one event in the caller's transaction (the ledger's commit); false when the org already
   * has an event with its external id. Every insert path goes through here.
   */
  insertSync(event: UsageEvent): boolean {
    return this.insert.run(usageRow(event)).changes === 1
  }

  async query(q: UsageQuery): Promise<UsageReport> {
    const where = ['org_id = @orgId', 'at_ms >= @fromMs', 'at_ms < @toMs']
    if (q.teamId !== undefined) where.push('team_id = @teamId')
    if (q.environment !== undefined) where.push('environment = @environment')
    if (q.dataMode !== undefined) where.push('data_mode = @dataMode')
    const params = { orgId: q.orgId, fromMs: q.fromMs, toMs: q.toMs, teamId: q.teamId, environment: q.environment, dataMode: q.dataMode, bucketMs: q.bucketMs }
    const whereSql = where.join(' AND ')
    const groupCols = q.groupBy.map((g) => `${GROUP_COLUMN[g]} AS "${g}"`)
    const groupBySql = q.groupBy.map((g) => GROUP_COLUMN[g]).join(', ')

    const totals = this.db.prepare<typeof params, TotalsRow>(`SELECT ${TOTALS_SQL} FROM usage_events WHERE ${whereSql}`).get(params)!
    const groups = q.groupBy.length
      ? this.db
          .prepare<typeof params, TotalsRow & Record<string, string | null>>(
            `SELECT ${groupCols.join(', ')}, ${TOTALS_SQL} FROM usage_events WHERE ${whereSql}
             GROUP BY ${groupBySql} ORDER BY cost_micros DESC`,
          )
          .all(params)
      : []
    const series = this.db
      .prepare<typeof params, TotalsRow & Record<string, string | number | null>>(
        `SELECT CAST(at_ms / @bucketMs AS INTEGER) * @bucketMs AS bucket_start_ms${groupCols.length ? ', ' + groupCols.join(', ') : ''}, ${TOTALS_SQL}
         FROM usage_events WHERE ${whereSql}
         GROUP BY bucket_start_ms${groupBySql ? ', ' + groupBySql : ''} ORDER BY bucket_start_ms`,
      )
      .all(params)
    const keyOf = (row: Record<string, unknown>) =>
      Object.fromEntries(q.groupBy.map((g) => [g, (row[g] as string | null) ?? null])) as Partial<Record<UsageGroupBy, string | null>>
    return {
      totals: totalsOf(totals),
      groups: groups.map((row) => ({ key: keyOf(row), ...totalsOf(row) })),
      series: series.map((row) => ({ bucketStartMs: row.bucket_start_ms as number, key: keyOf(row), ...totalsOf(row) })),
    }
  }

  async listEvents(q: UsageEventQuery): Promise<UsageEvent[]> {
    const params: unknown[] = []
    const where = eventListWhere(q, (value) => {
      params.push(value)
      return '?'
    })
    const rows = this.db
      .prepare<unknown[], UsageEventRow>(`SELECT * FROM usage_events WHERE ${where} ORDER BY at_ms DESC, id DESC LIMIT ?`)
      .all(...params, q.limit)
    return rows.map(usageEventOf)
  }

  async scan(q: UsageScan, after: ScanCursor | undefined, limit: number): Promise<ScannedEvent[]> {
    // One lower bound on at_ms, the tighter one: with two, SQLite may start the index range at the
    // window's start on every page, and a long replay turns quadratic.
    const where = ['org_id = @orgId', 'at_ms >= @lowMs', 'at_ms < @toMs']
    if (q.teamId !== undefined) where.push('team_id = @teamId')
    if (q.dataMode !== undefined) where.push('data_mode = @dataMode')
    if (after !== undefined) where.push('(at_ms > @afterMs OR id > @afterId)')
    const lowMs = after === undefined ? q.fromMs : Math.max(q.fromMs, after.atMs)
    const params = { orgId: q.orgId, lowMs, toMs: q.toMs, teamId: q.teamId, dataMode: q.dataMode, afterMs: after?.atMs, afterId: after?.id, limit }
    const rows = this.db
      .prepare<typeof params, Array<string | number | null>>(`SELECT ${SCAN_COLUMNS} FROM usage_events WHERE ${where.join(' AND ')} ORDER BY at_ms, id LIMIT @limit`)
      .raw()
      .all(params)
    return rows.map(scannedEventOfValues)
  }

  async requestOutcomes(orgId: string, requestIds: readonly string[]): Promise<Map<string, RequestOutcome>> {
    const ids = requestIds.slice(0, REQUEST_OUTCOMES_MAX)
    if (ids.length === 0) return new Map()
    const rows = this.db
      .prepare<unknown[], OutcomeRow>(
        `SELECT request_id, status, http_status, cost_micros, at_ms FROM usage_events
         WHERE org_id = ? AND request_id IN (${ids.map(() => '?').join(', ')}) ORDER BY at_ms, rowid`,
      )
      .all(orgId, ...ids)
    return outcomesOf(rows)
  }
}
