/**
 * GET /v1/usage as a report reader sees it: totals, groups and a time series whose buckets start
 * on the hour (or day) boundary, over a half-open [from, to) range; bad queries get a 400 naming
 * the parameter. Method: an in-process gateway on a fake clock, calls placed in two hours.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { FakeClock } from '../lib/clock.js'
import { createLogger } from '../observability/logger.js'
import { startMockUpstream, type MockUpstream } from '../providers/index.js'

const KEY = 'tg_key_usage_report'
const ADMIN = 'tg_admin_usage_report'
const clock = new FakeClock(Date.UTC(2026, 10, 15, 12, 34, 56))
let dir: string
let mock: MockUpstream
let app: App

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-usage-'))
  mock = await startMockUpstream()
  const yaml = `
storage: {sqlite: ${join(dir, 'db.sqlite')}}
providers: {targets: [{id: mock, provider: mock, base_url: "${mock.url}/v1"}]}
consumer_groups: [{name: app, api_key: ${KEY}, team_id: growth}]
`
  app = await buildApp(parseConfig(yaml, 'usage.yaml'), { env: { TOLLGATE_ADMIN_TOKEN: ADMIN }, clock, logger: createLogger({ level: 'silent' }) })
  const chat = (model: string, user: string) =>
    app.fastify.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'x-tollgate-user': user },
      payload: { model, max_tokens: 10, messages: [{ role: 'user', content: 'report me' }] },
    })
  await chat('gpt-4o-mini', 'ana')
  await chat('gpt-4o', 'ana')
  clock.advance(3_600_000)
  await chat('gpt-4o-mini', 'ben')
})

afterAll(async () => {
  await app.close()
  await mock.close()
  rmSync(dir, { recursive: true, force: true })
})

const get = (query: string) => app.fastify.inject({ url: `/v1/usage${query}`, headers: { authorization: `Bearer ${ADMIN}` } })

describe('GET /v1/usage', () => {
  it('buckets the series on hour boundaries and groups by model', async () => {
    const report = (await get('?bucket=hour&group_by=model&from=2026-11-15T00:00:00Z&to=2026-11-16T00:00:00Z')).json()
    expect(report.totals.requests).toBe(3)
    expect(report.groups.map((g: { key: { model: string }; requests: number }) => [g.key.model, g.requests]).sort()).toEqual([
      ['gpt-4o', 1],
      ['gpt-4o-mini', 2],
    ])
    const buckets = report.series.map((p: { bucket_start: string; key: { model: string }; requests: number }) => [p.bucket_start, p.key.model, p.requests])
    expect(buckets).toEqual(
      expect.arrayContaining([
        ['2026-11-15T12:00:00.000Z', 'gpt-4o-mini', 1],
        ['2026-11-15T12:00:00.000Z', 'gpt-4o', 1],
        ['2026-11-15T13:00:00.000Z', 'gpt-4o-mini', 1],
      ]),
    )
    expect(buckets).toHaveLength(3)
  })

  it('with series_groups, keeps the top groups\' points and sums the rest per bucket into an "other" point', async () => {
    const range = '?bucket=hour&group_by=model&from=2026-11-15T00:00:00Z&to=2026-11-16T00:00:00Z'
    const full = (await get(range)).json()
    const folded = (await get(`${range}&series_groups=1`)).json()
    expect(folded.totals).toEqual(full.totals)
    expect(folded.groups).toEqual(full.groups)
    type Point = { bucket_start: string; key: { model?: string }; other?: true; requests: number; cost_micros: number }
    const top = full.groups[0].key.model
    const rest = full.series.filter((p: Point) => p.key.model !== top)
    expect(rest.length).toBeGreaterThan(0)
    expect(folded.series.map((p: Point) => [p.bucket_start, p.other ? 'other' : p.key.model, p.requests, p.cost_micros])).toEqual([
      ...full.series.filter((p: Point) => p.key.model === top).map((p: Point) => [p.bucket_start, top, p.requests, p.cost_micros]),
      ...rest.map((p: Point) => [p.bucket_start, 'other', p.requests, p.cost_micros]),
    ])
    expect(folded.series.filter((p: Point) => p.other).every((p: Point) => Object.keys(p.key).length === 0)).toBe(true)
    // As many groups as there are: nothing to fold, the same series.
    expect((await get(`${range}&series_groups=2`)).json().series).toEqual(full.series)
    expect((await get(`${range}&series_groups=0`)).statusCode).toBe(400)
  })

  it('treats the range as half-open: a call exactly at "to" is left out', async () => {
    const report = (await get('?from=2026-11-15T00:00:00Z&to=2026-11-15T13:34:56Z')).json()
    expect(report.totals.requests).toBe(2)
  })

  it('ranks users by spend on /v1/usage/top', async () => {
    const top = (await app.fastify.inject({ url: '/v1/usage/top?by=user&from=2026-11-15T00:00:00Z', headers: { authorization: `Bearer ${ADMIN}` } })).json()
    expect(top.data.map((row: { user: string }) => row.user)).toEqual(['ana', 'ben'])
  })

  it.each([
    ['?group_by=colour', 'group_by'],
    ['?from=yesterday', 'from'],
    ['?bucket=week', 'bucket'],
    ['?from=2026-11-16T00:00:00Z&to=2026-11-15T00:00:00Z', 'from'],
  ])('refuses %s with a 400 naming %s', async (query, path) => {
    const reply = await get(query)
    expect(reply.statusCode).toBe(400)
    expect(reply.json().error.issues.map((i: { path: string }) => i.path)).toContain(path)
  })
})
