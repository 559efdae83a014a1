/**
 * Usage rollups, shared by the SQLite and PostgreSQL usage stores: the table, the SQL that keeps
 * it, and how a report is cut into parts served by rollups and parts scanned from events.
 *
 * Why: a usage report over a large store must not scan every event in its range. Each event is
 * summed into `usage_rollups` rows at two grains (UTC hour and UTC day): on PostgreSQL in the
 * transaction that inserts it, on SQLite by a fold about a second later (reports add the events
 * not folded yet, so they are exact either way). A row is keyed by org, dimension, grain, bucket start, data mode, environment,
 * team and the dimension's value, so any report filtered by team / environment / data mode and
 * grouped by at most one other dimension (plus team and environment) reads rollups only.
 *
 * Dimension `*` has no value: its rows sum per (team, environment, data mode) and serve totals
 * and the team and environment breakdowns. Every other dimension's rows partition the same events
 * again by one attribution field. An absent attribution is stored as `''` in the key (a NULL
 * would never match an upsert's conflict target); `usageRow` turns empty attribution into NULL,
 * so `''` there always means "none".
 */
import type { Micros } from '../../money/index.js'
import type { UsageGroupBy } from '../../usage/types.js'
import { GROUP_COLUMN, zeroTotals, type UsageGroup, type UsageQuery, type UsageReport, type UsageSeriesPoint } from '../../usage/usage-store.js'

export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000
/** The grains rollups are kept at: each divides the next, and both divide the API's hour and day buckets. */
export const ROLLUP_GRAINS_MS = [HOUR_MS, DAY_MS] as const

/** Rollup dimension → the usage_events column its value comes from. `*` has none. */
export const ROLLUP_DIMS = {
  '*': undefined,
  provider: 'provider',
  model: 'model_served',
  user: 'user_id',
  agent: 'agent_id',
  endpoint: 'endpoint_tag',
  prompt_version: 'prompt_version',
} as const
export type RollupDim = keyof typeof ROLLUP_DIMS

/**
 * Summed columns, each as the SQL that makes it from one event row (`r` is the row's prefix:
 * `e.` or `NEW.`). Errors are calls that failed upstream or in the gateway; refusals are not errors.
 */
const ROLLUP_SUMS = {
  requests: () => '1',
  error_requests: (r) => `CASE WHEN ${r}status IN ('upstream_error', 'error') THEN 1 ELSE 0 END`,
  cost_micros: (r) => `${r}cost_micros`,
  input_tokens: (r) => `${r}input_tokens`,
  output_tokens: (r) => `${r}output_tokens`,
  cache_read_tokens: (r) => `${r}cache_read_tokens`,
  cache_write_tokens: (r) => `${r}cache_write_tokens`,
  cache_write_1h_tokens: (r) => `${r}cache_write_1h_tokens`,
  reasoning_tokens: (r) => `${r}reasoning_tokens`,
  audio_input_tokens: (r) => `${r}audio_input_tokens`,
  audio_output_tokens: (r) => `${r}audio_output_tokens`,
} satisfies Record<string, (r: string) => string>
export type RollupSumColumn = keyof typeof ROLLUP_SUMS

/**
 * The same sums in JS, from one event row (`r(column)` reads a usage_events column): the SQLite
 * store sums the events of a transaction in JS (rows/rollup-accumulator.ts). The mapped type keeps
 * the two forms to the same columns; rollup-accumulator.test.ts checks they agree.
 */
export const ROLLUP_SUMS_JS: { readonly [C in RollupSumColumn]: (r: (column: string) => unknown) => number } = {
  requests: () => 1,
  error_requests: (r) => (r('status') === 'upstream_error' || r('status') === 'error' ? 1 : 0),
  cost_micros: (r) => Number(r('cost_micros')),
  input_tokens: (r) => Number(r('input_tokens')),
  output_tokens: (r) => Number(r('output_tokens')),
  cache_read_tokens: (r) => Number(r('cache_read_tokens')),
  cache_write_tokens: (r) => Number(r('cache_write_tokens')),
  cache_write_1h_tokens: (r) => Number(r('cache_write_1h_tokens')),
  reasoning_tokens: (r) => Number(r('reasoning_tokens')),
  audio_input_tokens: (r) => Number(r('audio_input_tokens')),
  audio_output_tokens: (r) => Number(r('audio_output_tokens')),
}

const SUM_COLUMNS = Object.keys(ROLLUP_SUMS) as RollupSumColumn[]
/** The summed columns, in the order of the table and of every upsert's values. */
export const ROLLUP_SUM_COLUMNS: readonly RollupSumColumn[] = SUM_COLUMNS
/**
 * The key, in primary-key order: a report reads one (org, dim, grain) over a bucket range, and
 * `value` right after the bucket lets SQL group a dimension's buckets in index order.
 */
const KEY_COLUMNS = ['org_id', 'dim', 'grain_ms', 'bucket_ms', 'value', 'team_id', 'environment', 'data_mode'] as const
type KeyColumn = (typeof KEY_COLUMNS)[number]
export const ROLLUP_KEY_COLUMNS: readonly KeyColumn[] = KEY_COLUMNS
/** A rollup row's columns in table order: the key, then the sums. */
const ROW_COLUMNS: readonly string[] = [...KEY_COLUMNS, ...SUM_COLUMNS]

/** The key's expressions in KEY_COLUMNS order. */
function keyValues(of: Record<KeyColumn, string>): string[] {
  return KEY_COLUMNS.map((c) => of[c])
}

/** The table; `extra` is the dialect's table option (SQLite: WITHOUT ROWID). */
export function rollupTableSql(extra = ''): string {
  return `
    CREATE TABLE usage_rollups (
      org_id TEXT NOT NULL,
      dim TEXT NOT NULL,
      grain_ms BIGINT NOT NULL,
      bucket_ms BIGINT NOT NULL,
      data_mode TEXT NOT NULL,
      environment TEXT NOT NULL,
      team_id TEXT NOT NULL,
      value TEXT NOT NULL,
      ${SUM_COLUMNS.map((c) => `${c} BIGINT NOT NULL`).join(',\n      ')},
      PRIMARY KEY (${KEY_COLUMNS.join(', ')})
    )${extra};`
}

/**
 * `INSERT … SELECT` summing the events of `source` into rollups, one row per (grain, dimension,
 * key), adding to rows already there. Used by the PostgreSQL statement trigger (source: the
 * statement's inserted rows) and by both rebuilds (source: usage_events). Rows are written in key
 * order, so concurrent writers lock shared rows in the same order.
 *
 * In two steps: the events are first summed per finest bucket and per every column a key reads
 * (`ev`), and only those sums are spread over the grains and dimensions (`spread`). Spreading
 * every event made 14 rows of it to sort and group; a batch of calls shares a few attributions,
 * so `ev` holds a few rows where the batch held hundreds. The finest grain divides every other, so
 * a coarser bucket of the finest bucket's start is the event's own. `spread` is grouped apart from
 * the ORDER BY: PostgreSQL cannot estimate how many rows `ev` holds, and with the ORDER BY on the
 * grouping it sorted every spread row where hashing them and sorting the groups costs less.
 */
export function rollupUpsertFromSql(source: string): string {
  const finest = ROLLUP_GRAINS_MS[0]
  if (!ROLLUP_GRAINS_MS.every((g) => g % finest === 0)) throw new Error('rollup grains must be multiples of the finest')
  const grains = ROLLUP_GRAINS_MS.map((g) => `SELECT CAST(${g} AS BIGINT) AS grain_ms`).join(' UNION ALL ')
  const dims = Object.keys(ROLLUP_DIMS)
    .map((d) => `SELECT '${d}' AS dim`)
    .join(' UNION ALL ')
  const dimColumns = Object.values(ROLLUP_DIMS).filter((column) => column !== undefined)
  const eventColumns = ['org_id', 'team_id', 'environment', 'data_mode', ...dimColumns]
  // BIGINT again: PostgreSQL sums BIGINT into NUMERIC, and summing NUMERICs in the second step cost
  // more than the first step saved when a batch shares no attribution.
  const eventSums = Object.entries(ROLLUP_SUMS).map(([column, sum]) => `CAST(SUM(${sum('')}) AS BIGINT) AS ${column}`)
  const value = `CASE d.dim ${Object.entries(ROLLUP_DIMS)
    .filter(([, column]) => column !== undefined)
    .map(([dim, column]) => `WHEN '${dim}' THEN e.${column}`)
    .join(' ')} END`
  const keys = keyValues({
    org_id: 'e.org_id',
    dim: 'd.dim',
    grain_ms: 'g.grain_ms',
    bucket_ms: '(e.bucket_ms / g.grain_ms) * g.grain_ms',
    value: `COALESCE(${value}, '')`,
    team_id: "COALESCE(e.team_id, '')",
    environment: 'e.environment',
    data_mode: 'e.data_mode',
  })
  const sums = SUM_COLUMNS.map((column) => `SUM(e.${column})`)
  const spread = [...keys, ...sums].map((expression, i) => `${expression} AS ${ROW_COLUMNS[i]}`)
  const positions = keys.map((_, i) => i + 1).join(', ')
  return `
    WITH ev AS MATERIALIZED (
      SELECT ${eventColumns.join(', ')}, (at_ms / ${finest}) * ${finest} AS bucket_ms, ${eventSums.join(', ')}
      FROM ${source}
      GROUP BY ${[...eventColumns, 'bucket_ms'].map((_, i) => i + 1).join(', ')}
    ),
    spread AS MATERIALIZED (
      SELECT ${spread.join(', ')}
      FROM ev e CROSS JOIN (${grains}) g CROSS JOIN (${dims}) d
      GROUP BY ${positions}
    )
    INSERT INTO usage_rollups (${ROW_COLUMNS.join(', ')})
    SELECT ${ROW_COLUMNS.join(', ')} FROM spread
    WHERE true
    ORDER BY ${positions}
    ${onConflictAdd()}`
}

/** The upsert's conflict clause: a key already there gets the new sums added. */
export function onConflictAdd(): string {
  return `ON CONFLICT (${KEY_COLUMNS.join(', ')}) DO UPDATE SET ${SUM_COLUMNS.map((c) => `${c} = usage_rollups.${c} + excluded.${c}`).join(', ')}`
}

/**
 * One rollup row added to the table: its key (KEY_COLUMNS order) then its sums (SUM_COLUMNS order)
 * as parameters. The SQLite store runs it once per distinct key of a transaction.
 */
export function rollupRowAddSql(): string {
  return `INSERT INTO usage_rollups (${ROW_COLUMNS.join(', ')}) VALUES (${ROW_COLUMNS.map(() => '?').join(', ')}) ${onConflictAdd()}`
}

/**
 * SQLite's per-row trigger body (migration usage-0004 only; usage-0005 dropped the trigger for
 * sums kept in JS per transaction): one multi-row upsert of the new event (`NEW`) into every
 * (grain, dimension) row it belongs to — 14 rows, one statement.
 */
export function rollupRowUpsertSql(): string {
  const sums = Object.values(ROLLUP_SUMS).map((sum) => sum('NEW.'))
  const rows: string[] = []
  for (const grain of ROLLUP_GRAINS_MS) {
    for (const [dim, column] of Object.entries(ROLLUP_DIMS)) {
      const keys = keyValues({
        org_id: 'NEW.org_id',
        dim: `'${dim}'`,
        grain_ms: String(grain),
        bucket_ms: `(CAST(NEW.at_ms AS INTEGER) / ${grain}) * ${grain}`,
        value: column === undefined ? "''" : `COALESCE(NEW.${column}, '')`,
        team_id: "COALESCE(NEW.team_id, '')",
        environment: 'NEW.environment',
        data_mode: 'NEW.data_mode',
      })
      rows.push(`(${[...keys, ...sums].join(', ')})`)
    }
  }
  return `INSERT INTO usage_rollups (${ROW_COLUMNS.join(', ')}) VALUES\n      ${rows.join(',\n      ')}\n      ${onConflictAdd()};`
}

// ---------------------------------------------------------------------------------------------
// Reading: which parts of a report come from where

/** A slice of a report's range and what serves it: rollups at a grain, or a scan of events. */
export interface ReportPart {
  readonly source: 'events' | 'rollups'
  readonly grainMs?: number
  readonly fromMs: number
  readonly toMs: number
  /**
   * SQLite only, with `events`: only events whose rowid is above this — the ones its fold has not
   * added to the rollups yet (SqliteUsageStore.foldRollups). Read by rowid range, not by index.
   */
  readonly afterRowid?: number
}

/** Where each group-by dimension is read in the rollups: which dim's rows, and which column. */
const ROLLUP_GROUP: Record<UsageGroupBy, { dim: RollupDim | undefined; column: string; nullable: boolean }> = {
  team: { dim: undefined, column: 'team_id', nullable: true },
  environment: { dim: undefined, column: 'environment', nullable: false },
  provider: { dim: 'provider', column: 'value', nullable: false },
  model: { dim: 'model', column: 'value', nullable: false },
  user: { dim: 'user', column: 'value', nullable: true },
  agent: { dim: 'agent', column: 'value', nullable: true },
  endpoint: { dim: 'endpoint', column: 'value', nullable: true },
  prompt_version: { dim: 'prompt_version', column: 'value', nullable: true },
}

/** The rollup dimension that serves `groupBy`, or undefined when two of them need their own (then events are scanned). */
export function rollupDimFor(groupBy: readonly UsageGroupBy[]): RollupDim | undefined {
  const dims = [...new Set(groupBy.map((g) => ROLLUP_GROUP[g].dim).filter((d) => d !== undefined))]
  if (dims.length > 1) return undefined
  return dims[0] ?? '*'
}

/** How a dialect writes a bound parameter and a bucket start (`column` floored to `bucketMs`). */
export interface SqlDialect {
  param(value: unknown): string
  bucketStart(column: string, bucketMs: number): string
}

/**
 * The SELECT for one part of a report: bucket start, group values, sums (`REPORT_SUMS`, or
 * `SPEND_SUMS` for a spend series), grouped. From rollups, a part whose grain is the report's
 * bucket groups by the stored columns, in index order; `''` (none) is read back as NULL where a
 * dimension may be absent.
 *
 * Rollups at a finer grain than the bucket (hours into days, days into /v1/usage/top's one
 * bucket per range) are summed twice: first per stored bucket, in index order, then per report
 * bucket over those few rows. Grouped by the bucket expression at once, PostgreSQL sorted every
 * rollup row (90 days by user: 28 000 rows, spilled to disk at the default work_mem) where the
 * first pass needs no sort at all.
 */
export function partSql(q: UsageQuery, part: ReportPart, d: SqlDialect, sums: readonly SummedColumn[] = REPORT_SUMS): string {
  // Written into the SQL as a literal (binding it would make SQLite divide as REAL).
  if (!Number.isSafeInteger(q.bucketMs) || q.bucketMs <= 0) throw new RangeError(`bucketMs must be a positive integer, got ${q.bucketMs}`)
  const fromRollups = part.source === 'rollups'
  const at = fromRollups ? 'bucket_ms' : 'at_ms'
  // The events not folded yet are the table's last few rows: SQLite's unary `+` keeps each filter
  // off the indexes, so they are read by rowid range rather than by (org, time) over the range.
  const unfolded = part.afterRowid !== undefined
  const c = (column: string) => (unfolded ? `+${column}` : column)
  const where = unfolded ? [`rowid > ${d.param(part.afterRowid)}`] : []
  where.push(`${c('org_id')} = ${d.param(q.orgId)}`, `${c(at)} >= ${d.param(part.fromMs)}`, `${c(at)} < ${d.param(part.toMs)}`)
  if (fromRollups) where.push(`dim = ${d.param(rollupDimFor(q.groupBy))}`, `grain_ms = ${d.param(part.grainMs)}`)
  if (q.teamId !== undefined) where.push(`${c('team_id')} = ${d.param(q.teamId)}`)
  if (q.environment !== undefined) where.push(`${c('environment')} = ${d.param(q.environment)}`)
  if (q.dataMode !== undefined) where.push(`${c('data_mode')} = ${d.param(q.dataMode)}`)
  const from = `FROM ${fromRollups ? 'usage_rollups' : 'usage_events'} WHERE ${where.join(' AND ')}`
  const columns = q.groupBy.map((g) => (fromRollups ? ROLLUP_GROUP[g].column : GROUP_COLUMN[g]))
  const selected = q.groupBy.map((g, i) => (fromRollups && ROLLUP_GROUP[g].nullable ? `NULLIF(${columns[i]}, '')` : columns[i]))
  // `requests` is a count of events and a sum of counts in rollups.
  const summed = sums.map((c) => (!fromRollups && c === 'requests' ? 'count(*)' : `sum(${c})`))
  if (fromRollups && part.grainMs === q.bucketMs) {
    return `SELECT ${['bucket_ms', ...selected, ...summed].join(', ')} ${from}
    GROUP BY ${['bucket_ms', ...columns].join(', ')}`
  }
  if (!fromRollups) {
    return `SELECT ${[d.bucketStart(at, q.bucketMs), ...selected, ...summed].join(', ')} ${from}
    GROUP BY ${['1', ...columns].join(', ')}`
  }
  const perStoredBucket = `SELECT ${['bucket_ms', ...columns, ...summed.map((sql, i) => `${sql} AS ${sums[i]}`)].join(', ')} ${from}
      GROUP BY ${['bucket_ms', ...columns].join(', ')}`
  return `SELECT ${[d.bucketStart('bucket_ms', q.bucketMs), ...selected, ...sums.map((c) => `sum(${c})`)].join(', ')}
    FROM (${perStoredBucket}) stored GROUP BY ${['1', ...columns].join(', ')}`
}

/**
 * Cuts [fromMs, toMs) into parts: whole days from day rollups (only for day buckets), whole hours
 * from hour rollups, and the minutes before the first and after the last whole hour scanned from
 * events — at most two hours of events, whatever the range. A report the rollups cannot serve
 * (minute buckets; two dimensions that each need their own rows) is one scan of events.
 */
export function planReport(q: Pick<UsageQuery, 'fromMs' | 'toMs' | 'bucketMs' | 'groupBy'>): ReportPart[] {
  const { fromMs, toMs, bucketMs } = q
  if (bucketMs % HOUR_MS !== 0 || rollupDimFor(q.groupBy) === undefined) return [{ source: 'events', fromMs, toMs }]
  const hourFrom = Math.ceil(fromMs / HOUR_MS) * HOUR_MS
  const hourTo = Math.floor(toMs / HOUR_MS) * HOUR_MS
  if (hourFrom >= hourTo) return [{ source: 'events', fromMs, toMs }]
  const parts: ReportPart[] = []
  const push = (part: ReportPart) => {
    if (part.fromMs < part.toMs) parts.push(part)
  }
  push({ source: 'events', fromMs, toMs: hourFrom })
  const dayFrom = Math.ceil(hourFrom / DAY_MS) * DAY_MS
  const dayTo = Math.floor(hourTo / DAY_MS) * DAY_MS
  if (bucketMs % DAY_MS === 0 && dayFrom < dayTo) {
    push({ source: 'rollups', grainMs: HOUR_MS, fromMs: hourFrom, toMs: dayFrom })
    push({ source: 'rollups', grainMs: DAY_MS, fromMs: dayFrom, toMs: dayTo })
    push({ source: 'rollups', grainMs: HOUR_MS, fromMs: dayTo, toMs: hourTo })
  } else {
    push({ source: 'rollups', grainMs: HOUR_MS, fromMs: hourFrom, toMs: hourTo })
  }
  push({ source: 'events', fromMs: hourTo, toMs })
  return parts
}

// ---------------------------------------------------------------------------------------------
// Merging the parts into one report

/**
 * One aggregated row from any part, as the driver's array (no object per row: a report can read
 * tens of thousands): the series bucket start, one value per group-by dimension, then the sums
 * in the order `REPORT_SUMS` lists them.
 */
export type PartRow = readonly unknown[]

/** The summed columns a report carries after `requests`, in the order `add` reads them. */
const TOTAL_COLUMNS = [
  'cost_micros',
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
  'cache_write_1h_tokens',
  'reasoning_tokens',
  'audio_input_tokens',
  'audio_output_tokens',
] as const

/** A column a part sums (`requests` counts events when the part scans them). */
export type SummedColumn = 'requests' | (typeof TOTAL_COLUMNS)[number]

/** The sums every report part selects, in the order `add` reads them. */
export const REPORT_SUMS: readonly SummedColumn[] = ['requests', ...TOTAL_COLUMNS]

/**
 * The one sum a spend series selects. Why not the report's ten: the spike window reads hourly
 * spend over the whole range (90 days: 65 000 rollup rows on the bench's store); one sum instead
 * of ten took that query from ~25 to ~9 ms on SQLite and ~36 to ~28 ms on PostgreSQL.
 */
export const SPEND_SUMS: readonly SummedColumn[] = ['cost_micros']

/** Spend per bucket start from parts selected with `SPEND_SUMS` and no group-by. */
export function mergeSpend(rows: Iterable<PartRow>): Map<number, Micros> {
  const spend = new Map<number, Micros>()
  for (const row of rows) {
    const bucketStartMs = Number(row[0])
    spend.set(bucketStartMs, ((spend.get(bucketStartMs) ?? 0) + Number(row[1] ?? 0)) as Micros)
  }
  return spend
}

type Key = Partial<Record<UsageGroupBy, string | null>>

/** A group or series point while rows are added to it; becomes the report's object itself (no copy). */
interface Sums {
  bucketStartMs: number
  key: Key
  requests: number
  costMicros: Micros
  inputTokens: number
  outputTokens: number
  cacheReadTokens: number
  cacheWriteTokens: number
  cacheWrite1hTokens: number
  reasoningTokens: number
  audioInputTokens: number
  audioOutputTokens: number
}

/** A map key for a row's group values: absent and `''` must differ, and no separator can occur in a value. */
function keyTextOf(row: PartRow, n: number): string {
  let text = ''
  for (let g = 1; g <= n; g++) {
    const v = row[g]
    text += v === null || v === undefined ? '\u0000' : `\u0001${v as string}\u0002`
  }
  return text
}

function keyOf(row: PartRow, groupBy: readonly UsageGroupBy[]): Key {
  const key: Key = {}
  for (let g = 0; g < groupBy.length; g++) key[groupBy[g]!] = (row[g + 1] as string | null | undefined) ?? null
  return key
}

function sums(bucketStartMs: number, key: Key): Sums {
  return { bucketStartMs, key, ...zeroTotals() }
}

/** Adds the sums that start at `at` in `row` (SQL NULL sums of an empty part count as 0). */
function add(into: Sums, row: PartRow, at: number): void {
  into.requests += Number(row[at] ?? 0)
  into.costMicros = (into.costMicros + Number(row[at + 1] ?? 0)) as Micros
  into.inputTokens += Number(row[at + 2] ?? 0)
  into.outputTokens += Number(row[at + 3] ?? 0)
  into.cacheReadTokens += Number(row[at + 4] ?? 0)
  into.cacheWriteTokens += Number(row[at + 5] ?? 0)
  into.cacheWrite1hTokens += Number(row[at + 6] ?? 0)
  into.reasoningTokens += Number(row[at + 7] ?? 0)
  into.audioInputTokens += Number(row[at + 8] ?? 0)
  into.audioOutputTokens += Number(row[at + 9] ?? 0)
}

/**
 * Sums the parts' rows into totals, groups (by key) and series (by bucket and key). Groups come
 * most expensive first and series oldest first; ties are broken by key, so the same events give
 * the same report however the range was cut. Lean on purpose: a report can merge tens of
 * thousands of rows, so each point is one object, and a key's object is shared by its points.
 */
export function mergeParts(groupBy: readonly UsageGroupBy[], rows: Iterable<PartRow>): UsageReport {
  const n = groupBy.length
  const totals = sums(0, {})
  const groups = new Map<string, Sums>()
  const series = new Map<string, Sums>()
  for (const row of rows) {
    const keyText = keyTextOf(row, n)
    const bucketStartMs = Number(row[0])
    add(totals, row, n + 1)
    let group = groups.get(keyText)
    if (!group) {
      group = sums(0, keyOf(row, groupBy))
      groups.set(keyText, group)
    }
    add(group, row, n + 1)
    const pointText = `${bucketStartMs}|${keyText}`
    let point = series.get(pointText)
    if (!point) {
      point = sums(bucketStartMs, group.key)
      series.set(pointText, point)
    }
    add(point, row, n + 1)
  }
  const byKey = (a: Sums, b: Sums) => compareKeys(groupBy, a.key, b.key)
  const { bucketStartMs: _, key: __, ...total } = totals
  return {
    totals: total,
    groups:
      n === 0 ? [] : [...groups.values()].sort((a, b) => b.costMicros - a.costMicros || byKey(a, b)).map(({ bucketStartMs: _, ...group }): UsageGroup => group),
    series: [...series.values()].sort((a, b) => a.bucketStartMs - b.bucketStartMs || b.costMicros - a.costMicros || byKey(a, b)) satisfies UsageSeriesPoint[],
  }
}

/** Absent (null) first, then by code point: the same order in both stores and in JS. */
function compareKeys(groupBy: readonly UsageGroupBy[], a: Key, b: Key): number {
  for (const g of groupBy) {
    const x = a[g] ?? null
    const y = b[g] ?? null
    if (x === y) continue
    if (x === null) return -1
    if (y === null) return 1
    return x < y ? -1 : 1
  }
  return 0
}
