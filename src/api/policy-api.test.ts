/**
 * Budget policy through the running gateway, as an admin and a caller meet it: tiers,
 * forecast-confirmed blocks, per-threshold routing fields, owners, acknowledgement and
 * escalation. Bodies that are wrong get a 400 naming the field and change nothing; an experimental
 * endpoint's refusal names the endpoint; a critical endpoint is degraded where others are refused;
 * `block_if_forecast_exceeds` lets calls through while the forecast does not confirm and refuses
 * them once it does; an unacknowledged notice escalates once, an acknowledged one never.
 *
 * How: `buildApp()` + `app.inject()` on a SQLite file in a temp dir, a FakeClock, and the
 * in-process `mock` target, so calls cost real-looking money.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { FakeClock } from '../lib/clock.js'

const ADMIN_TOKEN = 'tg_admin_policy_api_test_0123456789ab'
const CONSUMER_KEY = 'tg_key_policy_api_test_0123456789abcd'
const TEAM = 'team_growth'
const MINUTE = 60_000

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function anApp(): Promise<{ app: App; clock: FakeClock }> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-policy-api-'))
  const env = { TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, HOOK_SECRET: 'whsec_policy_api' }
  const yaml = stringify({
    version: '1',
    storage: { sqlite: join(dir, 'tollgate.sqlite') },
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: [{ name: 'growth-svc', api_key: CONSUMER_KEY, team_id: TEAM }],
    endpoint_tiers: { checkout: 'critical', lab: 'experimental' },
    notifications: {
      channels: [
        { id: 'ops-webhook', type: 'webhook', url: 'http://127.0.0.1:9/hook', secret_ref: { env: 'HOOK_SECRET' } },
        { id: 'finops-slack', type: 'slack', webhook_url: 'http://127.0.0.1:9/slack' },
      ],
      escalation_channels: ['ops-webhook'],
    },
  })
  const clock = new FakeClock(Date.UTC(2026, 10, 15, 12, 0, 0))
  const app = await buildApp(parseConfig(yaml, '<policy-api test>', { env, requireSecrets: true }), { clock, env })
  cleanups.push(async () => {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { app, clock }
}

async function admin(app: App, method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await app.fastify.inject({
    method,
    url,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
  })
  return { status: response.statusCode, body: response.body === '' ? undefined : response.json() }
}

async function chat(app: App, endpoint: string) {
  const response = await app.fastify.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'x-tollgate-endpoint': endpoint },
    payload: { model: 'gpt-4o', max_tokens: 20, messages: [{ role: 'user', content: 'Say something short.' }] },
  })
  return { status: response.statusCode, headers: response.headers, body: response.json() as any }
}

function aBudgetBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'growth monthly', scope: { kind: 'team', id: TEAM }, period: 'monthly', amount_usd: 100, ...over }
}

async function inbox(app: App): Promise<any[]> {
  return (await admin(app, 'GET', '/v1/notifications')).body.data
}

describe('budget policy fields in the API', () => {
  it.each([
    [
      'an unknown channel on a threshold',
      { threshold_actions: [{ threshold_percent: 80, action: 'notify', channels: ['pager'] }] },
      'threshold_actions.0.channels',
      /unknown channel id pager; configured: ops-webhook, finops-slack/,
    ],
    ['an escalate_after that is not a duration', { escalate_after: '2 hours' }, 'escalate_after', /duration such as 30m, 2h or 1d/],
    ['an escalate_after over 30 days', { escalate_after: '31d' }, 'escalate_after', /at most 30d/],
    ['an unknown tier', { tier: 'vital' }, 'tier', /critical \| standard \| experimental/],
    ['a critical tier with a hard limit', { tier: 'critical', hard_limit: true }, 'tier', /critical budget degrades instead of blocking/],
    [
      'a critical endpoint budget with a block action',
      { scope: { kind: 'endpoint', id: 'checkout' }, threshold_actions: [{ threshold_percent: 90, action: 'block' }] },
      'threshold_actions',
      /block action at 90%/,
    ],
  ])('refuses %s with a 400 naming the field, and creates nothing', async (_what, over, path, message) => {
    const { app } = await anApp()
    const { status, body } = await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody(over))
    expect(status).toBe(400)
    const issue = (body.error.issues as { path: string; message: string }[]).find((i) => i.path === path)
    expect(issue, JSON.stringify(body.error)).toBeDefined()
    expect(issue!.message).toMatch(message)
    expect((await admin(app, 'GET', '/v1/billing/budgets')).body.data).toEqual([])
  })

  it('stores tier, owner, escalate_after and per-threshold channels, and clears them with null', async () => {
    const { app } = await anApp()
    const created = await admin(
      app,
      'POST',
      '/v1/billing/budgets',
      aBudgetBody({
        tier: 'standard',
        owner: 'finops-slack',
        escalate_after: '120m',
        threshold_actions: [{ threshold_percent: 95, action: 'block_if_forecast_exceeds', channels: ['finops-slack', 'ops-webhook'] }],
      }),
    )
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    expect(created.body).toMatchObject({
      tier: 'standard',
      owner: 'finops-slack',
      escalate_after: '2h',
      threshold_actions: [{ threshold_percent: 95, action: 'block_if_forecast_exceeds', channels: ['finops-slack', 'ops-webhook'] }],
    })
    const patched = await admin(app, 'PATCH', `/v1/billing/budgets/${created.body.id}`, { tier: null, escalate_after: null })
    expect(patched.body).toMatchObject({ tier: null, escalate_after: null, owner: 'finops-slack' })
  })
})

describe('tiers on live calls', () => {
  it('refuses an experimental endpoint at its cap with a message that names the endpoint and why', async () => {
    const { app } = await anApp()
    await admin(
      app,
      'POST',
      '/v1/billing/budgets',
      aBudgetBody({ name: 'lab daily', scope: { kind: 'endpoint', id: 'lab' }, period: 'daily', amount_usd: '0.000001' }),
    )
    const refused = await chat(app, 'lab')
    expect(refused.status).toBe(429)
    expect(refused.body.error.message).toMatch(/endpoint "lab" is experimental, so its budget is a hard cap of \$0\.00 per day and it is spent/)
    expect((await chat(app, 'search')).status).toBe(200)
  })

  it('degrades a critical endpoint where a hard team budget refuses every other endpoint', async () => {
    const { app } = await anApp()
    await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody({ amount_usd: '0.000001', hard_limit: true }))
    expect((await chat(app, 'search')).status).toBe(429)
    // No hard limit is checked at reserve time for a critical call: it goes through and spends
    // past the cap; from then on critical calls are degraded and the rest refused.
    const first = await chat(app, 'checkout')
    expect(first.status).toBe(200)
    expect(first.headers['x-tollgate-degraded']).toBeUndefined()
    const degraded = await chat(app, 'checkout')
    expect(degraded.status).toBe(200)
    expect(degraded.headers['x-tollgate-degraded']).toBe('output_tokens<=1024')
    expect((await chat(app, 'search')).status).toBe(429)
  })
})

describe('block_if_forecast_exceeds on live calls', () => {
  it('lets calls through and says why while the forecast does not confirm, and refuses once it does', async () => {
    const { app, clock } = await anApp()
    expect((await chat(app, 'reports')).status).toBe(200)
    clock.advance(MINUTE)
    const probe = await admin(app, 'POST', '/v1/billing/budgets', aBudgetBody({ name: 'probe', scope: { kind: 'endpoint', id: 'reports' }, period: 'daily' }))
    const oneCallUsd: number = probe.body.posture.spend_usd
    expect(oneCallUsd).toBeGreaterThan(0)

    // Daily, 12 h in: one call's spend projects to about 4 calls by midnight, well under 20.
    const budget = await admin(
      app,
      'POST',
      '/v1/billing/budgets',
      aBudgetBody({
        name: 'reports daily',
        scope: { kind: 'endpoint', id: 'reports' },
        period: 'daily',
        amount_usd: (oneCallUsd * 20).toFixed(6),
        alert_thresholds: [],
        threshold_actions: [{ threshold_percent: 1, action: 'block_if_forecast_exceeds' }],
      }),
    )
    expect(budget.status, JSON.stringify(budget.body)).toBe(201)
    expect((await chat(app, 'reports')).status).toBe(200)
    const notice = (await inbox(app)).find((n) => n.data.budget_id === budget.body.id)
    expect(notice).toMatchObject({ type: 'budget.threshold', data: { action: 'block_if_forecast_exceeds', forecast_decision: 'not_confirmed' } })
    expect(notice.data.forecast_note).toMatch(/^Notifying only/)
    expect(notice.data.projected_spend_usd).toBeLessThan(oneCallUsd * 20)

    // Now the budget is two calls: spend has reached it, so the forecast confirms.
    await admin(app, 'PATCH', `/v1/billing/budgets/${budget.body.id}`, { amount_usd: (oneCallUsd * 2).toFixed(6) })
    clock.advance(2 * MINUTE)
    const refused = await chat(app, 'reports')
    expect(refused.status).toBe(429)
    expect(refused.body.error.message).toMatch(/the burn-rate forecast projects \$\d+\.\d\d by period end/)
  })
})

describe('acknowledgement and escalation through the API', () => {
  it('escalates an unacknowledged threshold notice once after escalate_after, and never an acknowledged one', async () => {
    const { app, clock } = await anApp()
    const quiet = await admin(
      app,
      'POST',
      '/v1/billing/budgets',
      aBudgetBody({ name: 'quiet', amount_usd: '0.000002', alert_thresholds: [50], escalate_after: '30m', owner: 'finops-slack' }),
    )
    const loud = await admin(
      app,
      'POST',
      '/v1/billing/budgets',
      aBudgetBody({ name: 'loud', amount_usd: '0.000003', alert_thresholds: [50], escalate_after: '30m', owner: 'finops-slack' }),
    )
    expect((await chat(app, 'search')).status).toBe(200)
    await app.budgets.refresh()
    const notices = await inbox(app)
    const quietNotice = notices.find((n) => n.data.budget_id === quiet.body.id && n.type === 'budget.threshold')
    const loudNotice = notices.find((n) => n.data.budget_id === loud.body.id && n.type === 'budget.threshold')
    expect(quietNotice).toMatchObject({ acknowledged_at: null, escalated_at: null, escalate_at: new Date(clock.nowMs() + 30 * MINUTE).toISOString() })

    const acked = await admin(app, 'POST', `/v1/notifications/${quietNotice.id}/ack`)
    expect(acked).toMatchObject({ status: 200, body: { id: quietNotice.id, acknowledged_at: new Date(clock.nowMs()).toISOString() } })
    expect((await admin(app, 'POST', '/v1/notifications/ntf_nope/ack')).status).toBe(404)

    clock.advance(30 * MINUTE)
    const escalated = await app.escalator.tick()
    expect(escalated.map((n) => n.data['escalates'])).toEqual([loudNotice.id])
    expect(await app.escalator.tick()).toEqual([])
    const after = await inbox(app)
    expect(after.filter((n) => n.type === 'budget.escalated').map((n) => n.data.escalates)).toEqual([loudNotice.id])
    expect(after.find((n) => n.id === loudNotice.id).escalated_at).toBe(new Date(clock.nowMs()).toISOString())
  })
})
