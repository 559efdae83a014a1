/**
 * `POST /v1/replays` and `GET /v1/replays/{id}` as a caller meets them: who may run a replay,
 * what a team_admin's replay sees (its own team's events only) and who may read it, and bad
 * input refused with the field named and nothing started or changed.
 *
 * How: `buildTestApp` (SQLite in a temp dir, `inject`), usage events written straight to the
 * store (two teams, one real and one demo event).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from '../../test/support/gateway.js'
import { aTeamChatEvent } from '../../test/support/usage-data.js'
import type { UsageEvent } from '../usage/index.js'

const T0 = Date.UTC(2026, 10, 2, 10)
const FROM = new Date(Date.UTC(2026, 10, 1)).toISOString()
const TO = new Date(Date.UTC(2026, 11, 1)).toISOString()
const POLICY = `
budgets:
  - name: alpha cap
    scope: { kind: team, id: team_alpha }
    period: monthly
    amount_usd: 2
    hard_limit: true
`

let t: TestApp

async function call(method: 'GET' | 'POST', url: string, body?: unknown, token: string | null = t.adminToken) {
  const response = await t.app.fastify.inject({
    method,
    url,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  })
  return { status: response.statusCode, body: response.body.length > 0 ? response.json() : undefined }
}

async function newToken(role: 'viewer' | 'team_admin', teamId?: string): Promise<string> {
  const created = await call('POST', '/v1/admin-tokens', { name: `${role}-${teamId ?? 'org'}`, role, ...(teamId === undefined ? {} : { team_id: teamId }) })
  expect(created.status).toBe(201)
  return created.body.token as string
}

function anEvent(i: number, teamId: string, dataMode: 'real' | 'demo' = 'real'): UsageEvent {
  return aTeamChatEvent({
    id: `evt_replay_api_${String(i).padStart(4, '0')}`,
    requestId: `req_${i}`,
    atMs: T0 + i * 60_000,
    teamId,
    costMicros: 1_000_000,
    dataMode,
  })
}

async function finished(id: string, token = t.adminToken): Promise<any> {
  for (let i = 0; i < 200; i++) {
    const { status, body } = await call('GET', `/v1/replays/${id}`, undefined, token)
    expect(status).toBe(200)
    if (body.status !== 'running') return body
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('replay did not finish')
}

beforeAll(async () => {
  t = await buildTestApp()
  const events = [...[0, 2, 4, 6].map((i) => anEvent(i, 'team_alpha')), ...[1, 3, 5].map((i) => anEvent(i, 'team_beta')), anEvent(7, 'team_alpha', 'demo')]
  await t.app.stores.usage.insertBatch(events)
})

afterAll(async () => {
  await t?.close()
})

describe('POST /v1/replays', () => {
  it('an admin replays the org’s real events: the hard cap would have refused alpha’s 3rd and 4th calls', async () => {
    const started = await call('POST', '/v1/replays', { from: FROM, to: TO, policy: POLICY })
    expect(started.status, JSON.stringify(started.body)).toBe(202)
    expect(started.body).toMatchObject({ status: 'running', from: FROM, to: TO, team_id: null })
    const done = await finished(started.body.id)
    expect(done.status).toBe('done')
    expect(done.progress).toEqual({ processed: 7, total: 7 })
    expect(done.report.totals).toMatchObject({ events: 7, avoided_micros: 2_000_000 })
    const alpha = done.report.scopes.find((s: any) => s.name === 'alpha cap')
    expect(alpha.blocked.examples.map((e: any) => e.request_id)).toEqual(['req_4', 'req_6'])
  })

  it('a team_admin replays its own team’s events only, and another team cannot read the result', async () => {
    const beta = await newToken('team_admin', 'team_beta')
    const started = await call('POST', '/v1/replays', { from: FROM, to: TO, policy: POLICY }, beta)
    expect(started.status).toBe(202)
    const done = await finished(started.body.id, beta)
    expect(done.team_id).toBe('team_beta')
    expect(done.report.totals.events).toBe(3)
    expect(done.report.scopes[0].blocked.count).toBe(0)
    const alpha = await newToken('team_admin', 'team_alpha')
    expect((await call('GET', `/v1/replays/${started.body.id}`, undefined, alpha)).status).toBe(404)
  })

  it('data_mode: demo replays the demo’s events instead', async () => {
    const started = await call('POST', '/v1/replays', { from: FROM, to: TO, policy: POLICY, data_mode: 'demo' })
    expect((await finished(started.body.id)).report.totals.events).toBe(1)
  })

  it('a viewer may not run one; no token is 401', async () => {
    const viewer = await newToken('viewer')
    expect((await call('POST', '/v1/replays', { from: FROM, to: TO, policy: POLICY }, viewer)).status).toBe(403)
    expect((await call('POST', '/v1/replays', { from: FROM, to: TO, policy: POLICY }, null)).status).toBe(401)
  })

  it('bad input is a 400 naming the field, and changes nothing', async () => {
    const budgetsBefore = await call('GET', '/v1/billing/budgets')
    const cases: Array<[unknown, string]> = [
      [{ from: FROM, to: TO, policy: POLICY.replace('amount_usd: 2', 'amount_usd: -2') }, 'policy.budgets[0].amount_usd'],
      [
        { from: FROM, to: TO, policy: { budgets: [{ name: 'x', scope: { kind: 'team', id: 'a' }, period: 'hourly', amount_usd: 1 }] } },
        'policy.budgets[0].period',
      ],
      [{ from: FROM, to: TO, policy: 'budgets: [' }, 'policy'],
      [{ from: FROM, to: TO, policy: { wallets: [{ scope: { kind: 'team', id: 'a' } }] } }, 'policy.wallets[0].allocated_usd'],
      [{ from: TO, to: FROM, policy: POLICY }, 'from'],
      [{ from: 'yesterday', to: TO, policy: POLICY }, 'from'],
      [{ from: FROM, to: TO }, 'policy'],
    ]
    for (const [body, path] of cases) {
      const reply = await call('POST', '/v1/replays', body)
      expect(reply.status, JSON.stringify(body)).toBe(400)
      expect(reply.body.error.code).toBe('invalid_request')
      expect(reply.body.error.message, JSON.stringify(reply.body)).toContain(path)
    }
    expect(await call('GET', '/v1/billing/budgets')).toEqual(budgetsBefore)
  })

  it('a from or to past 9999 is a 400 naming it, before any job starts', async () => {
    const cases: Array<[unknown, string]> = [
      [{ from: '8640000000000001', to: TO, policy: POLICY }, 'from'],
      [{ from: FROM, to: '8640000000000001', policy: POLICY }, 'to'],
      [{ from: FROM, to: String(Date.UTC(10_000, 0, 1)), policy: POLICY }, 'to'],
      [{ from: '+275760-09-13T00:00:00.000Z', to: TO, policy: POLICY }, 'from'],
    ]
    for (const [body, path] of cases) {
      const reply = await call('POST', '/v1/replays', body)
      expect(reply.status, JSON.stringify(body)).toBe(400)
      expect(reply.body.error.message, JSON.stringify(reply.body)).toMatch(new RegExp(`^${path}: `))
    }
    // Nothing was started: two replays may run at once, and both still can.
    const started = await Promise.all([1, 2].map(() => call('POST', '/v1/replays', { from: FROM, to: TO, policy: POLICY })))
    expect(started.map((r) => r.status)).toEqual([202, 202])
    await Promise.all(started.map((r) => finished(r.body.id)))
  })

  it('a policy past the size bounds is a 400 naming the field', async () => {
    const budget = (i: number, thresholds: number) => ({
      name: `b${i}`,
      scope: { kind: 'team', id: 'team_alpha' },
      period: 'daily',
      amount_usd: '0.000001',
      alert_thresholds: Array.from({ length: thresholds }, (_, t) => t + 1),
    })
    // Ten budgets of 1,000 thresholds is the most; one more threshold is refused.
    const atMost = { budgets: Array.from({ length: 10 }, (_, i) => budget(i, 1000)) }
    const over = { budgets: [...atMost.budgets, budget(10, 1)] }
    const refused = await call('POST', '/v1/replays', { from: FROM, to: TO, policy: over })
    expect(refused.status).toBe(400)
    expect(refused.body.error.message).toContain('policy.budgets: at most 10000 thresholds over all budgets')
    expect(refused.body.error.message).toContain('this policy has 10001')
    // As YAML text too (the CLI sends text).
    const text = await call('POST', '/v1/replays', { from: FROM, to: TO, policy: JSON.stringify(over) })
    expect(text.body.error.message).toContain('policy.budgets: at most 10000')

    const alerts = Array.from({ length: 101 }, (_, t) => ({ threshold_percent: t + 1, action: 'notify' }))
    const tooManyAlerts = await call('POST', '/v1/replays', { from: FROM, to: TO, policy: { cost_tracking: { budget_alerts: alerts } } })
    expect(tooManyAlerts.status).toBe(400)
    expect(tooManyAlerts.body.error.message).toContain('policy.cost_tracking.budget_alerts: at most 100 entries')

    const wallets = Array.from({ length: 10_000 }, (_, w) => ({ scope: { kind: 'user', id: `u${w}` }, allocated_usd: 1 }))
    const walletMarks = await call('POST', '/v1/replays', { from: FROM, to: TO, policy: { cost_tracking: { budget_alerts: alerts.slice(0, 6) }, wallets } })
    expect(walletMarks.status).toBe(400)
    expect(walletMarks.body.error.message).toContain('policy.wallets: at most 50000 wallet alert thresholds')

    const ok = await call('POST', '/v1/replays', { from: FROM, to: TO, policy: atMost })
    expect(ok.status, JSON.stringify(ok.body)).toBe(202)
    await finished(ok.body.id)
  })

  it('an unknown replay is 404', async () => {
    expect((await call('GET', '/v1/replays/rpl_nope')).status).toBe(404)
  })
})
