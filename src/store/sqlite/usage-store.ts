/**
 * UsageStore on SQLite: batched inserts in one transaction; the events are folded into the
 * rollups about a second later, in the background (`foldRollups`); reports read rollups, the
 * events not folded yet, and at most two hours of events at the edges.
 */
import { micros, type Micros } from '../../money/index.js'
import { serviceTierOfPriceSource, webSearchKindFrom } from '../../pricing/index.js'
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
import { EVENT_FILTER_COLUMN, usageEventOf, type UsageEventRow } from '../rows/usage.js'
import type { ScannedEvent, UsageEvent } from '../../usage/types.js'
import type { SqliteDatabase } from './db.js'
import type Database from 'better-sqlite3'
import {
  SPEND_SUMS,
  mergeParts,
  mergeSpend,
  partSql,
  planReport,
  rollupRowAddSql,
  type PartRow,
  type ReportPart,
  type SummedColumn,
} from '../rows/usage-rollups.js'
import { ROLLUP_EVENT_COLUMNS, RollupAccumulator } from '../rows/rollup-accumulator.js'

export { usageMigrations } from './usage-schema.js'

/**
 * The usage_events columns in `usageRow` order, each with what it holds: a PostgreSQL insert
 * reading a row out of JSON casts the integers (usage-0001 and later migrations declare them). A
 * `count` is an integer that a row journaled by an older gateway (in Redis, drained after an
 * upgrade) does not carry: it is read as 0.
 */
const COLUMN_KINDS = {
  id: 'text',
  request_id: 'text',
  at_ms: 'integer',
  org_id: 'text',
  team_id: 'text',
  user_id: 'text',
  agent_id: 'text',
  key_name: 'text',
  endpoint_tag: 'text',
  prompt_version: 'text',
  environment: 'text',
  provider: 'text',
  target_id: 'text',
  model_requested: 'text',
  model_served: 'text',
  endpoint: 'text',
  input_tokens: 'integer',
  cache_read_tokens: 'integer',
  cache_write_tokens: 'integer',
  output_tokens: 'integer',
  reasoning_tokens: 'integer',
  audio_input_tokens: 'integer',
  audio_output_tokens: 'integer',
  usage_source: 'text',
  cost_micros: 'integer',
  price_source: 'text',
  latency_ms: 'integer',
  status: 'text',
  http_status: 'integer',
  is_stream: 'integer',
  decision: 'text',
  reservation_id: 'text',
  wallet_id: 'text',
  data_mode: 'text',
  source: 'text',
  external_request_id: 'text',
  cache_write_1h_tokens: 'integer',
  usage_note: 'text',
  cost_breakdown_json: 'text',
  reported_cost_micros: 'integer',
  user_from_key: 'integer',
  web_searches: 'count',
  file_searches: 'count',
  web_search_kind: 'text',
} as const satisfies Record<string, 'text' | 'integer' | 'count'>

const COLUMNS = Object.keys(COLUMN_KINDS) as ReadonlyArray<keyof typeof COLUMN_KINDS>

/** An absent or empty attribution is stored as NULL: reports show both as "none" (the rollups key it as ''). */
function orNull(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value
}

export function usageRow(e: UsageEvent): unknown[] {
  const a = e.attribution
  const u = e.usage
  return [
    e.id,
    e.requestId,
    e.atMs,
    a.orgId,
    orNull(a.teamId),
    orNull(a.userId),
    orNull(a.agentId),
    orNull(a.keyName),
    orNull(a.endpointTag),
    orNull(a.promptVersion),
    a.environment,
    e.provider,
    e.targetId ?? null,
    e.modelRequested,
    e.modelServed,
    e.endpoint,
    u.inputTokens,
    u.cacheReadTokens,
    u.cacheWriteTokens,
    u.outputTokens,
    u.reasoningTokens,
    u.audioInputTokens,
    u.audioOutputTokens,
    e.usageSource,
    e.costMicros,
    e.priceSource,
    e.latencyMs,
    e.status,
    e.httpStatus,
    e.isStream ? 1 : 0,
    e.decision,
    e.reservationId ?? null,
    e.walletId ?? null,
    e.dataMode,
    e.source,
    e.externalRequestId ?? null,
    u.cacheWrite1hTokens,
    e.usageNote ?? null,
    e.costBreakdown === undefined ? null : JSON.stringify(e.costBreakdown),
    e.reportedCostMicros ?? null,
    a.userFromKey ? 1 : 0,
    u.webSearches ?? 0,
    u.fileSearches ?? 0,
    e.webSearchKind ?? null,
  ]
}

export const USAGE_COLUMNS = COLUMNS
export const USAGE_COLUMN_KINDS = COLUMN_KINDS

/**
 * What JSON.stringify writes as an escape that PostgreSQL refuses to turn into text: a lone UTF-16
 * surrogate, and NUL (which no PostgreSQL text can hold).
 */
const UNSTORABLE_ESCAPE = /\\u(?:d[89a-f][0-9a-f]{2}|0000)/i
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what this looks for.
const UNSTORABLE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\u0000/g

/**
 * `usageRow` as a JSON array: how an event travels through the Redis journal to PostgreSQL, which
 * reads the columns out of it (no parse in the gateway). A lone surrogate or a NUL becomes U+FFFD:
 * an event PostgreSQL refused would hold up the journal behind it.
 */
export function usageRowJson(e: UsageEvent): string {
  const row = usageRow(e)
  const json = JSON.stringify(row)
  if (!UNSTORABLE_ESCAPE.test(json)) return json
  return JSON.stringify(row.map((v) => (typeof v === 'string' ? v.replace(UNSTORABLE, '\ufffd') : v)))
}

/**
 * The columns `scan` reads (replay needs no breakdown, note or latency). The price source is read
 * for the service tier the call was served at, which replay prices a degraded call at; the
 * searches, for the fees replay adds to a call it reprices.
 */
export const SCAN_COLUMNS = `id, request_id, at_ms, org_id, team_id, user_id, agent_id, key_name, endpoint_tag, prompt_version,
  environment, provider, model_requested, model_served, endpoint, input_tokens, cache_read_tokens, cache_write_tokens,
  cache_write_1h_tokens, output_tokens, reasoning_tokens, audio_input_tokens, audio_output_tokens, cost_micros, status,
  decision, source, price_source, web_searches, file_searches, web_search_kind, user_from_key`

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
  const serviceTier = serviceTierOfPriceSource(String(v[27] ?? ''))
  const webSearches = int(28)
  const fileSearches = int(29)
  const webSearchKind = webSearchKindFrom(v[30])
  // NULL for events stored before the column: replay infers it then.
  const userFromKey = v[31] === null || v[31] === undefined ? undefined : Number(v[31]) === 1
  return {
    id: String(v[0]),
    requestId: String(v[1]),
    atMs: int(2),
    attribution: {
      orgId: String(v[3]),
      teamId: text(4),
      userId: text(5),
      userFromKey: userFromKey ?? false,
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
      ...(serviceTier !== undefined && { serviceTier }),
      ...(webSearches > 0 && { webSearches }),
      ...(fileSearches > 0 && { fileSearches }),
    },
    ...(webSearchKind !== undefined && { webSearchKind }),
    costMicros: micros(int(23)),
    status: String(v[24]) as ScannedEvent['status'],
    decision: String(v[25]) as ScannedEvent['decision'],
    source: String(v[26]) as ScannedEvent['source'],
    ...(userFromKey !== undefined && { userFromKeyStored: true }),
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
    outcomes.set(row.request_id, {
      status: row.status,
      httpStatus: Number(row.http_status),
      costMicros: micros(Number(row.cost_micros)),
      atMs: Number(row.at_ms),
    })
  }
  return outcomes
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

/** How long after an insert (or after the store opens) its events are folded into the rollups. */
const FOLD_DELAY_MS = 1_000
/** Events folded per transaction: the write lock and the event loop are held for one chunk at a time. */
const FOLD_CHUNK_EVENTS = 2_000

export interface SqliteUsageStoreOptions {
  /** Events per fold transaction (tests make it small, to fold part of what is waiting). */
  readonly foldChunkEvents?: number
  /** How long after an insert (and after opening) the fold runs. */
  readonly foldDelayMs?: number
}

/**
 * Why the rollups are folded after the commit rather than in it: an event adds to 14 rollup rows
 * (2 grains × 7 dimensions), and on a store with history each lies on its own page, every one of
 * which a commit writes to the WAL. On a store of 200,000 events over 30 days
 * (bench/rollup-fold.ts), a one-event transaction cost about 4× what it costs with them folded later. Folded once a second,
 * those pages are written once for all the second's events, and a call's commit writes only the
 * event's own pages.
 *
 * Exact at every moment: the fold adds the events after `usage_rollups_folded.through_rowid` and
 * moves that mark past them in one `BEGIN IMMEDIATE` transaction (any process may fold; one at a
 * time), and a report reads the mark, the rollups and the events after the mark in one read
 * transaction. Event rowids only grow: events are never deleted, and a rolled-back insert was
 * never visible. A process killed before its fold leaves events after the mark, which the next
 * fold of any process adds.
 */
export class SqliteUsageStore implements UsageStore {
  private readonly insert
  private readonly insertMany
  private readonly insertOne
  private readonly addRollup
  private readonly foldedThrough
  private readonly lastRowid
  private readonly unfoldedEvents
  private readonly markFolded
  private readonly foldChunk
  /** Reads in one transaction: the fold's mark, the rollups and the events after it agree. */
  private readonly inReadTransaction
  private readonly foldChunkEvents: number
  private readonly foldDelayMs: number
  private foldTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor(
    private readonly db: SqliteDatabase,
    options: SqliteUsageStoreOptions = {},
  ) {
    this.foldChunkEvents = options.foldChunkEvents ?? FOLD_CHUNK_EVENTS
    this.foldDelayMs = options.foldDelayMs ?? FOLD_DELAY_MS
    this.insert = db.prepare(`INSERT OR IGNORE INTO usage_events (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`)
    this.addRollup = db.prepare(rollupRowAddSql())
    this.foldedThrough = db.prepare<[], number>('SELECT through_rowid FROM usage_rollups_folded WHERE id = 1').pluck()
    this.lastRowid = db.prepare<[], number>('SELECT ifnull(max(rowid), 0) FROM usage_events').pluck()
    this.unfoldedEvents = db
      .prepare<[number, number], unknown[]>(`SELECT rowid, ${ROLLUP_EVENT_COLUMNS.join(', ')} FROM usage_events WHERE rowid > ? ORDER BY rowid LIMIT ?`)
      .raw()
    this.markFolded = db.prepare<[number]>('UPDATE usage_rollups_folded SET through_rowid = ? WHERE id = 1')
    this.foldChunk = db.transaction(() => this.foldChunkInTx())
    this.inReadTransaction = db.transaction((read: () => PartRow[]) => read())
    this.insertMany = this.transaction((events: readonly UsageEvent[]) => {
      for (const e of events) this.insertSync(e)
    })
    this.insertOne = this.transaction((event: UsageEvent) => this.insertSync(event))
    // A process killed before its fold left events behind it: fold them even if none come after.
    this.scheduleFold(this.foldDelayMs)
  }

  async insertBatch(events: readonly UsageEvent[]): Promise<void> {
    this.insertMany.immediate(events)
  }

  async insertIngested(event: UsageEvent): Promise<boolean> {
    return this.insertOne.immediate(event)
  }

  /** `db.transaction(body)`: the ledger's commits insert their events through it, with the money moves. */
  transaction<A extends unknown[], R>(body: (...args: A) => R): Database.Transaction<(...args: A) => R> {
    return this.db.transaction(body)
  }

  /**
   * Inserts one event in the open transaction (the ledger's commit, a batch); false when its team
   * (in its org) already has an event with its external id. Its rollups follow with the next fold.
   */
  insertSync(event: UsageEvent): boolean {
    if (this.insert.run(usageRow(event)).changes !== 1) return false
    this.scheduleFold(this.foldDelayMs)
    return true
  }

  /**
   * Adds the events not folded yet to the rollups, oldest first, a chunk per transaction, and
   * returns how many it added: all of them, or those of the first `chunks` chunks. Runs by itself
   * about a second after inserts; call it to have the rollups complete now (tests, a clean
   * shutdown).
   */
  foldRollups(chunks = Number.POSITIVE_INFINITY): number {
    let folded = 0
    for (let i = 0; i < chunks; i++) {
      const chunk = this.foldChunk.immediate()
      folded += chunk
      if (chunk < this.foldChunkEvents) break
    }
    return folded
  }

  /**
   * Stops folding, after folding what is left if it can: a fold that fails here (the lock held by
   * another process past busy_timeout) leaves the events to the next fold of any process.
   */
  close(): void {
    this.closed = true
    clearTimeout(this.foldTimer)
    this.foldTimer = undefined
    try {
      if (this.db.open) this.foldRollups()
    } catch {
      // Reports stay exact: they read the events after the mark.
    }
  }

  private scheduleFold(delayMs: number): void {
    if (this.foldTimer !== undefined || this.closed) return
    this.foldTimer = setTimeout(() => this.foldInBackground(), delayMs)
    this.foldTimer.unref()
  }

  /**
   * One chunk, then the next on a later turn of the event loop, so requests run between chunks. A
   * fold that fails (the write lock busy past busy_timeout, a full disk) is tried again later:
   * until then reports read those events from the events table, exactly as before.
   */
  private foldInBackground(): void {
    this.foldTimer = undefined
    if (this.closed || !this.db.open) return
    let chunk: number
    try {
      chunk = this.foldChunk.immediate()
    } catch {
      this.scheduleFold(this.foldDelayMs)
      return
    }
    if (chunk === this.foldChunkEvents) this.scheduleFold(0)
  }

  private foldChunkInTx(): number {
    const rows = this.unfoldedEvents.all(this.foldedThrough.get()!, this.foldChunkEvents)
    if (rows.length === 0) return 0
    const rollups = new RollupAccumulator(['rowid', ...ROLLUP_EVENT_COLUMNS])
    for (const row of rows) rollups.add(row)
    for (const row of rollups.drain()) this.addRollup.run(row)
    this.markFolded.run(rows[rows.length - 1]![0] as number)
    return rows.length
  }

  /**
   * The rows of every part of `q`'s plan, read in one transaction: a part served by rollups is
   * joined by the same slice of the events not folded yet.
   */
  private plannedRows(q: UsageQuery, sums?: readonly SummedColumn[]): PartRow[] {
    return this.inReadTransaction(() => {
      const parts = planReport(q)
      const through = this.foldedThrough.get()!
      const unfolded = parts.some((part) => part.source === 'rollups') && this.lastRowid.get()! > through
      return parts.flatMap((part) => {
        const rows = this.partRows(q, part, sums)
        if (part.source !== 'rollups' || !unfolded) return rows
        return rows.concat(this.partRows(q, { source: 'events', fromMs: part.fromMs, toMs: part.toMs, afterRowid: through }, sums))
      })
    })
  }

  /** Whole hours and days from rollups, at most two hours at the edges from events (rows/usage-rollups.ts). */
  async query(q: UsageQuery): Promise<UsageReport> {
    return mergeParts(q.groupBy, this.plannedRows(q))
  }

  /** The report computed from events alone: what the rollup-served report must equal (tests, benchmark). */
  async queryEvents(q: UsageQuery): Promise<UsageReport> {
    return mergeParts(q.groupBy, this.partRows(q, { source: 'events', fromMs: q.fromMs, toMs: q.toMs }))
  }

  async spendSeries(q: Omit<UsageQuery, 'groupBy'>): Promise<Map<number, Micros>> {
    return mergeSpend(this.plannedRows({ ...q, groupBy: [] }, SPEND_SUMS))
  }

  private partRows(q: UsageQuery, part: ReportPart, sums?: readonly SummedColumn[]): PartRow[] {
    const params: unknown[] = []
    const sql = partSql(
      q,
      part,
      {
        param: (value) => {
          params.push(value)
          return '?'
        },
        // better-sqlite3 binds JS numbers as REAL: cast, or the bucket is fractional.
        bucketStart: (column, bucketMs) => `CAST(CAST(${column} / ${bucketMs} AS INTEGER) * ${bucketMs} AS INTEGER)`,
      },
      sums,
    )
    return this.db
      .prepare<unknown[], PartRow>(sql)
      .raw(true)
      .all(...params)
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
      .prepare<typeof params, Array<string | number | null>>(
        `SELECT ${SCAN_COLUMNS} FROM usage_events WHERE ${where.join(' AND ')} ORDER BY at_ms, id LIMIT @limit`,
      )
      .raw()
      .all(params)
    return rows.map(scannedEventOfValues)
  }

  async requestOutcomes(orgId: string, requestIds: readonly string[], sinceMs: number): Promise<Map<string, RequestOutcome>> {
    const ids = requestIds.slice(0, REQUEST_OUTCOMES_MAX)
    if (ids.length === 0) return new Map()
    const rows = this.db
      .prepare<unknown[], OutcomeRow>(
        `SELECT request_id, status, http_status, cost_micros, at_ms FROM usage_events
         WHERE org_id = ? AND at_ms >= ? AND source = 'gateway' AND request_id IN (${ids.map(() => '?').join(', ')}) ORDER BY at_ms, rowid`,
      )
      .all(orgId, sinceMs, ...ids)
    return outcomesOf(rows)
  }
}
