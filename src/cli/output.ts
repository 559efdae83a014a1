/**
 * What a command shows: for people, aligned tables and short sentences on stdout; for scripts
 * (`--json`), the server's JSON as-is on stdout and nothing else there. Progress goes to stderr in
 * both modes: a bar when stderr is a terminal, plain lines otherwise (a log file or CI).
 *
 * cli-table3 measures the display width of names in any script (CJK, emoji), which padEnd cannot;
 * cli-progress redraws one line in place with ETA, and is left out entirely when not on a TTY.
 */
import Table from 'cli-table3'
import { SingleBar } from 'cli-progress'

export interface Column<Row> {
  readonly header: string
  readonly value: (row: Row) => string | number | null | undefined
  readonly align?: 'left' | 'right'
}

export interface Output {
  readonly json: boolean
  /** `--json`: `value` as JSON; otherwise the lines `human()` returns. */
  result(value: unknown, human: () => string): void
  /** A line for people (table mode only): what happened, what to do next. */
  say(line: string): void
}

export function createOutput(json: boolean, stdout: NodeJS.WritableStream = process.stdout): Output {
  return {
    json,
    result(value, human) {
      stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : ensureNewline(human()))
    },
    say(line) {
      if (!json) stdout.write(ensureNewline(line))
    },
  }
}

/** Rows as aligned columns without borders (kubectl's look: easy to read and to grep); `empty` when there are none. */
export function renderTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[], empty: string): string {
  if (rows.length === 0) return empty
  const table = new Table({
    head: columns.map((c) => c.header),
    colAligns: columns.map((c) => c.align ?? 'left'),
    chars: BORDERLESS,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 2 },
  })
  for (const row of rows) table.push(columns.map((c) => cellText(c.value(row))))
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
}

/** `label: value` lines, labels padded to one width: a single record for people. */
export function renderFields(fields: ReadonlyArray<readonly [string, string | number | null | undefined]>): string {
  const width = Math.max(...fields.map(([label]) => label.length)) + 1
  return fields.map(([label, value]) => `${`${label}:`.padEnd(width)} ${cellText(value)}`).join('\n')
}

/** USD for people: at least two decimals, up to the six the ledger keeps (0.000123, 500.00). */
export function usdText(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-'
  const fixed = value.toFixed(6)
  return fixed.replace(/(\.\d\d\d*?)0+$/, '$1')
}

/** `1 event`, `2 events`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}

/** `2026-05-01T09:30:00.000Z` → `2026-05-01 09:30:00Z`: shorter in a table, still UTC. */
export function timeText(iso: string | null | undefined): string {
  if (!iso) return '-'
  return iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')
}

function cellText(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === '' ? '-' : String(value)
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`
}

const BORDERLESS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '',
}

// ---------------------------------------------------------------------------------------------
// Progress

export interface Progress {
  /** `done` of the total so far; `detail` says it in the work's own units ("2000/5000 events"). */
  update(done: number, detail: string): void
  /** Ends the bar, or prints the last plain line if it was not printed yet; safe to call twice. */
  stop(): void
}

export interface ProgressStream {
  readonly isTTY?: boolean
  write(chunk: string): boolean
}

/** When stderr is not a terminal a plain line is printed at most this often, plus the last one. */
const PLAIN_PROGRESS_INTERVAL_MS = 1_000

/** A bar redrawn in place on a terminal; `label: 40% detail` lines elsewhere (a log file, CI). */
export function startProgress(label: string, total: number, stream: ProgressStream = process.stderr): Progress {
  return stream.isTTY === true ? barProgress(label, total, stream) : plainProgress(label, total, stream, PLAIN_PROGRESS_INTERVAL_MS)
}

export function plainProgress(label: string, total: number, stream: ProgressStream, intervalMs: number): Progress {
  let printedMs = Number.NEGATIVE_INFINITY
  let printed = ''
  let latest = ''
  let stopped = false
  const print = () => {
    if (latest === printed) return
    stream.write(`${latest}\n`)
    printed = latest
    printedMs = Date.now()
  }
  return {
    update(done, detail) {
      if (stopped) return
      latest = `${label}: ${percent(done, total)}% ${detail}`
      if (done >= total || Date.now() - printedMs >= intervalMs) print()
    },
    stop() {
      if (stopped) return
      stopped = true
      print()
    },
  }
}

function barProgress(label: string, total: number, stream: ProgressStream): Progress {
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% {detail} | ETA {eta_formatted}`,
    stream: stream as NodeJS.WritableStream,
    hideCursor: true,
    barsize: 30,
  })
  bar.start(total, 0, { detail: '' })
  let stopped = false
  return {
    update: (done, detail) => bar.update(done, { detail }),
    stop() {
      if (stopped) return
      stopped = true
      bar.stop()
    },
  }
}

function percent(done: number, total: number): number {
  return total <= 0 ? 100 : Math.floor((Math.min(done, total) / total) * 100)
}
