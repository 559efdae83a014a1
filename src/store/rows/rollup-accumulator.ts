/**
 * Usage rollups summed in JS (the SQLite store's fold; PostgreSQL keeps its statement trigger).
 * The fold hands over the event rows it has not folded yet; it then asks for the rollup rows —
 * one per distinct key, the sums of every event handed over — and adds each to the table with one
 * upsert. A per-row trigger did 14 upserts per event (2 grains × 7 dimensions); a fold of 1,000
 * similar events does a few dozen.
 *
 * Exact by construction: the rows are summed from the stored event rows, with the JS form of the
 * SQL sums (ROLLUP_SUMS_JS), into the same keys, and the fold writes them in the transaction that
 * moves its mark past those events — a rollback (or SIGKILL before COMMIT) loses both, a commit
 * keeps both.
 *
 * Driven by the exports of usage-rollups.ts: a new grain, dimension or summed column needs no
 * change here.
 */
import { ROLLUP_DIMS, ROLLUP_GRAINS_MS, ROLLUP_KEY_COLUMNS, ROLLUP_SUM_COLUMNS, ROLLUP_SUMS_JS } from './usage-rollups.js'

/** One rollup row to add: ROLLUP_KEY_COLUMNS values, then ROLLUP_SUM_COLUMNS values. */
export type RollupRow = unknown[]

/** The events of one (buckets, org, team, environment, data mode, dimension values): summed before they are fanned out to keys. */
interface Cell {
  readonly row: readonly unknown[]
  /** The key's org, team, environment and data mode, as `keyText` writes them: shared by all its rollup keys. */
  readonly scope: string
  readonly sums: number[]
}

const DIMS = Object.entries(ROLLUP_DIMS) as Array<[string, string | undefined]>
/** Dimension columns (each once: two dimensions may read the same column). */
const DIM_COLUMNS = [...new Set(DIMS.map(([, column]) => column).filter((c): c is string => c !== undefined))]

/**
 * The usage_events columns the sums and keys read: the key fields, the dimension columns, and the
 * summed columns (`status` for error_requests; `requests` counts rows and reads none).
 */
export const ROLLUP_EVENT_COLUMNS: readonly string[] = [
  'at_ms',
  'org_id',
  'team_id',
  'environment',
  'data_mode',
  ...DIM_COLUMNS,
  'status',
  ...ROLLUP_SUM_COLUMNS.filter((c) => c !== 'requests' && c !== 'error_requests'),
]

export class RollupAccumulator {
  /** Event rows added since the last `drain`. */
  private rows: Array<readonly unknown[]> = []
  private readonly index: Map<string, number>
  private readonly at: number
  private readonly org: number
  private readonly team: number
  private readonly environment: number
  private readonly dataMode: number
  private readonly dims: number[]
  /** Per ROLLUP_DIMS entry, the row index of its column (undefined for `*`). */
  private readonly dimColumns: Array<number | undefined>
  /** The row the sums read (`ROLLUP_SUMS_JS` take a column reader; one reader, no closure per row). */
  private current: readonly unknown[] = []
  private readonly read = (column: string): unknown => this.current[this.index.get(column)!]

  /** `columns`: the usage_events columns in the order of the rows `add` is given. */
  constructor(columns: readonly string[]) {
    this.index = new Map(columns.map((c, i) => [c, i]))
    const at = (column: string) => {
      const i = this.index.get(column)
      if (i === undefined) throw new Error(`rollups: the event rows have no column ${column}`)
      return i
    }
    this.at = at('at_ms')
    this.org = at('org_id')
    this.team = at('team_id')
    this.environment = at('environment')
    this.dataMode = at('data_mode')
    this.dims = DIM_COLUMNS.map(at)
    this.dimColumns = DIMS.map(([, column]) => (column === undefined ? undefined : at(column)))
  }

  /** A stored event row, with (at least) ROLLUP_EVENT_COLUMNS in the order given to the constructor. */
  add(row: readonly unknown[]): void {
    this.rows.push(row)
  }

  /**
   * The rollup rows of every event added since the last drain, one per distinct key, and starts
   * over. Two steps: events with the same key fields are summed into one cell (a batch is mostly
   * alike), then each cell is fanned out to its (grain × dimension) keys, where cells that share a
   * key (e.g. dimension `*`) are summed again.
   */
  drain(): RollupRow[] {
    const rows = this.rows
    this.rows = []
    if (rows.length === 0) return []
    const cells = new Map<string, Cell>()
    for (const row of rows) {
      const scope = part(row[this.org]) + part(row[this.team]) + part(row[this.environment]) + part(row[this.dataMode])
      const at = Math.trunc(Number(row[this.at]))
      let key = scope
      for (const grain of ROLLUP_GRAINS_MS) key += `${at - (at % grain)}|`
      for (const i of this.dims) key += part(row[i])
      let cell = cells.get(key)
      if (cell === undefined) {
        cell = { row, scope, sums: new Array<number>(ROLLUP_SUM_COLUMNS.length).fill(0) }
        cells.set(key, cell)
      }
      this.current = row
      for (let s = 0; s < ROLLUP_SUM_COLUMNS.length; s++) cell.sums[s]! += ROLLUP_SUMS_JS[ROLLUP_SUM_COLUMNS[s]!](this.read)
    }
    this.current = []
    // Fanned out per (grain, bucket, scope), then per dimension by the value itself: the inner
    // lookups use the event's own strings, whose hashes V8 has already computed.
    const out = new Map<string, Array<Map<unknown, RollupRow>>>()
    const result: RollupRow[] = []
    for (const { row, scope, sums } of cells.values()) {
      const at = Math.trunc(Number(row[this.at]))
      for (const grain of ROLLUP_GRAINS_MS) {
        // SQL's integer division truncates toward zero: `at - at % grain` is the same bucket.
        const bucket = at - (at % grain)
        const scoped = `${grain}|${bucket}|${scope}`
        let byDim = out.get(scoped)
        if (byDim === undefined) {
          byDim = DIMS.map(() => new Map<unknown, RollupRow>())
          out.set(scoped, byDim)
        }
        for (let d = 0; d < DIMS.length; d++) {
          const column = this.dimColumns[d]
          // As SQL's COALESCE(value, ''): absent is ''.
          const value = column === undefined ? '' : (row[column] ?? '')
          const existing = byDim[d]!.get(value)
          if (existing === undefined) {
            const fields: Record<string, unknown> = {
              org_id: row[this.org],
              dim: DIMS[d]![0],
              grain_ms: grain,
              bucket_ms: bucket,
              value,
              team_id: row[this.team] ?? '',
              environment: row[this.environment],
              data_mode: row[this.dataMode],
            }
            const added = [...ROLLUP_KEY_COLUMNS.map((c) => fields[c]), ...sums]
            byDim[d]!.set(value, added)
            result.push(added)
          } else {
            for (let s = 0; s < sums.length; s++) (existing[ROLLUP_KEY_COLUMNS.length + s] as number) += sums[s]!
          }
        }
      }
    }
    for (const row of result) {
      for (let s = ROLLUP_KEY_COLUMNS.length; s < row.length; s++) {
        // Doubles are exact up to 2^53; past that a sum would be silently wrong, so refuse (the transaction rolls back).
        if (!Number.isSafeInteger(row[s])) throw new RangeError(`rollups: sum ${ROLLUP_SUM_COLUMNS[s - ROLLUP_KEY_COLUMNS.length]} out of range: ${row[s]}`)
      }
    }
    return result
  }
}

/** Length-prefixed, so no value (any text at all) can make two keys collide; NULL and '' are one key, as in SQL's COALESCE. */
function part(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value)
  return `${text.length}:${text}`
}
