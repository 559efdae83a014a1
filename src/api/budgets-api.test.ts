/**
 * The budgets admin API as an admin meets it: bodies that are wrong get a 400 that
 * says which field and why (positive and negative space: the last valid value and the first
 * invalid one), unknown ids get 404, PATCH changes the amount and the `posture` block follows,
 * DELETE answers 204 and then 404. The last test proves a budget created through the API governs
 * the very next proxied request (the proxy's decision reads the refreshed cache).
 *
 * How: `buildApp()` + `app.inject()` on a SQLite file in a temp dir, a FakeClock, and a `mock`
 * target (buildApp starts the in-process mock upstream), so proxied calls cost real-looking money.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { FakeClock } from '../lib/clock.js'

const ADMIN_TOKEN = 'tg_admin_budgets_api_test_0123456789'
const CONSUMER_KEY = 'tg_key_budgets_api_test_0123456789ab'
const TEAM = 'team_growth'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function anApp(): Promise<{ app: App; clock: FakeClock }> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-budgets-api-'))
  const env = { TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, HOOK_SECRET: 'whsec_budgets_api' }
  const yaml = stringify({
    version: '1',
    storage: { sqlite: join(dir, 'tollgate.sqlite') },
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: [{ name: 'growth-svc', api_key: CONSUMER_KEY, team_id: TEAM }],
    notifications: { channels: [{ id: 'ops-webhook', type: 'webhook', url: 'http://127.0.0.1:9/hook', secret_ref: { env: 'HOOK_SECRET' } }] },
  })
  const clock = new FakeClock(Date.UTC(2026, 10, 15, 12, 0, 0))
  const app = await buildApp(parseConfig(yaml, '<budgets-api test>', { env, requireSecrets: true }), { clock, env })
  cleanups.push(async () => {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { app, clock }
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE'

async function admin(app: App, method: Method, url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await app.fastify.inject({
    method,
    url,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
  })
  return { status: response.statusCode, body: response.body === '' ? undefined : response.json() }
}

async function chat(app: App) {
  const response = await app.fastify.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${CONSUMER_KEY}` },
    payload: { model: 'gpt-4o', max_tokens: 20, messages: [{ role: 'user', content: 'Say something short.' }] },
  })
  return { status: response.statusCode, headers: response.headers, body: response.json() as any }
}

/** A valid create body; `over` replaces fields (set one to undefined to drop it). */
function aBudgetBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: 'growth monthly',
    scope: { kind: 'team', id: TEAM },
    period: 'monthly',
    timezone: 'Europe/Berlin',
    amount_usd: 100,
    ...over,
  }
  for (const [key, value] of Object.entries(body)) if (value === undefined) delete body[key]
  return body
}

describe('POST /v1/billing/budgets validation', () => {
  it.each([
    ['a threshold of 0', { alert_thresholds: [0, 50] }, 'alert_thresholds.0', /1 to 1000/],
    ['a threshold of 1001', { alert_thresholds: [50, 1001] }, 'alert_thresholds.1', /1 to 1000/],
    ['a fractional threshold', { alert_thresholds: [50.5] }, 'alert_thresholds.0', /whole percentage/],
    ['a threshold action at 0%', { threshold_actions: [{ threshold_percent: 0, action: 'block' }] }, 'threshold_actions.0.threshold_percent', /1 to 1000/],
    [
      'an unknown threshold action',
      { threshold_actions: [{ threshold_percent: 90, action: 'panic' }] },
      'threshold_actions.0.action',
      /notify \| degrade \| block/,
    ],
    ['an unknown time zone', { timezone: 'Mars/Olympus_Mons' }, 'timezone', /IANA time zone/],
    ['an amount of 0', { amount_usd: 0 }, 'amount_usd', /positive/],
    ['a negative amount', { amount_usd: -5 }, 'amount_usd', /positive/],
    ['an amount with 7 decimals', { amount_usd: '0.0000001' }, 'amount_usd', /positive/],
    ['an amount that is not a number', { amount_usd: 'lots' }, 'amount_usd', /positive/],
    ['an unknown scope kind', { scope: { kind: 'department', id: 'x' } }, 'scope.kind', /org \| team \| user/],
    ['an empty scope id', { scope: { kind: 'team', id: '  ' } }, 'scope.id', /must not be empty/],
    ['an unknown period', { period: 'fortnightly' }, 'period', /daily \| weekly \| monthly/],
    ['an unknown key', { colour: 'red' }, 'body', /colour/],
    ['a missing name', { name: undefined }, 'name', /name/],
  ])('refuses %s with 400 invalid_request naming the field', async (_what, over, path, message) => {
    const { app } = await anApp()
    const { status, body } = await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody(over))
    expect(status).toBe(400)
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request' })
    const issue = (body.error.issues as { path: string; message: string }[]).find((i) => i.path === path)
    expect(issue, `issues: ${JSON.stringify(body.error.issues)}`).toBeDefined()
    expect(`${issue!.path}: ${issue!.message}`).toMatch(message)
    expect((await admin(app, 'GET', '/v1/billing/budgets')).body.data).toEqual([])
  })

  it('refuses a channel id that is not configured, and lists the configured ones', async () => {
    const { app } = await anApp()
    const { status, body } = await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody({ channels: ['finance-slack'] }))
    expect(status).toBe(400)
    expect(body.error.code).toBe('invalid_request')
    expect(body.error.message).toMatch(/finance-slack/)
    expect(body.error.message).toMatch(/ops-webhook/)
    expect((await admin(app, 'GET', '/v1/billing/budgets')).body.data).toEqual([])
  })

  it('accepts the limits themselves: thresholds 1 and 1000, one micro-dollar, a configured channel', async () => {
    const { app } = await anApp()
    const { status, body } = await admin(
      app,
      'POST',
      '/v1/billing/budgets',
      aBudgetBody({
        alert_thresholds: [1000, 1, 50],
        threshold_actions: [{ threshold_percent: 1000, action: 'block' }],
        amount_usd: '0.000001',
        timezone: 'America/St_Johns',
        channels: ['ops-webhook'],
      }),
    )
    expect(status, JSON.stringify(body)).toBe(201)
    expect(body).toMatchObject({
      id: expect.stringMatching(/^bud_/),
      amount_usd: 0.000001,
      alert_thresholds: [1, 50, 1000],
      timezone: 'America/St_Johns',
      channels: ['ops-webhook'],
      source: 'api',
      posture: { spend_usd: 0, percent: 0 },
    })
  })

  it('defaults thresholds to 50/80/95, the zone to UTC, and no hard limit', async () => {
    const { app } = await anApp()
    const { status, body } = await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody({ timezone: undefined }))
    expect(status).toBe(201)
    expect(body).toMatchObject({ alert_thresholds: [50, 80, 95], timezone: 'UTC', hard_limit: false, shadow: false, channels: null })
    expect(body.posture).toMatchObject({
      period_key: '2026-11',
      period_start: '2026-11-01T00:00:00.000Z',
      period_end: '2026-12-01T00:00:00.000Z',
      limit_usd: null,
    })
  })

  it("covers the caller's whole org when the body has no scope, and counts the org's next call", async () => {
    const { app } = await anApp()
    const created = await admin(app, 'POST', '/v1/billing/budgets', { name: 'Marketing Monthly Cap', amount_usd: 500, period: 'monthly' })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    expect(created.body).toMatchObject({ name: 'Marketing Monthly Cap', scope: { kind: 'org', id: 'default' }, amount_usd: 500, period: 'monthly' })
    const call = await chat(app)
    expect(call.status).toBe(200)
    const posture = (await admin(app, 'GET', `/v1/billing/budgets/${created.body.id as string}`)).body.posture
    expect(posture.spend_usd).toBeCloseTo(Number(call.headers['x-tollgate-cost-usd']), 6)
    expect(posture.spend_usd).toBeGreaterThan(0)
  })

  it('refuses a team_admin a budget with no scope (that would be org-wide) with 403, creating nothing', async () => {
    const { app } = await anApp()
    const minted = await admin(app, 'POST', '/v1/admin-tokens', { name: 'growth lead', role: 'team_admin', team_id: TEAM })
    expect(minted.status).toBe(201)
    const response = await app.fastify.inject({
      method: 'POST',
      url: '/v1/billing/budgets',
      headers: { authorization: `Bearer ${minted.body.token as string}` },
      payload: { name: 'sneaky org cap', amount_usd: 1, period: 'daily' },
    })
    expect(response.statusCode).toBe(403)
    expect(response.json().error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/org-wide/) })
    expect((await admin(app, 'GET', '/v1/billing/budgets')).body.data).toEqual([])
  })

  it('refuses a second budget with the same name with 409 conflict', async () => {
    const { app } = await anApp()
    expect((await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody())).status).toBe(201)
    const second = await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody({ amount_usd: 5 }))
    expect(second.status).toBe(409)
    expect(second.body.error.code).toBe('conflict')
  })
})

describe('budget by id', () => {
  it.each([
    ['GET', undefined],
    ['PATCH', { amount_usd: 10 }],
    ['DELETE', undefined],
  ] as const)('answers %s of an unknown id with 404 not_found', async (method, body) => {
    const { app } = await anApp()
    const response = await admin(app, method, '/v1/billing/budgets/bud_does_not_exist', body)
    expect(response.status).toBe(404)
    expect(response.body.error).toMatchObject({ code: 'not_found', message: expect.stringContaining('bud_does_not_exist') })
  })

  it('PATCH changes the amount and the posture percent follows the same spend', async () => {
    const { app } = await anApp()
    const created = await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody({ amount_usd: 1 }))
    const id = created.body.id as string
    const call = await chat(app)
    expect(call.status).toBe(200)
    const costUsd = Number(call.headers['x-tollgate-cost-usd'])
    expect(costUsd).toBeGreaterThan(0)

    const before = await admin(app, 'GET', `/v1/billing/budgets/${id}`)
    expect(before.body.posture.spend_usd).toBeCloseTo(costUsd, 6)
    const percentAt1 = before.body.posture.percent as number

    const patched = await admin(app, 'PATCH', `/v1/billing/budgets/${id}`, { amount_usd: '0.5', hard_limit: true })
    expect(patched.status).toBe(200)
    expect(patched.body).toMatchObject({ id, amount_usd: 0.5, hard_limit: true, name: 'growth monthly' })
    expect(patched.body.posture.spend_usd).toBeCloseTo(costUsd, 6)
    expect(patched.body.posture.limit_usd).toBe(0.5)
    expect(patched.body.posture.percent).toBeCloseTo(percentAt1 * 2, 1)
    expect((await admin(app, 'GET', `/v1/billing/budgets/${id}`)).body.amount_usd).toBe(0.5)
  })

  it('PATCH validates like POST and leaves the budget unchanged on 400', async () => {
    const { app } = await anApp()
    const id = (await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody())).body.id as string
    const bad = await admin(app, 'PATCH', `/v1/billing/budgets/${id}`, { amount_usd: 0, timezone: 'Nowhere/Land' })
    expect(bad.status).toBe(400)
    expect((bad.body.error.issues as { path: string }[]).map((i) => i.path).sort()).toEqual(['amount_usd', 'timezone'])
    const unknownChannel = await admin(app, 'PATCH', `/v1/billing/budgets/${id}`, { channels: ['pager'] })
    expect(unknownChannel.status).toBe(400)
    expect((await admin(app, 'GET', `/v1/billing/budgets/${id}`)).body).toMatchObject({ amount_usd: 100, timezone: 'Europe/Berlin', channels: null })
  })

  it('DELETE answers 204, then the budget is gone from GET and the list', async () => {
    const { app } = await anApp()
    const id = (await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody())).body.id as string
    const deleted = await admin(app, 'DELETE', `/v1/billing/budgets/${id}`)
    expect(deleted.status).toBe(204)
    expect(deleted.body).toBeUndefined()
    expect((await admin(app, 'GET', `/v1/billing/budgets/${id}`)).status).toBe(404)
    expect((await admin(app, 'DELETE', `/v1/billing/budgets/${id}`)).status).toBe(404)
    expect((await admin(app, 'GET', '/v1/billing/budgets')).body.data).toEqual([])
  })
})

describe('a budget created through the API', () => {
  it('governs the next proxied request: a hard budget already exceeded refuses it, deleting it lets calls through', async () => {
    const { app } = await anApp()
    const first = await chat(app)
    expect(first.status).toBe(200)

    // Hard budget smaller than one call's worst case: the very next call cannot reserve under it.
    const created = await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody({ amount_usd: '0.000001', hard_limit: true, timezone: 'UTC' }))
    expect(created.status).toBe(201)
    const refused = await chat(app)
    expect(refused.status).toBe(429)
    expect(refused.body.error).toMatchObject({ code: 'budget_cap_exceeded', type: 'budget_error', reset_at: '2026-12-01T00:00:00.000Z' })
    expect(refused.headers['retry-after']).toBe(String((Date.UTC(2026, 11, 1) - Date.UTC(2026, 10, 15, 12)) / 1000))

    expect((await admin(app, 'DELETE', `/v1/billing/budgets/${created.body.id as string}`)).status).toBe(204)
    expect((await chat(app)).status).toBe(200)
  })

  it('a soft budget created through the API counts the next request in its posture', async () => {
    const { app } = await anApp()
    const id = (await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody({ amount_usd: 1 }))).body.id as string
    const call = await chat(app)
    expect(call.status).toBe(200)
    expect(call.headers['x-tollgate-decision']).toBeUndefined()
    const posture = (await admin(app, 'GET', `/v1/billing/budgets/${id}`)).body.posture
    expect(posture.spend_usd).toBeCloseTo(Number(call.headers['x-tollgate-cost-usd']), 6)
    expect(posture.spend_usd).toBeGreaterThan(0)
  })
})
