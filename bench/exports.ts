/**
 * `npm run bench -- exports`: one gateway process on SQLite exports 1,000,000 usage events as
 * CSV, and its peak resident memory (VmHWM) must stay within 256 MiB: the export streams rows
 * from the store instead of loading them. The events are generated and written straight into
 * the database file by this process before the gateway starts, so the gateway's memory holds only
 * what serving and exporting cost. `--quick`: 100,000 events.
 *
 * Results: a few lines on stdout and bench/results/exports.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { SingleBar, Presets } from 'cli-progress'
import { USAGE_COLUMNS, usageRow } from '../src/store/sqlite/usage-store.js'
import { generateEvents } from '../test/support/usage-data.js'
import { startGateway, type Gateway } from './gateway.js'

const quick = process.argv.includes('--quick')
const EVENTS = quick ? 100_000 : 1_000_000
const RSS_LIMIT_MIB = 256
const CHUNK = 20_000
const ADMIN = 'tg-bench-exports-admin-0123456789'
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url))

/** Resident set now and at its peak, in MiB, from /proc (Linux). */
function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 }
}

function start(dir: string): Promise<Gateway> {
  return startGateway({
    mode: 'plain',
    mockUrl: 'http://127.0.0.1:9',
    dir,
    allocateWallet: false,
    env: { TOLLGATE_ADMIN_TOKEN: ADMIN, TOLLGATE_LOG_LEVEL: 'warn' },
  })
}

/** Writes the generated events in transactions of CHUNK rows, with a progress bar. */
function writeEvents(dbPath: string): { fromMs: number; toMs: number } {
  const db = new Database(dbPath)
  const insert = db.prepare(`INSERT INTO usage_events (${USAGE_COLUMNS.join(', ')}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')})`)
  const bar = new SingleBar({ format: 'writing events [{bar}] {percentage}% {value}/{total}', stream: process.stderr }, Presets.shades_classic)
  bar.start(EVENTS, 0)
  let window = { fromMs: Number.MAX_SAFE_INTEGER, toMs: 0 }
  for (let chunk = 0; chunk * CHUNK < EVENTS; chunk++) {
    const data = generateEvents(CHUNK, { seed: chunk + 1, days: 30 })
    window = { fromMs: Math.min(window.fromMs, data.fromMs), toMs: Math.max(window.toMs, data.toMs) }
    db.transaction(() => {
      for (const [i, event] of data.events.entries()) insert.run(usageRow({ ...event, id: `evt_b${chunk}_${i}`, requestId: `req_b${chunk}_${i}` }))
    })()
    bar.update((chunk + 1) * CHUNK)
  }
  bar.stop()
  db.close()
  return window
}

async function api(url: string, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  if (response.status >= 400) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`)
  return response.json()
}

export async function exportsBenchmark(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-exports-'))
  try {
    // A first start creates the schema; the events are then written with no gateway running.
    await (await start(dir)).child.stop()
    const window = writeEvents(join(dir, 'tollgate-plain.db'))
    const gateway = await start(dir)
    const pid = gateway.child.pid
    const before = memoryOf(pid)
    const startedMs = performance.now()
    const created = await api(gateway.url, 'POST', '/v1/export-jobs', {
      type: 'events',
      format: 'csv',
      date_from: new Date(window.fromMs).toISOString(),
      date_to: new Date(window.toMs).toISOString(),
    })
    const bar = new SingleBar(
      { format: 'exporting [{bar}] {percentage}% {value}/{total} rows | RSS {rss} MiB', stream: process.stderr },
      Presets.shades_classic,
    )
    bar.start(EVENTS, 0, { rss: before.rssMiB.toFixed(0) })
    let job = created
    while (job.status !== 'completed' && job.status !== 'failed') {
      await new Promise((resolve) => setTimeout(resolve, 250))
      job = await api(gateway.url, 'GET', `/v1/export-jobs/${created.id}`)
      bar.update(job.rows_written, { rss: memoryOf(pid).rssMiB.toFixed(0) })
    }
    bar.stop()
    const seconds = (performance.now() - startedMs) / 1000
    const after = memoryOf(pid)
    await gateway.child.stop()
    if (job.status !== 'completed') throw new Error(`the export failed: ${job.error}`)
    const fileBytes = statSync(join(dir, 'exports', `${job.id}.csv`)).size
    const result = {
      events: EVENTS,
      rows_written: job.rows_written,
      seconds: Number(seconds.toFixed(1)),
      rows_per_second: Math.round(job.rows_written / seconds),
      file_mib: Number((fileBytes / 2 ** 20).toFixed(1)),
      rss_before_mib: Number(before.rssMiB.toFixed(1)),
      peak_rss_mib: Number(after.peakMiB.toFixed(1)),
      rss_limit_mib: RSS_LIMIT_MIB,
      within_limit: after.peakMiB <= RSS_LIMIT_MIB && job.rows_written === EVENTS,
    }
    mkdirSync(resultsDir, { recursive: true })
    writeFileSync(join(resultsDir, 'exports.json'), `${JSON.stringify(result, null, 2)}\n`)
    process.stdout.write(
      [
        `Export of ${result.rows_written.toLocaleString('en')} events as CSV (SQLite, one gateway process)`,
        `  time: ${result.seconds} s (${result.rows_per_second.toLocaleString('en')} rows/s), file ${result.file_mib} MiB`,
        `  gateway RSS: ${result.rss_before_mib} MiB before, peak ${result.peak_rss_mib} MiB (limit ${RSS_LIMIT_MIB} MiB): ${result.within_limit ? 'ok' : 'OVER'}`,
        '',
      ].join('\n'),
    )
    if (!result.within_limit) throw new Error(`peak RSS ${result.peak_rss_mib} MiB is over ${RSS_LIMIT_MIB} MiB, or rows are missing`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
