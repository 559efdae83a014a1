/**
 * The admin API refuses bad input with a clear 4xx and writes nothing: every wallet, ticket and
 * reservation endpoint is called with bad amounts, wrong
 * currency, two scopes, unknown keys, unknown ids, no/unknown token and a role that lacks the
 * right. After each bad call the wallets and their ledgers read exactly as before.
 *
 * How: `buildApp()` on SQLite in a temp dir, `app.inject()` (no socket). A cost ticket is made the
 * way users make one: a proxied call that no wallet can pay.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { createLogger } from '../observability/logger.js'

const ADMIN = 'tg_admin_api_test_token_0123456789'
const CONSUMER_KEY = 'tg_admin_api_test_consumer_abcdef'
const TEAM = 'team_alpha'
const OTHER_TEAM = 'team_beta'
/** A consumer whose team has no wallet: every call it makes is refused and opens a ticket. */
const UNFUNDED_KEY = 'tg_admin_api_test_unfunded_fedcba'
const UNFUNDED_TEAM = 'team_gamma'

interface Reply {
  status: number
  body: any
}

let app: App
let dir: string

/** `token: null` sends no Authorization header. */
async function call(method: 'GET' | 'POST', url: string, body?: unknown, token: string | null = ADMIN): Promise<Reply> {
  const response = await app.fastify.inject({
    method,
    url,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
  })
  return { status: response.statusCode, body: response.body.length > 0 ? response.json() : undefined }
}

/** Everything a user could read about money: every wallet and every ledger entry. */
async function moneySnapshot(): Promise<unknown> {
  const wallets = await call('GET', '/v1/wallets')
  expect(wallets.status).toBe(200)
  const ledgers: Record<string, unknown> = {}
  for (const w of wallets.body.data as Array<{ id: string }>) {
    const ledger = await call('GET', `/v1/wallets/${w.id}/ledger?limit=1000`)
    expect(ledger.status).toBe(200)
    ledgers[w.id] = ledger.body.data
  }
  return { wallets: wallets.body.data, ledgers }
}

async function newToken(role: 'viewer' | 'team_admin' | 'admin', teamId?: string): Promise<string> {
  const created = await call('POST', '/v1/admin-tokens', { name: `${role}-${teamId ?? 'org'}`, role, ...(teamId === undefined ? {} : { team_id: teamId }) })
  expect(created.status).toBe(201)
  return created.body.token as string
}

/** Expects a 4xx in the admin envelope that names the problem, and no money moved. */
async function expectRefusedWithoutWrites(status: number, code: string, request: () => Promise<Reply>, mentions?: RegExp): Promise<Reply> {
  const before = await moneySnapshot()
  const reply = await request()
  expect(reply.status, JSON.stringify(reply.body)).toBe(status)
  expect(reply.body?.error?.code).toBe(code)
  expect(typeof reply.body?.error?.message).toBe('string')
  if (mentions) expect(reply.body.error.message).toMatch(mentions)
  expect(await moneySnapshot()).toEqual(before)
  return reply
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-admin-api-'))
  const yaml = stringify({
    version: '1',
    storage: { sqlite: join(dir, 'tollgate.sqlite') },
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: [
      { name: 'alpha', api_key: CONSUMER_KEY, wallet_team_id: TEAM },
      { name: 'gamma', api_key: UNFUNDED_KEY, wallet_team_id: UNFUNDED_TEAM },
    ],
    cost_tracking: { enabled: true, wallet_enforcement: true, budget_alerts: [{ threshold_percent: 100, action: 'block' }] },
  })
  const env = { TOLLGATE_ADMIN_TOKEN: ADMIN }
  app = await buildApp(parseConfig(yaml, '<admin-api.test>', { env }), { env, logger: createLogger({ level: 'silent' }) })
  await app.fastify.ready()
  // Two funded wallets so "unchanged" has something to compare.
  expect((await call('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 5, currency: 'USD', description: 'seed' })).status).toBe(201)
  expect((await call('POST', '/v1/wallets/allocate', { team_id: OTHER_TEAM, amount: '2.5', currency: 'USD' })).status).toBe(201)
})

afterAll(async () => {
  await app?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('POST /v1/wallets/allocate', () => {
  it('adds funds and one allocation entry for a valid request (the baseline the refusals are measured against)', async () => {
    const reply = await call('POST', '/v1/wallets/allocate', { user_id: 'u_valid', amount: 0.000001, currency: 'USD', description: 'one micro' })
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({ scope: 'user:u_valid', allocated_micros: 1, available_micros: 1 })
    const ledger = await call('GET', `/v1/wallets/${reply.body.id}/ledger`)
    expect(ledger.body.data).toMatchObject([{ kind: 'allocation', amount_micros: 1, description: 'one micro' }])
  })

  it.each([
    ['negative', -1],
    ['zero', 0],
    ['zero as a string', '0.000000'],
    ['non-numeric string', 'ten dollars'],
    ['boolean', true],
    ['null', null],
    ['an object', { usd: 1 }],
    ['more than 6 decimals (number)', 1.0000001],
    ['more than 6 decimals (string)', '1.0000001'],
    ['exponent notation string', '1e3'],
    ['above the $1e9 limit', 1_000_000_001],
  ])('refuses amount %s with 400 invalid_request naming "amount", ledger unchanged', async (_name, amount) => {
    await expectRefusedWithoutWrites(400, 'invalid_request', () => call('POST', '/v1/wallets/allocate', { team_id: TEAM, amount, currency: 'USD' }), /amount/)
  })

  it('refuses a missing amount', async () => {
    await expectRefusedWithoutWrites(400, 'invalid_request', () => call('POST', '/v1/wallets/allocate', { team_id: TEAM, currency: 'USD' }), /amount/)
  })

  it.each(['EUR', 'usd ', 'BTC', 1])('refuses currency %j with 400 naming currency', async (currency) => {
    await expectRefusedWithoutWrites(400, 'invalid_request', () => call('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency }), /currency/)
  })

  it.each([
    ['team_id and org_id', { team_id: TEAM, org_id: 'default' }],
    ['user_id and org_id', { user_id: 'u1', org_id: 'default' }],
    ['all three', { team_id: TEAM, user_id: 'u1', org_id: 'default' }],
    ['none', {}],
    ['an empty team_id', { team_id: '' }],
  ])('refuses %s (exactly one scope is required)', async (_name, scope) => {
    await expectRefusedWithoutWrites(
      400,
      'invalid_request',
      () => call('POST', '/v1/wallets/allocate', { ...scope, amount: 1, currency: 'USD' }),
      /team_id|user_id|org_id/,
    )
  })

  it('refuses an unknown key in the body and names it', async () => {
    await expectRefusedWithoutWrites(
      400,
      'invalid_request',
      () => call('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency: 'USD', amout: 1 }),
      /amout/,
    )
  })

  it('refuses a body that is not JSON', async () => {
    await expectRefusedWithoutWrites(400, 'invalid_request', () => call('POST', '/v1/wallets/allocate', '{"team_id": "team_alpha", "amount": 1,'))
  })

  it("refuses an org_id that is not the caller's org with 403", async () => {
    await expectRefusedWithoutWrites(403, 'forbidden', () => call('POST', '/v1/wallets/allocate', { org_id: 'someone_else', amount: 1, currency: 'USD' }))
  })
})

describe('authentication and roles', () => {
  const endpoints: Array<[string, 'GET' | 'POST', string, unknown]> = [
    ['allocate', 'POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency: 'USD' }],
    ['list wallets', 'GET', '/v1/wallets', undefined],
    ['wallet ledger', 'GET', '/v1/wallets/wal_x/ledger', undefined],
    ['list tickets', 'GET', '/v1/cost-tickets', undefined],
    ['approve ticket', 'POST', '/v1/cost-tickets/ct_x/approve', {}],
    ['deny ticket', 'POST', '/v1/cost-tickets/ct_x/deny', {}],
    ['reserve', 'POST', '/v1/reservations', { team_id: TEAM, estimate_usd: 0.01 }],
    ['settle', 'POST', '/v1/reservations/rsv_x/settle', { actual_usd: 0 }],
    ['void', 'POST', '/v1/reservations/rsv_x/void', {}],
  ]

  it.each(endpoints)('%s: 401 without a token and with an unknown one', async (_name, method, url, body) => {
    await expectRefusedWithoutWrites(401, 'unauthorized', () => call(method, url, body, null))
    await expectRefusedWithoutWrites(401, 'unauthorized', () => call(method, url, body, 'tg_not_a_real_token'))
  })

  it('a consumer key is not an admin token', async () => {
    await expectRefusedWithoutWrites(401, 'unauthorized', () =>
      call('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency: 'USD' }, CONSUMER_KEY),
    )
  })

  it('a viewer reads wallets but cannot allocate, reserve, approve or create tokens (403)', async () => {
    const viewer = await newToken('viewer')
    expect((await call('GET', '/v1/wallets', undefined, viewer)).status).toBe(200)
    await expectRefusedWithoutWrites(403, 'forbidden', () => call('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency: 'USD' }, viewer))
    await expectRefusedWithoutWrites(403, 'forbidden', () => call('POST', '/v1/reservations', { team_id: TEAM, estimate_usd: 0.5 }, viewer))
    await expectRefusedWithoutWrites(403, 'forbidden', () => call('POST', '/v1/admin-tokens', { name: 'escalate', role: 'admin' }, viewer))
  })

  it("a team_admin allocates to its own team only: another team, another team's user or the org is 403", async () => {
    const teamAdmin = await newToken('team_admin', TEAM)
    await expectRefusedWithoutWrites(
      403,
      'forbidden',
      () => call('POST', '/v1/wallets/allocate', { team_id: OTHER_TEAM, amount: 1, currency: 'USD' }, teamAdmin),
      new RegExp(OTHER_TEAM),
    )
    await expectRefusedWithoutWrites(403, 'forbidden', () => call('POST', '/v1/wallets/allocate', { org_id: 'default', amount: 1, currency: 'USD' }, teamAdmin))
    await expectRefusedWithoutWrites(403, 'forbidden', () =>
      call('POST', '/v1/wallets/allocate', { user_id: 'u_beta', team_id: OTHER_TEAM, amount: 1, currency: 'USD' }, teamAdmin),
    )
    // A user wallet an admin made for another team stays that team's.
    expect((await call('POST', '/v1/wallets/allocate', { user_id: 'u_beta2', team_id: OTHER_TEAM, amount: 1, currency: 'USD' })).status).toBe(201)
    await expectRefusedWithoutWrites(403, 'forbidden', () =>
      call('POST', '/v1/wallets/allocate', { user_id: 'u_beta2', amount: 1, currency: 'USD' }, teamAdmin),
    )
    const own = await call('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency: 'USD' }, teamAdmin)
    expect(own.status).toBe(201)
    // A user wallet it funds belongs to its team.
    const member = await call('POST', '/v1/wallets/allocate', { user_id: 'u_alpha', amount: 1, currency: 'USD' }, teamAdmin)
    expect(member).toMatchObject({ status: 201, body: { scope: 'user:u_alpha', team_id: TEAM } })
    // …and sees only its own team's wallets, not team_beta's.
    const listed = await call('GET', '/v1/wallets', undefined, teamAdmin)
    expect(listed.body.data.map((w: { scope: string }) => w.scope).sort()).toEqual([`team:${TEAM}`, 'user:u_alpha'])
    const beta = (await call('GET', '/v1/wallets')).body.data.find((w: { scope: string }) => w.scope === `team:${OTHER_TEAM}`)
    await expectRefusedWithoutWrites(404, 'not_found', () => call('GET', `/v1/wallets/${beta.id}/ledger`, undefined, teamAdmin))
  })

  it('a team_admin cannot reserve against another team or the org wallet', async () => {
    const teamAdmin = await newToken('team_admin', TEAM)
    await expectRefusedWithoutWrites(403, 'forbidden', () => call('POST', '/v1/reservations', { team_id: OTHER_TEAM, estimate_usd: 0.5 }, teamAdmin))
    await expectRefusedWithoutWrites(403, 'forbidden', () => call('POST', '/v1/reservations', { org_id: 'default', estimate_usd: 0.5 }, teamAdmin))
  })

  it("a team_admin cannot settle or void another team's reservation", async () => {
    const reserved = await call('POST', '/v1/reservations', { team_id: OTHER_TEAM, estimate_usd: 0.25 })
    expect(reserved.status).toBe(201)
    const teamAdmin = await newToken('team_admin', TEAM)
    // Another team's reservation is not even visible: 404, as for an id that does not exist.
    await expectRefusedWithoutWrites(404, 'not_found', () => call('POST', `/v1/reservations/${reserved.body.id}/settle`, { actual_usd: 0 }, teamAdmin))
    await expectRefusedWithoutWrites(404, 'not_found', () => call('POST', `/v1/reservations/${reserved.body.id}/void`, {}, teamAdmin))
    expect((await call('POST', `/v1/reservations/${reserved.body.id}/void`, {})).status).toBe(200)
  })
})

describe('unknown ids are 404 and write nothing', () => {
  it.each([
    ['a wallet ledger', 'GET', '/v1/wallets/wal_does_not_exist/ledger', undefined],
    ['approving a ticket', 'POST', '/v1/cost-tickets/ct_does_not_exist/approve', { amount: 1 }],
    ['denying a ticket', 'POST', '/v1/cost-tickets/ct_does_not_exist/deny', {}],
    ['settling a reservation', 'POST', '/v1/reservations/rsv_does_not_exist/settle', { actual_usd: 0.01 }],
    ['voiding a reservation', 'POST', '/v1/reservations/rsv_does_not_exist/void', {}],
    ['reading a reservation', 'GET', '/v1/reservations/rsv_does_not_exist', undefined],
  ] as Array<[string, 'GET' | 'POST', string, unknown]>)('%s', async (_name, method, url, body) => {
    await expectRefusedWithoutWrites(404, 'not_found', () => call(method, url, body), /does_not_exist/)
  })

  it('a ledger page limit out of range is 400', async () => {
    const wallet = (await call('GET', '/v1/wallets')).body.data[0]
    for (const limit of ['0', '-1', 'abc', '1001', '1.5']) {
      await expectRefusedWithoutWrites(400, 'invalid_request', () => call('GET', `/v1/wallets/${wallet.id}/ledger?limit=${limit}`), /limit/)
    }
  })
})

describe('reservations API', () => {
  it.each([
    ['negative estimate', { team_id: TEAM, estimate_usd: -0.5 }, /estimate_usd/],
    ['zero estimate', { team_id: TEAM, estimate_usd: 0 }, /estimate_usd/],
    ['non-numeric estimate', { team_id: TEAM, estimate_usd: 'lots' }, /estimate_usd/],
    ['7 decimals', { team_id: TEAM, estimate_usd: '0.0000001' }, /estimate_usd/],
    ['two scopes', { team_id: TEAM, org_id: 'default', estimate_usd: 0.5 }, /team_id/],
    ['unknown key', { team_id: TEAM, estimate_usd: 0.5, currency_code: 'USD' }, /currency_code/],
    ['ttl below the minimum', { team_id: TEAM, estimate_usd: 0.5, ttl_ms: 10 }, /ttl_ms/],
  ])('refuses a reservation with %s (400), nothing reserved', async (_name, body, mentions) => {
    await expectRefusedWithoutWrites(400, 'invalid_request', () => call('POST', '/v1/reservations', body), mentions)
  })

  it('refuses a bad settle amount (400) and the reservation stays pending and settleable', async () => {
    const reserved = await call('POST', '/v1/reservations', { team_id: TEAM, estimate_usd: 0.5 })
    expect(reserved.status).toBe(201)
    for (const actual of [-0.01, 'abc', '0.1234567', null]) {
      await expectRefusedWithoutWrites(
        400,
        'invalid_request',
        () => call('POST', `/v1/reservations/${reserved.body.id}/settle`, { actual_usd: actual }),
        /actual_usd/,
      )
    }
    await expectRefusedWithoutWrites(
      400,
      'invalid_request',
      () => call('POST', `/v1/reservations/${reserved.body.id}/settle`, { actual_usd: 0.1, extra: 1 }),
      /extra/,
    )
    expect((await call('GET', `/v1/reservations/${reserved.body.id}`)).body.status).toBe('pending')
    const settled = await call('POST', `/v1/reservations/${reserved.body.id}/settle`, { actual_usd: 0.1 })
    expect(settled.status).toBe(200)
    expect(settled.body).toMatchObject({ result: 'settled', released_usd: 0.4 })
  })

  it('resolving twice is 409 with the first outcome and moves no money', async () => {
    const reserved = await call('POST', '/v1/reservations', { team_id: TEAM, estimate_usd: 0.3 })
    expect((await call('POST', `/v1/reservations/${reserved.body.id}/void`, {})).status).toBe(200)
    const again = await expectRefusedWithoutWrites(409, 'conflict', () => call('POST', `/v1/reservations/${reserved.body.id}/settle`, { actual_usd: 0.3 }))
    expect(again.body.error.result).toBe('already_voided')
    const voidAgain = await expectRefusedWithoutWrites(409, 'conflict', () => call('POST', `/v1/reservations/${reserved.body.id}/void`, {}))
    expect(voidAgain.body.error.result).toBe('already_voided')
  })
})

describe('cost tickets', () => {
  /** A proxied call no wallet can pay opens a ticket (the user-visible way to get one). */
  async function openTicket(): Promise<string> {
    const response = await app.fastify.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${UNFUNDED_KEY}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: 'hello' }] }),
    })
    expect(response.statusCode, response.body).toBe(429)
    const body = response.json()
    expect(body.error).toMatchObject({ code: 'insufficient_quota', scope: `team:${UNFUNDED_TEAM}` })
    return body.error.ticket_id as string
  }

  it('refuses a bad approval (400) and the ticket stays pending; approving twice is 409', async () => {
    const ticketId = await openTicket()
    for (const amount of [-1, 0, 'free', '0.0000001']) {
      await expectRefusedWithoutWrites(400, 'invalid_request', () => call('POST', `/v1/cost-tickets/${ticketId}/approve`, { amount }), /amount/)
    }
    await expectRefusedWithoutWrites(
      400,
      'invalid_request',
      () => call('POST', `/v1/cost-tickets/${ticketId}/approve`, { amount: 1, approver: 'me' }),
      /approver/,
    )
    await expectRefusedWithoutWrites(400, 'invalid_request', () => call('POST', `/v1/cost-tickets/${ticketId}/deny`, { reason: 'no' }), /reason/)
    const viewer = await newToken('viewer')
    await expectRefusedWithoutWrites(403, 'forbidden', () => call('POST', `/v1/cost-tickets/${ticketId}/approve`, { amount: 1 }, viewer))
    const otherTeamAdmin = await newToken('team_admin', OTHER_TEAM)
    await expectRefusedWithoutWrites(404, 'not_found', () => call('POST', `/v1/cost-tickets/${ticketId}/approve`, { amount: 1 }, otherTeamAdmin))
    const pending = await call('GET', '/v1/cost-tickets?status=pending')
    expect(pending.body.data.map((t: { id: string }) => t.id)).toContain(ticketId)

    const approved = await call('POST', `/v1/cost-tickets/${ticketId}/approve`, { amount: 1.5 })
    expect(approved.status).toBe(200)
    expect(approved.body).toMatchObject({ status: 'approved', grant_usd: 1.5 })
    const twice = await expectRefusedWithoutWrites(409, 'conflict', () => call('POST', `/v1/cost-tickets/${ticketId}/approve`, { amount: 1.5 }))
    expect(twice.body.error.status).toBe('approved')
    await expectRefusedWithoutWrites(409, 'conflict', () => call('POST', `/v1/cost-tickets/${ticketId}/deny`, {}))
  })

  it('an unknown status filter is 400', async () => {
    const reply = await call('GET', '/v1/cost-tickets?status=maybe')
    expect(reply.status).toBe(400)
    expect(reply.body.error.message).toMatch(/status/)
  })
})
