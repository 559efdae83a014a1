/**
 * UsageStore on PostgreSQL. The recorder already batches; a batch is one INSERT of a JSON array of
 * rows (INSERT_ROWS), whose rows a statement trigger sums into the rollups in the same
 * transaction. Reports read rollups plus at most two hours of events.
 */
import type pg from 'pg'
import { jsonbArrayParam } from './db.js'
import type { Micros } from '../../money/index.js'
import {
  REQUEST_OUTCOMES_MAX,
  type RequestOutcome,
  type ScanCursor,
  type UsageEventQuery,
  type UsageQuery,
  type UsageReport,
  type UsageScan,
  type UsageStore,
} from '../../usage/usage-store.js'
import type { ScannedEvent, UsageEvent } from '../../usage/types.js'
import { SPEND_SUMS, mergeParts, mergeSpend, partSql, planReport, type PartRow, type ReportPart, type SummedColumn } from '../rows/usage-rollups.js'
import {
  SCAN_COLUMNS,
  USAGE_COLUMNS,
  USAGE_COLUMN_KINDS,
  eventListWhere,
  outcomesOf,
  scannedEventOf,
  usageRowJson,
  type OutcomeRow,
  type ScanRow,
} from '../sqlite/usage-store.js'
import { usageEventOf, type UsageEventRow } from '../rows/usage.js'

/**
 * Rows arrive as one JSON parameter, an array of `usageRowJson` arrays, and PostgreSQL reads the
 * columns out of it: one parameter however many rows (no statement per batch size, no 39 values
 * per row to serialise in the gateway), and drained journal entries go in as they were written.
 * Its statement trigger sums the rows into the rollups.
 */
/** Column `i` of a row `r` as SQL: a `count` a row journaled before its column existed lacks is 0. */
function columnOfRow(kind: 'text' | 'integer' | 'count', i: number): string {
  if (kind === 'text') return `r->>${i}`
  return kind === 'count' ? `coalesce((r->>${i})::bigint, 0)` : `(r->>${i})::bigint`
}

const INSERT_ROWS = {
  name: 'tollgate_usage_insert_rows',
  text: `INSERT INTO usage_events (${USAGE_COLUMNS.join(', ')})
    SELECT ${USAGE_COLUMNS.map((c, i) => columnOfRow(USAGE_COLUMN_KINDS[c], i)).join(', ')}
    FROM jsonb_array_elements($1::jsonb) AS r
    ON CONFLICT DO NOTHING`,
}

export class PostgresUsageStore implements UsageStore {
  constructor(private readonly pool: pg.Pool) {}

  async insertBatch(events: readonly UsageEvent[]): Promise<void> {
    if (events.length > 0) await this.insertRows(events.map(usageRowJson))
  }

  /** Rows as `usageRowJson` wrote them (insert-or-ignore); how many were new. */
  async insertRows(rows: readonly string[]): Promise<number> {
    const result = await this.pool.query({ ...INSERT_ROWS, values: [`[${rows.join(',')}]`] })
    return result.rowCount ?? 0
  }

  /** `insertRows` for rows as UTF-8 bytes (the journal drain's, read from Redis as bytes). */
  async insertRowBytes(rows: readonly Buffer[]): Promise<number> {
    const result = await this.pool.query({ ...INSERT_ROWS, values: [jsonbArrayParam(rows)] })
    return result.rowCount ?? 0
  }

  async insertIngested(event: UsageEvent): Promise<boolean> {
    return (await this.insertRows([usageRowJson(event)])) === 1
  }

  /** Whole hours and days from rollups, at most two hours at the edges from events (rows/usage-rollups.ts). */
  async query(q: UsageQuery): Promise<UsageReport> {
    const parts = await Promise.all(planReport(q).map((part) => this.partRows(q, part)))
    return mergeParts(q.groupBy, parts.flat())
  }

  /** The report computed from events alone: what the rollup-served report must equal (tests, benchmark). */
  async queryEvents(q: UsageQuery): Promise<UsageReport> {
    return mergeParts(q.groupBy, await this.partRows(q, { source: 'events', fromMs: q.fromMs, toMs: q.toMs }))
  }

  async spendSeries(q: Omit<UsageQuery, 'groupBy'>): Promise<Map<number, Micros>> {
    const report = { ...q, groupBy: [] }
    const parts = await Promise.all(planReport(report).map((part) => this.partRows(report, part, SPEND_SUMS)))
    return mergeSpend(parts.flat())
  }

  private async partRows(q: UsageQuery, part: ReportPart, sums?: readonly SummedColumn[]): Promise<PartRow[]> {
    const values: unknown[] = []
    const text = partSql(
      q,
      part,
      {
        param: (value) => `$${values.push(value)}`,
        bucketStart: (column, bucketMs) => `(${column} / ${bucketMs}::bigint) * ${bucketMs}::bigint`,
      },
      sums,
    )
    return (await this.pool.query<unknown[]>({ text, values, rowMode: 'array' })).rows
  }

  async listEvents(q: UsageEventQuery): Promise<UsageEvent[]> {
    const params: unknown[] = []
    const where = eventListWhere(q, (value) => `$${params.push(value)}`)
    const { rows } = await this.pool.query<UsageEventRow>(
      `SELECT * FROM usage_events WHERE ${where} ORDER BY at_ms DESC, id DESC LIMIT $${params.push(q.limit)}`,
      params,
    )
    return rows.map(usageEventOf)
  }

  async scan(q: UsageScan, after: ScanCursor | undefined, limit: number): Promise<ScannedEvent[]> {
    // One lower bound on at_ms, the tighter one, so each page starts its index range where it reads.
    const lowMs = after === undefined ? q.fromMs : Math.max(q.fromMs, after.atMs)
    const params: unknown[] = [q.orgId, lowMs, q.toMs]
    const where = ['org_id = $1', 'at_ms >= $2', 'at_ms < $3']
    if (q.teamId !== undefined) where.push(`team_id = $${params.push(q.teamId)}`)
    if (q.dataMode !== undefined) where.push(`data_mode = $${params.push(q.dataMode)}`)
    if (after !== undefined) where.push(`(at_ms > $2 OR id > $${params.push(after.id)})`)
    const { rows } = await this.pool.query<ScanRow>(
      `SELECT ${SCAN_COLUMNS} FROM usage_events WHERE ${where.join(' AND ')} ORDER BY at_ms, id LIMIT $${params.push(limit)}`,
      params,
    )
    return rows.map(scannedEventOf)
  }

  async requestOutcomes(orgId: string, requestIds: readonly string[], sinceMs: number): Promise<Map<string, RequestOutcome>> {
    const ids = requestIds.slice(0, REQUEST_OUTCOMES_MAX)
    if (ids.length === 0) return new Map()
    const { rows } = await this.pool.query<OutcomeRow>(
      `SELECT request_id, status, http_status, cost_micros, at_ms FROM usage_events
       WHERE org_id = $1 AND at_ms >= $3 AND source = 'gateway' AND request_id = ANY($2::text[]) ORDER BY at_ms, id`,
      [orgId, ids, sinceMs],
    )
    return outcomesOf(rows)
  }
}
