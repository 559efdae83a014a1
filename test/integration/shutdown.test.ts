/**
 * SIGTERM loses nothing: usage events are written in batches off the request path, so a gateway
 * stopped right after serving must flush its queue before it exits. Method: a real gateway
 * process on a SQLite file, a burst of calls, SIGTERM at once, then a second gateway on the same
 * file reports every call in /v1/usage.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMockUpstream, type MockUpstream } from '../../src/providers/index.js'
import { spawnGateway } from '../support/processes.js'

const ADMIN = 'tg_admin_shutdown_test'
const KEY = 'tg_key_shutdown_test'
let dir: string
let mock: MockUpstream

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-shutdown-'))
  mock = await startMockUpstream()
  writeFileSync(
    join(dir, 'tollgate.yaml'),
    [
      `storage: {sqlite: ${join(dir, 'tollgate.db')}}`,
      'providers:',
      '  targets:',
      `    - {id: mock, provider: mock, base_url: "${mock.url}/v1"}`,
      'consumer_groups:',
      `  - {name: app, api_key: ${KEY}, team_id: platform}`,
    ].join('\n'),
  )
})

afterAll(async () => {
  await mock.close()
  rmSync(dir, { recursive: true, force: true })
})

async function chat(baseUrl: string): Promise<number> {
  const response = await request(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'count me' }] }),
  })
  await response.body.dump()
  return response.statusCode
}

describe('graceful shutdown', () => {
  it('flushes every usage event to the store before exiting on SIGTERM', async () => {
    const env = { ...process.env, TOLLGATE_ADMIN_TOKEN: ADMIN, TOLLGATE_LOG_LEVEL: 'warn' }
    const config = join(dir, 'tollgate.yaml')
    const first = await spawnGateway({ config, env })
    const calls = 40
    const statuses = await Promise.all(Array.from({ length: calls }, () => chat(first.baseUrl)))
    expect(statuses.every((s) => s === 200)).toBe(true)
    const exit = await first.kill('SIGTERM')
    expect(exit.code).toBe(0)

    const second = await spawnGateway({ config, env })
    const usage = await request(`${second.baseUrl}/v1/usage`, { headers: { authorization: `Bearer ${ADMIN}` } })
    const report = (await usage.body.json()) as { totals: { requests: number; cost_micros: number } }
    expect(report.totals.requests).toBe(calls)
    expect(report.totals.cost_micros).toBeGreaterThan(0)
    await second.kill('SIGTERM')
  })
})
