/**
 * An export survives the death of the process writing it: a gateway is killed (SIGKILL) while it
 * writes a 200,000-event export; the job stays `running` under a lease nobody renews; a gateway
 * started again on the same store claims it once the lease has passed, writes the whole file from
 * the start (attempt 2), and leaves no partial file behind.
 *
 * How: built gateways as child processes on one SQLite file (`exports.lease_ms: 1500`); the events
 * are written straight into the file with the store's own row mapping before the export starts.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { USAGE_COLUMNS, usageRow } from '../../src/store/sqlite/usage-store.js'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'
import { generateEvents } from '../support/usage-data.js'

const ADMIN = 'tg_admin_exports_restart_0123456789'
const EVENTS = 200_000
const dir = mkdtempSync(join(tmpdir(), 'tollgate-export-restart-'))
const dbPath = join(dir, 'tollgate.db')
const configPath = join(dir, 'tollgate.yaml')
const env = { ...process.env, TOLLGATE_ADMIN_TOKEN: ADMIN, TOLLGATE_LOG_LEVEL: 'warn' }

afterAll(() => rmSync(dir, { recursive: true, force: true }))

const api = async (gw: GatewayHandle, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${gw.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, text: await res.text() }
}

function insertEvents(count: number): { fromMs: number; toMs: number } {
  const db = new Database(dbPath)
  db.pragma('busy_timeout = 10000')
  const insert = db.prepare(`INSERT INTO usage_events (${USAGE_COLUMNS.join(', ')}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')})`)
  let window = { fromMs: 0, toMs: 0 }
  for (let chunk = 0; chunk < count / 20_000; chunk++) {
    const data = generateEvents(20_000, { seed: chunk + 1 })
    window = { fromMs: data.fromMs, toMs: data.toMs }
    db.transaction(() => {
      for (const [i, event] of data.events.entries()) insert.run(usageRow({ ...event, id: `evt_r${chunk}_${i}`, requestId: `req_r${chunk}_${i}` }))
    })()
  }
  db.close()
  return window
}

it('a job whose process was killed is claimed again after its lease and completed in full', { timeout: 180_000 }, async () => {
  writeFileSync(
    configPath,
    stringify({ version: '1', storage: { sqlite: dbPath }, providers: { targets: [{ id: 'mock', provider: 'mock' }] }, exports: { lease_ms: 1500 } }),
  )
  const first = await spawnGateway({ config: configPath, env })
  const window = insertEvents(EVENTS)

  const created = await api(first, 'POST', '/v1/export-jobs', {
    type: 'events',
    format: 'csv',
    date_from: new Date(window.fromMs).toISOString(),
    date_to: new Date(window.toMs).toISOString(),
  })
  expect(created.status, created.text).toBe(202)
  const id = JSON.parse(created.text).id as string
  let seen: Record<string, any> = {}
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    seen = JSON.parse((await api(first, 'GET', `/v1/export-jobs/${id}`)).text)
    if (seen.status !== 'queued' && seen.rows_written > 0) break
    await new Promise((r) => setTimeout(r, 20))
  }
  expect(seen).toMatchObject({ status: 'running', attempts: 1, rows_total: EVENTS })
  expect(seen.rows_written).toBeLessThan(EVENTS)
  await first.kill('SIGKILL')

  const second = await spawnGateway({ config: configPath, env })
  let job: Record<string, any> = {}
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    job = JSON.parse((await api(second, 'GET', `/v1/export-jobs/${id}`)).text)
    if (job.status === 'completed' || job.status === 'failed') break
    await new Promise((r) => setTimeout(r, 200))
  }
  expect(job).toMatchObject({ status: 'completed', attempts: 2, rows_written: EVENTS, rows_total: EVENTS, error: null })
  const file = await api(second, 'GET', `/v1/export-jobs/${id}/download`)
  expect(file.status).toBe(200)
  // Header + one record per event; quoted fields may hold line breaks, so count the ids instead.
  expect(file.text.match(/^evt_r\d+_\d+,/gm)).toHaveLength(EVENTS)
  expect(readdirSync(join(dir, 'exports')).filter((n) => n.endsWith('.partial'))).toEqual([])
  await second.kill('SIGTERM')
})
