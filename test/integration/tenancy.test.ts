/**
 * Nobody spends or sees another team's money, and one incident is one alert — tried as an
 * attacker with a valid key or a team_admin token, and as an on-call owner during a runaway loop.
 *
 * How: gateways on SQLite (`buildTestApp` + inject for the role matrix, `startTestGateway` for
 * calls), two teams (alpha, beta), tokens of every role, and the mock upstream.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildTestApp, startTestGateway, type TestApp, type TestGateway } from '../support/gateway.js'
import { chatBody, METERED, METERED_USD_PER_TOKEN } from './hard-caps-support.js'

const ALPHA = 'team_alpha'
const BETA = 'team_beta'
const ALPHA_KEY = 'tg_tenancy_alpha_key_0123456789abcd'
const BETA_KEY = 'tg_tenancy_beta_key_0123456789abcdef'
const BOB_KEY = 'tg_tenancy_bob_key_0123456789abcdefg'
const LOCKED_KEY = 'tg_tenancy_locked_key_0123456789abcd'

function config(extra: Record<string, unknown> = {}): string {
  return stringify({
    version: '1',
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: [
      { name: 'alpha-svc', api_key: ALPHA_KEY, team_id: ALPHA },
      { name: 'beta-svc', api_key: BETA_KEY, team_id: BETA },
      { name: 'bob', api_key: BOB_KEY, team_id: ALPHA, user_id: 'bob' },
      { name: 'alpha-locked', api_key: LOCKED_KEY, team_id: ALPHA, allow_named_users: false },
    ],
    cost_tracking: { enabled: true, wallet_enforcement: true, budget_alerts: [{ threshold_percent: 100, action: 'block' }] },
    models: [
      {
        name: METERED,
        target: 'mock',
        upstream_model: 'gpt-4o-mini',
        pricing: { input_mtok: METERED_USD_PER_TOKEN * 1e6, output_mtok: METERED_USD_PER_TOKEN * 1e6 },
        max_output_tokens: 100,
      },
    ],
    ...extra,
  })
}

describe('role × route matrix', () => {
  let t: TestApp
  const tokens: Record<string, string> = {}
  const ids: Record<string, string> = {}

  async function call(method: string, url: string, body: unknown, token: string) {
    const res = await t.app.fastify.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { payload: body as object }),
    })
    return { status: res.statusCode, body: res.body ? res.json() : undefined }
  }

  beforeAll(async () => {
    t = await buildTestApp({ yaml: config() })
    const admin = t.adminToken
    for (const [name, role, team] of [
      ['alpha_admin', 'team_admin', ALPHA],
      ['beta_admin', 'team_admin', BETA],
      ['viewer', 'viewer', undefined],
      ['alpha_viewer', 'viewer', ALPHA],
    ] as const) {
      const created = await call('POST', '/v1/admin-tokens', { name, role, ...(team ? { team_id: team } : {}) }, admin)
      expect(created.status).toBe(201)
      tokens[name] = created.body.token
    }
    tokens.admin = admin
    for (const team of [ALPHA, BETA])
      expect((await call('POST', '/v1/wallets/allocate', { team_id: team, amount: 5, currency: 'USD' }, admin)).status).toBe(201)
    ids.alphaBudget = (
      await call('POST', '/v1/billing/budgets', { name: 'alpha', scope: { kind: 'team', id: ALPHA }, period: 'monthly', amount_usd: 10 }, admin)
    ).body.id
    ids.betaBudget = (
      await call('POST', '/v1/billing/budgets', { name: 'beta', scope: { kind: 'team', id: BETA }, period: 'monthly', amount_usd: 10 }, admin)
    ).body.id
    ids.betaReservation = (await call('POST', '/v1/reservations', { team_id: BETA, estimate_usd: 0.5 }, admin)).body.id
    ids.betaKey = (await call('POST', '/v1/keys', { name: 'beta-batch', team_id: BETA }, admin)).body.id
  })
  afterAll(async () => t.close())

  // [what, method, url, body, {role: expected status}]
  const matrix: Array<[string, string, () => string, () => unknown, Record<string, number>]> = [
    [
      'fund own team',
      'POST',
      () => '/v1/wallets/allocate',
      () => ({ team_id: ALPHA, amount: 1, currency: 'USD' }),
      { admin: 201, alpha_admin: 201, beta_admin: 403, viewer: 403, alpha_viewer: 403 },
    ],
    [
      'fund the org',
      'POST',
      () => '/v1/wallets/allocate',
      () => ({ org_id: 'default', amount: 1, currency: 'USD' }),
      { admin: 201, alpha_admin: 403, viewer: 403 },
    ],
    [
      'fund a user of another team',
      'POST',
      () => '/v1/wallets/allocate',
      () => ({ user_id: 'u_b', team_id: BETA, amount: 1, currency: 'USD' }),
      { admin: 201, alpha_admin: 403, beta_admin: 201, viewer: 403 },
    ],
    [
      'create an org-wide budget',
      'POST',
      () => '/v1/billing/budgets',
      () => ({ name: `org ${Math.random()}`, scope: { kind: 'endpoint', id: 'chat' }, period: 'daily', amount_usd: 1 }),
      { admin: 201, alpha_admin: 403, viewer: 403 },
    ],
    [
      'move own budget onto another team',
      'PATCH',
      () => `/v1/billing/budgets/${ids.alphaBudget}`,
      () => ({ scope: { kind: 'team', id: BETA }, amount_usd: 0.000001, hard_limit: true }),
      { alpha_admin: 403, viewer: 403 },
    ],
    [
      'move own budget onto the org',
      'PATCH',
      () => `/v1/billing/budgets/${ids.alphaBudget}`,
      () => ({ scope: { kind: 'org', id: 'default' } }),
      { alpha_admin: 403 },
    ],
    [
      "change another team's budget",
      'PATCH',
      () => `/v1/billing/budgets/${ids.betaBudget}`,
      () => ({ amount_usd: 1 }),
      { alpha_admin: 404, alpha_viewer: 404 },
    ],
    ["delete another team's budget", 'DELETE', () => `/v1/billing/budgets/${ids.betaBudget}`, () => undefined, { alpha_admin: 404, viewer: 403 }],
    [
      "settle another team's reservation",
      'POST',
      () => `/v1/reservations/${ids.betaReservation}/settle`,
      () => ({ actual_usd: 0 }),
      { alpha_admin: 404, alpha_viewer: 404 },
    ],
    ["revoke another team's key", 'DELETE', () => `/v1/keys/${ids.betaKey}`, () => undefined, { alpha_admin: 404, viewer: 403 }],
    ['create a key for another team', 'POST', () => '/v1/keys', () => ({ name: 'x', team_id: BETA }), { alpha_admin: 403, viewer: 403 }],
    ['create an admin token', 'POST', () => '/v1/admin-tokens', () => ({ name: 'x', role: 'viewer' }), { alpha_admin: 403, viewer: 403 }],
    ['list admin tokens', 'GET', () => '/v1/admin-tokens', () => undefined, { admin: 200, alpha_admin: 403, viewer: 403 }],
    [
      'set notification preferences',
      'PUT',
      () => '/v1/notification-preferences',
      () => ({ subject: { type: 'role', id: 'admin' }, types: {} }),
      { admin: 200, alpha_admin: 403, viewer: 403 },
    ],
    ['read usage', 'GET', () => '/v1/usage', () => undefined, { admin: 200, alpha_admin: 200, viewer: 200, alpha_viewer: 200 }],
  ]

  for (const [what, method, url, body, expected] of matrix) {
    for (const [role, status] of Object.entries(expected)) {
      it(`${role}: ${what} → ${status}`, async () => {
        const res = await call(method, url(), body(), tokens[role]!)
        expect(res.status, JSON.stringify(res.body)).toBe(status)
      })
    }
  }

  it('a team_admin token needs a team; an admin token cannot have one', async () => {
    const noTeam = await call('POST', '/v1/admin-tokens', { name: 'x', role: 'team_admin' }, tokens.admin!)
    expect(noTeam.status).toBe(400)
    expect(noTeam.body.error.issues).toEqual([expect.objectContaining({ path: 'team_id' })])
    expect((await call('POST', '/v1/admin-tokens', { name: 'x', role: 'admin', team_id: ALPHA }, tokens.admin!)).status).toBe(400)
  })

  it('each team reads only its own wallets, budgets, keys and tickets', async () => {
    for (const [token, team] of [
      ['alpha_admin', ALPHA],
      ['alpha_viewer', ALPHA],
      ['beta_admin', BETA],
    ] as const) {
      const wallets = (await call('GET', '/v1/wallets', undefined, tokens[token]!)).body.data as Array<{ team_id: string | null }>
      expect(wallets.length).toBeGreaterThan(0)
      expect(wallets.every((w) => w.team_id === team)).toBe(true)
      const budgets = (await call('GET', '/v1/billing/budgets', undefined, tokens[token]!)).body.data as Array<{ scope: { id: string } }>
      expect(budgets.every((b) => b.scope.id === team)).toBe(true)
      const keys = (await call('GET', '/v1/keys', undefined, tokens[token]!)).body.data as Array<{ team_id: string | null }>
      expect(keys.every((k) => k.team_id === team)).toBe(true)
    }
  })

  it('a revoked admin token authenticates nobody; a revoked consumer key is refused at once', async () => {
    const created = await call('POST', '/v1/admin-tokens', { name: 'temp', role: 'viewer' }, tokens.admin!)
    expect((await call('GET', '/v1/usage', undefined, created.body.token)).status).toBe(200)
    expect((await call('DELETE', `/v1/admin-tokens/${created.body.id}`, undefined, tokens.admin!)).body.revoked_at).not.toBeNull()
    expect((await call('GET', '/v1/usage', undefined, created.body.token)).status).toBe(401)
    const key = await call('POST', '/v1/keys', { name: 'temp', team_id: ALPHA }, tokens.admin!)
    const use = () =>
      t.app.fastify.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: `Bearer ${key.body.key}`, 'content-type': 'application/json' },
        payload: chatBody('hi', { max_tokens: 5 }),
      })
    expect((await use()).statusCode).toBe(200)
    expect((await call('DELETE', `/v1/keys/${key.body.id}`, undefined, tokens.alpha_admin!)).status).toBe(200)
    expect((await use()).statusCode).toBe(401)
    const listed = (await call('GET', '/v1/keys', undefined, tokens.admin!)).body.data.find((k: { id: string }) => k.id === key.body.id)
    expect(listed).toMatchObject({ revoked_at: expect.any(String) })
    expect(JSON.stringify(listed)).not.toContain(key.body.key)
  })

  it("notifications: a team_admin reads its team's only; a viewer cannot mark read", async () => {
    const { newNotification } = await import('../../src/notify/index.js')
    const now = Date.now()
    const alphaNote = newNotification('budget.threshold', 'default', ALPHA, { scope: `team:${ALPHA}` }, now)
    const betaNote = newNotification('budget.threshold', 'default', BETA, { scope: `team:${BETA}` }, now + 1)
    for (const n of [alphaNote, betaNote]) await t.app.stores.notify.enqueue(n, [], now)
    const seen = (await call('GET', '/v1/notifications', undefined, tokens.alpha_admin!)).body.data.map((n: { id: string }) => n.id)
    expect(seen).toContain(alphaNote.id)
    expect(seen).not.toContain(betaNote.id)
    expect((await call('POST', `/v1/notifications/${betaNote.id}/read`, undefined, tokens.alpha_admin!)).status).toBe(404)
    expect((await call('POST', `/v1/notifications/${alphaNote.id}/read`, undefined, tokens.viewer!)).status).toBe(403)
    expect((await call('POST', `/v1/notifications/${alphaNote.id}/read`, undefined, tokens.alpha_admin!)).status).toBe(200)
  })
})

describe("attribution: a key cannot spend another user's or team's money", () => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await startTestGateway({ yaml: config() })
    const fund = (body: object) => gw.admin('POST', '/v1/wallets/allocate', { amount: 1, currency: 'USD', ...body })
    await fund({ team_id: ALPHA })
    await fund({ team_id: BETA })
    await fund({ user_id: 'alice', team_id: ALPHA })
    await fund({ user_id: 'bob', team_id: ALPHA })
    await fund({ user_id: 'carol', team_id: BETA })
  })
  afterAll(async () => gw.close())

  async function payer(key: string, header: string | undefined, bodyUser: string | undefined): Promise<{ status: number; wallet: string | null }> {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(header ? { 'x-tollgate-user': header } : {}) },
      body: chatBody('hi', { max_tokens: 5, ...(bodyUser ? { user: bodyUser } : {}) }),
    })
    await res.text()
    return { status: res.status, wallet: res.headers.get('x-tollgate-wallet') }
  }

  it.each([
    // key, header user, body user → who pays
    ['team key, no user', ALPHA_KEY, undefined, undefined, `team:${ALPHA}`],
    ["team key names its team's user (header)", ALPHA_KEY, 'alice', undefined, 'user:alice'],
    ["team key names its team's user (body)", ALPHA_KEY, undefined, 'alice', 'user:alice'],
    ["team key names another team's user (header)", ALPHA_KEY, 'carol', undefined, `team:${ALPHA}`],
    ["team key names another team's user (body)", ALPHA_KEY, undefined, 'carol', `team:${ALPHA}`],
    ["other team's key names alice", BETA_KEY, 'alice', undefined, `team:${BETA}`],
    ["bob's key, no user", BOB_KEY, undefined, undefined, 'user:bob'],
    ["bob's key names carol", BOB_KEY, 'carol', undefined, 'user:bob'],
    ["bob's key names alice in the body", BOB_KEY, undefined, 'alice', 'user:bob'],
    ['header beats body, both of the team', ALPHA_KEY, 'alice', 'bob', 'user:alice'],
  ])('%s → %s pays', async (_name, key, header, bodyUser, expected) => {
    expect(await payer(key, header, bodyUser)).toEqual({ status: 200, wallet: expected })
  })

  it('a key that forbids naming users refuses a call that names one, and serves one that does not', async () => {
    expect((await payer(LOCKED_KEY, 'alice', undefined)).status).toBe(400)
    expect((await payer(LOCKED_KEY, undefined, 'alice')).status).toBe(400)
    expect(await payer(LOCKED_KEY, undefined, undefined)).toEqual({ status: 200, wallet: `team:${ALPHA}` })
  })

  it("a key a team_admin binds to another team's user neither spends that user's wallet nor its org-wide budget", async () => {
    const token = (await gw.admin('POST', '/v1/admin-tokens', { name: 'alpha admin', role: 'team_admin', team_id: ALPHA })).body.token
    const createKey = async (body: object, bearer: string) => {
      const res = await fetch(`${gw.url}/v1/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      expect(res.status).toBe(201)
      return ((await res.json()) as { key: string }).key
    }
    const carolCap = await gw.admin('POST', '/v1/billing/budgets', {
      name: 'carol everywhere',
      scope: { kind: 'user', id: 'carol' },
      period: 'daily',
      amount_usd: 0.000001,
      hard_limit: true,
    })
    expect(carolCap.status).toBe(201)
    const carolWallet = async () =>
      ((await gw.admin('GET', '/v1/wallets')).body.data as Array<{ scope: string; spent_micros: number }>).find((w) => w.scope === 'user:carol')!.spent_micros
    const carolSpent = await carolWallet()
    const carolCapSpend = async () => (await gw.admin('GET', `/v1/billing/budgets/${carolCap.body.id}`)).body.posture.spend_usd
    // Created mid-period, the budget starts from what was already spent as carol today.
    const carolCapSpent = await carolCapSpend()

    const alphaAsCarol = await createKey({ name: 'alpha-carol', team_id: ALPHA, user_id: 'carol' }, token)
    expect(await payer(alphaAsCarol, undefined, undefined)).toEqual({ status: 200, wallet: `team:${ALPHA}` })
    expect(await carolWallet()).toBe(carolSpent)
    expect(await carolCapSpend()).toBe(carolCapSpent)
    // Its own team's user is still that user: alice's wallet pays.
    expect(await payer(await createKey({ name: 'alpha-alice', team_id: ALPHA, user_id: 'alice' }, token), undefined, undefined)).toEqual({
      status: 200,
      wallet: 'user:alice',
    })
    // An admin's key bound to carol is carol anywhere in the org: her wallet, stopped by her cap.
    const orgCarol = await createKey({ name: 'org-carol', team_id: ALPHA, user_id: 'carol' }, gw.adminToken)
    expect((await payer(orgCarol, undefined, undefined)).status).toBe(429)
    expect((await gw.admin('DELETE', `/v1/billing/budgets/${carolCap.body.id}`)).status).toBe(204)
    expect(await payer(orgCarol, undefined, undefined)).toEqual({ status: 200, wallet: 'user:carol' })
  })

  it("a named user of another team cannot be counted against that team's user budget", async () => {
    const budget = await gw.admin('POST', '/v1/billing/budgets', {
      name: 'carol cap',
      scope: { kind: 'user', id: 'carol', team_id: BETA },
      period: 'daily',
      amount_usd: 0.000001,
      hard_limit: true,
    })
    expect(budget.status).toBe(201)
    // Alpha naming carol neither pays from carol's wallet nor is stopped by (or spends down) carol's budget.
    expect(await payer(ALPHA_KEY, 'carol', undefined)).toEqual({ status: 200, wallet: `team:${ALPHA}` })
    const posture = await gw.admin('GET', `/v1/billing/budgets/${budget.body.id}`)
    expect(posture.body.posture.spend_usd).toBe(0)
  })
})

describe('cost tickets: approving funds only what the approver may fund', () => {
  let gw: TestGateway
  afterEach(async () => gw.close())

  async function bearer(token: string, method: string, path: string, body?: unknown) {
    const res = await fetch(`${gw.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: res.status, body: (await res.json()) as any }
  }
  const chat = (key: string) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: chatBody('hello', { max_tokens: 50 }),
    }).then(async (res) => {
      await res.text()
      return res.status
    })

  it("a team_admin cannot approve its team's ticket into the org wallet; an admin can", async () => {
    gw = await startTestGateway({ yaml: config() })
    expect((await gw.admin('POST', '/v1/wallets/allocate', { org_id: 'default', amount: '0.000001', currency: 'USD' })).status).toBe(201)
    const betaAdmin = (await gw.admin('POST', '/v1/admin-tokens', { name: 'beta admin', role: 'team_admin', team_id: BETA })).body.token
    expect(await chat(BETA_KEY)).toBe(429)
    const [ticket] = (await bearer(betaAdmin, 'GET', '/v1/cost-tickets')).body.data
    expect(ticket).toMatchObject({ scope: 'org:default', team_id: BETA, status: 'pending' })
    const orgAllocated = async () =>
      ((await gw.admin('GET', '/v1/wallets')).body.data as Array<{ scope: string; allocated_micros: number }>).find((w) => w.scope === 'org:default')!
        .allocated_micros
    for (const body of [{ amount: 100_000 }, {}]) {
      const approve = await bearer(betaAdmin, 'POST', `/v1/cost-tickets/${ticket.id}/approve`, body)
      expect(approve.status).toBe(403)
      expect(approve.body.error.message).toContain('org:default')
    }
    expect(await orgAllocated()).toBe(1)
    expect((await gw.admin('GET', '/v1/cost-tickets')).body.data[0].status).toBe('pending')
    expect((await gw.admin('POST', `/v1/cost-tickets/${ticket.id}/approve`, { amount: 1 })).status).toBe(200)
    expect(await orgAllocated()).toBe(1_000_001)
  })

  it("a consumer named like another team's joins its own team's ticket, never the other team's", async () => {
    gw = await startTestGateway({ yaml: config() })
    expect((await gw.admin('POST', '/v1/wallets/allocate', { org_id: 'default', amount: '0.000001', currency: 'USD' })).status).toBe(201)
    const alphaAdmin = (await gw.admin('POST', '/v1/admin-tokens', { name: 'alpha admin', role: 'team_admin', team_id: ALPHA })).body.token
    const betaAdmin = (await gw.admin('POST', '/v1/admin-tokens', { name: 'beta admin', role: 'team_admin', team_id: BETA })).body.token
    const lookalike = (await bearer(alphaAdmin, 'POST', '/v1/keys', { name: 'beta-svc', team_id: ALPHA })).body.key
    expect(await chat(lookalike)).toBe(429)
    expect(await chat(BETA_KEY)).toBe(429)
    const alphaTickets = (await bearer(alphaAdmin, 'GET', '/v1/cost-tickets')).body.data
    const betaTickets = (await bearer(betaAdmin, 'GET', '/v1/cost-tickets')).body.data
    expect(alphaTickets).toEqual([expect.objectContaining({ scope: 'org:default', team_id: ALPHA, consumer: 'beta-svc', refused_count: 1 })])
    expect(betaTickets).toEqual([expect.objectContaining({ scope: 'org:default', team_id: BETA, consumer: 'beta-svc', refused_count: 1 })])
  })

  it("a team_admin approves its own team's wallet ticket", async () => {
    gw = await startTestGateway({ yaml: config() })
    await gw.allocate(ALPHA, 0.000001)
    const alphaAdmin = (await gw.admin('POST', '/v1/admin-tokens', { name: 'alpha admin', role: 'team_admin', team_id: ALPHA })).body.token
    expect(await chat(ALPHA_KEY)).toBe(429)
    const [ticket] = (await bearer(alphaAdmin, 'GET', '/v1/cost-tickets')).body.data
    expect(ticket).toMatchObject({ scope: `team:${ALPHA}` })
    expect((await bearer(alphaAdmin, 'POST', `/v1/cost-tickets/${ticket.id}/approve`, { amount: 1 })).status).toBe(200)
    expect(await chat(ALPHA_KEY)).toBe(200)
  })
})

describe('one incident, one alert', () => {
  const open: TestGateway[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((g) => g.close()))
  })

  it('a 1,000-refusal burst makes one ticket, one notice per channel, and one wallet.exhausted', { timeout: 60_000 }, async () => {
    const gw = await startTestGateway({
      yaml: config({
        notifications: {
          channels: [
            { id: 'ops-hook', type: 'webhook', url: 'http://127.0.0.1:9/hook' },
            { id: 'ops-slack', type: 'slack', webhook_url: 'http://127.0.0.1:9/slack' },
          ],
        },
      }),
    })
    open.push(gw)
    expect((await gw.admin('POST', '/v1/wallets/allocate', { team_id: ALPHA, amount: '0.001', currency: 'USD' })).status).toBe(201)
    const statuses: number[] = []
    const send = () =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ALPHA_KEY}`, 'content-type': 'application/json' },
        body: chatBody('runaway', { max_tokens: 50 }),
      }).then(async (res) => {
        await res.text()
        statuses.push(res.status)
      })
    for (let i = 0; i < 1_000; i += 100) await Promise.all(Array.from({ length: 100 }, send))
    expect(statuses.filter((s) => s === 429)).toHaveLength(1_000)

    const tickets = (await gw.admin('GET', '/v1/cost-tickets')).body.data
    expect(tickets).toEqual([expect.objectContaining({ status: 'pending', scope: `team:${ALPHA}`, consumer: 'alpha-svc', refused_count: 1_000 })])
    const inbox = (await gw.admin('GET', '/v1/notifications?limit=200')).body.data as Array<{ id: string; type: string }>
    const byType = (type: string) => inbox.filter((n) => n.type === type)
    expect(byType('ticket.created')).toHaveLength(1)
    expect(byType('wallet.exhausted')).toHaveLength(1)
    expect(inbox).toHaveLength(2)
    for (const notice of inbox) {
      expect((await gw.app.stores.notify.itemsOf(notice.id)).map((item) => item.channelId).sort()).toEqual(['ops-hook', 'ops-slack'])
    }
    // What joined the ticket later goes out once as a digest, after the quiet time (15 minutes).
    expect(await gw.app.tickets.sendDigests(10)).toBe(0)
    const later = Date.now() + 16 * 60_000
    const due = await gw.app.stores.tickets.claimDigests(later, 15 * 60_000, 10)
    expect(due).toEqual([expect.objectContaining({ newRefusals: 999, ticket: expect.objectContaining({ id: tickets[0].id, refusedCount: 1_000 }) })])
    expect(await gw.app.stores.tickets.claimDigests(later + 1, 15 * 60_000, 10)).toEqual([])
  })

  it('a hard budget that stops spend short of 100% still announces the block, once, on the first refusal', async () => {
    const gw = await startTestGateway({ yaml: config() })
    open.push(gw)
    expect((await gw.admin('POST', '/v1/wallets/allocate', { team_id: ALPHA, amount: 10, currency: 'USD' })).status).toBe(201)
    const budget = await gw.admin('POST', '/v1/billing/budgets', {
      name: 'small',
      scope: { kind: 'team', id: ALPHA },
      period: 'daily',
      amount_usd: 0.2,
      hard_limit: true,
    })
    expect(budget.status).toBe(201)
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ALPHA_KEY}`, 'content-type': 'application/json' },
        body: chatBody('hello there', { max_tokens: 50 }),
      })
      await res.text()
      statuses.push(res.status)
    }
    expect(statuses).toContain(429)
    const posture = (await gw.admin('GET', `/v1/billing/budgets/${budget.body.id}`)).body.posture
    expect(posture.percent).toBeLessThan(100)
    await new Promise((r) => setTimeout(r, 200))
    const blocked = (await gw.admin('GET', '/v1/notifications')).body.data.filter((n: { type: string }) => n.type === 'budget.blocked')
    expect(blocked).toEqual([expect.objectContaining({ data: expect.objectContaining({ budget_id: budget.body.id, reason: 'refused' }) })])
  })
})
