/**
 * Strings callers give us are shown later in the console, CLI tables, CSV exports, Slack and email,
 * so a control character (U+0000–U+001F, U+007F) is refused where it comes in: an admin API body
 * answers 400 `invalid_request` naming the field and creates nothing (the list endpoints read as
 * before); a proxied call is refused before any reservation or upstream call; an ingested event
 * is rejected and not stored. Free text (a wallet description, a ticket note) may hold line
 * breaks and tabs, and nothing else.
 *
 * How: `buildTestApp` (SQLite in a temp dir, mock upstream) and `fastify.inject`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aConfig, buildTestApp, CONSUMER_KEY, TEAM, type TestApp } from '../../test/support/gateway.js'

const ESC = '\u001b'
/** A consumer whose team has no wallet: its calls are refused and open a cost ticket. */
const BROKE_KEY = 'tg_test_hygiene_broke_key_0123456789'

let t: TestApp

async function request(method: 'GET' | 'POST' | 'PATCH' | 'PUT', url: string, payload?: unknown, headers: Record<string, string> = {}) {
  const response = await t.app.fastify.inject({
    method,
    url,
    headers: { authorization: `Bearer ${t.adminToken}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  })
  return { status: response.statusCode, body: (response.body === '' ? undefined : response.json()) as any }
}

async function list(url: string): Promise<unknown> {
  const reply = await request('GET', url)
  expect(reply.status).toBe(200)
  return reply.body
}

/** Everything a refused write could have changed, as users read it. */
async function snapshot(): Promise<unknown> {
  return {
    budgets: await list('/v1/billing/budgets'),
    wallets: await list('/v1/wallets'),
    keys: await list('/v1/keys'),
    tokens: await list('/v1/admin-tokens'),
    tickets: await list('/v1/cost-tickets'),
    exports: await list('/v1/export-jobs'),
    preferences: await list('/v1/notification-preferences'),
    events: await t.events(),
    upstreamCalls: t.mock.requests.length,
  }
}

/** A 400 `invalid_request` whose message and issue name `field`, and nothing a user can see changed. */
async function expectRefused(field: string, send: () => Promise<{ status: number; body: any }>) {
  const before = await snapshot()
  const reply = await send()
  expect(reply.status, JSON.stringify(reply.body)).toBe(400)
  expect(reply.body.error.code).toBe('invalid_request')
  expect(reply.body.error.message).toContain(`${field}: must not contain control characters`)
  expect(reply.body.error.issues).toContainEqual({ path: field, message: expect.stringContaining('control characters') })
  expect(await snapshot()).toEqual(before)
}

beforeAll(async () => {
  t = await buildTestApp({
    yaml: aConfig({
      walletEnforcement: true,
      consumers: [
        { name: 'svc', apiKey: CONSUMER_KEY, teamId: TEAM },
        { name: 'broke', apiKey: BROKE_KEY, teamId: 'team_broke' },
      ],
    }),
  })
  expect((await request('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 5, currency: 'USD' })).status).toBe(201)
})
afterAll(async () => {
  await t?.close()
})

describe('the admin API refuses control characters in what it stores', () => {
  it('budgets: a name, a scope id or a channel id; a rename to one leaves the budget as it was', async () => {
    await expectRefused('name', () => request('POST', '/v1/billing/budgets', { name: `Ops${ESC}[2J`, period: 'monthly', amount_usd: 10 }))
    await expectRefused('scope.id', () =>
      request('POST', '/v1/billing/budgets', { name: 'Ops', period: 'monthly', amount_usd: 10, scope: { kind: 'user', id: 'bob\u0000' } }),
    )
    await expectRefused('channels.0', () => request('POST', '/v1/billing/budgets', { name: 'Ops', period: 'monthly', amount_usd: 10, channels: ['sl\rack'] }))
    const created = await request('POST', '/v1/billing/budgets', { name: 'Ops', period: 'monthly', amount_usd: 10 })
    expect(created.status).toBe(201)
    await expectRefused('name', () => request('PATCH', `/v1/billing/budgets/${created.body.id}`, { name: 'Ops\nApproved: yes' }))
  })

  it('wallets: a scope id; a description may hold line breaks and tabs, not other control characters', async () => {
    await expectRefused('team_id', () => request('POST', '/v1/wallets/allocate', { team_id: `team${ESC}]8;;`, amount: 1, currency: 'USD' }))
    await expectRefused('scope', () => request('POST', '/v1/wallets/allocate', { scope: 'team:a\u0007', amount: 1, currency: 'USD' }))
    await expectRefused('description', () =>
      request('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency: 'USD', description: 'top-up\r\nfor Q3' }),
    )
    const allowed = await request('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency: 'USD', description: 'top-up\nfor Q3:\tops' })
    expect(allowed.status, JSON.stringify(allowed.body)).toBe(201)
    const ledger = await request('GET', `/v1/wallets/${allowed.body.id}/ledger`)
    expect(ledger.body.data.map((e: { description: string | null }) => e.description)).toContain('top-up\nfor Q3:\tops')
  })

  it('consumer keys and admin tokens: a name, an id, an environment or a tag', async () => {
    await expectRefused('name', () => request('POST', '/v1/keys', { name: 'billing\u007f', team_id: TEAM }))
    await expectRefused('agent_id', () => request('POST', '/v1/keys', { name: 'billing', team_id: TEAM, agent_id: 'bot\tone' }))
    await expectRefused('environment', () => request('POST', '/v1/keys', { name: 'billing', team_id: TEAM, environment: `prod${ESC}` }))
    await expectRefused('endpoint_tag', () => request('POST', '/v1/keys', { name: 'billing', team_id: TEAM, endpoint_tag: '/chat\nx' }))
    await expectRefused('name', () => request('POST', '/v1/admin-tokens', { name: `ci${ESC}[8m`, role: 'viewer' }))
  })

  it('reservations: a label such as agent_id is refused before anything is reserved', async () => {
    await expectRefused('agent_id', () => request('POST', '/v1/reservations', { team_id: TEAM, estimate_usd: 1, agent_id: 'agent\u0001' }))
  })

  it('export jobs and notification preferences: ids', async () => {
    await expectRefused('scope.team_id', () =>
      request('POST', '/v1/export-jobs', { type: 'events', format: 'csv', date_from: '2026-01-01', date_to: '2026-02-01', scope: { team_id: `t${ESC}` } }),
    )
    await expectRefused('subject.id', () => request('PUT', '/v1/notification-preferences', { subject: { type: 'user', id: 'bob\u0008' }, types: {} }))
    await expectRefused('types.budget.threshold.0', () =>
      request('PUT', '/v1/notification-preferences', { subject: { type: 'user', id: 'bob' }, types: { 'budget.threshold': ['ops\u0000'] } }),
    )
  })

  it('replays: a name in the policy, with its path', async () => {
    const reply = await request('POST', '/v1/replays', {
      from: '2026-01-01',
      to: '2026-01-02',
      policy: { budgets: [{ name: `Ops${ESC}[31m`, scope: { kind: 'team', id: TEAM }, period: 'monthly', amount_usd: 10 }] },
    })
    expect(reply.status, JSON.stringify(reply.body)).toBe(400)
    expect(reply.body.error.code).toBe('invalid_request')
    expect(reply.body.error.message).toContain('policy.budgets[0].name: must not contain control characters (found U+001B)')
  })

  it('cost tickets: a note may hold line breaks and tabs; any other control character leaves the ticket pending', async () => {
    const refused = await request(
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      { authorization: `Bearer ${BROKE_KEY}` },
    )
    expect(refused.status).toBe(429)
    const ticketId = refused.body.error.ticket_id as string
    expect(ticketId).toBeTruthy()
    await expectRefused('note', () => request('POST', `/v1/cost-tickets/${ticketId}/deny`, { note: `no${ESC}[1A` }))
    await expectRefused('note', () => request('POST', `/v1/cost-tickets/${ticketId}/approve`, { note: 'ok\u000b' }))
    const denied = await request('POST', `/v1/cost-tickets/${ticketId}/deny`, { note: 'Not this quarter.\n\tAsk again in July.' })
    expect(denied.status, JSON.stringify(denied.body)).toBe(200)
    expect(denied.body.note).toBe('Not this quarter.\n\tAsk again in July.')
  })
})

describe('a proxied call with a control character in its attribution is refused before anything happens', () => {
  const chat = (headers: Record<string, string>, extra: Record<string, unknown> = {}) =>
    request(
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...extra },
      { authorization: `Bearer ${CONSUMER_KEY}`, ...headers },
    )

  it.each([
    ['x-tollgate-user', 'bob\tadmin'],
    ['x-tollgate-agent', 'agent\t1'],
    ['x-tollgate-endpoint', '/chat\tx'],
    ['x-tollgate-prompt-version', 'v1\tv2'],
  ])('%s (a tab gets through Node’s header parser)', async (name, value) => {
    const before = await snapshot()
    const reply = await chat({ [name]: value })
    expect(reply.status, JSON.stringify(reply.body)).toBe(400)
    expect(reply.body.error.code).toBe('invalid_request')
    expect(reply.body.error.message).toContain(`${name} must not contain control characters (found U+0009)`)
    expect(await snapshot()).toEqual(before)
  })

  it('the body’s "user" field; the same call without it is served and recorded', async () => {
    const before = await snapshot()
    const reply = await chat({ 'x-tollgate-agent': 'agent 1' }, { user: `carol${ESC}[2K` })
    expect(reply.status, JSON.stringify(reply.body)).toBe(400)
    expect(reply.body.error.code).toBe('invalid_request')
    expect(reply.body.error.message).toContain('"user" must not contain control characters (found U+001B)')
    expect(await snapshot()).toEqual(before)
    const served = await chat({ 'x-tollgate-agent': 'agent 1' }, { user: 'carol' })
    expect(served.status, JSON.stringify(served.body)).toBe(200)
    expect((await t.events()).at(-1)).toMatchObject({ agent_id: 'agent 1', user_id: 'carol' })
  })
})

describe('characters that reorder or hide text are refused too, letters of any script are not', () => {
  it.each([
    ['a right-to-left override', 'carol\u202Egpj.exe', 'U+202E'],
    ['a C1 escape (CSI)', 'carol\u009b2J', 'U+009B'],
    ['a line separator', 'carol\u2028bob', 'U+2028'],
    ['a directional isolate', 'carol\u2066x', 'U+2066'],
  ])('%s in the body’s "user" is a 400, and nothing happens', async (_, user, found) => {
    const before = await snapshot()
    const reply = await request(
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], user },
      { authorization: `Bearer ${CONSUMER_KEY}` },
    )
    expect(reply.status, JSON.stringify(reply.body)).toBe(400)
    expect(reply.body.error.message).toContain(`"user" must not contain control characters (found ${found})`)
    expect(await snapshot()).toEqual(before)
  })

  it('a name in another script, with accents, is served and recorded as sent', async () => {
    const user = 'Zoë 日本語 עברית'
    const reply = await request(
      'POST',
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], user },
      { authorization: `Bearer ${CONSUMER_KEY}` },
    )
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    expect((await t.events()).at(-1)).toMatchObject({ user_id: user })
  })
})

describe('ingestion rejects an event with a control character in a field', () => {
  const event = (fields: Record<string, unknown>) => ({
    externalRequestId: 'hyg-1',
    provider: 'openai',
    model: 'gpt-4o-mini',
    inputTokens: 10,
    outputTokens: 5,
    ...fields,
  })

  it('one event: 400 naming the field, nothing stored', async () => {
    const before = await snapshot()
    const reply = await request('POST', '/v1/events', event({ userId: `dave${ESC}[2J` }), { authorization: `Bearer ${CONSUMER_KEY}` })
    expect(reply.status, JSON.stringify(reply.body)).toBe(400)
    expect(reply.body.error).toMatchObject({ code: 'invalid_request', field: 'userId' })
    expect(reply.body.error.message).toContain('userId: must not contain control characters (found U+001B)')
    expect(await snapshot()).toEqual(before)
  })

  it('a batch: only the event with the control character is rejected', async () => {
    const reply = await request(
      'POST',
      '/v1/events',
      { events: [event({ externalRequestId: 'hyg-2', endpointTag: '/chat' }), event({ externalRequestId: 'hyg-3', endpointTag: '/ch\nat' })] },
      { authorization: `Bearer ${CONSUMER_KEY}` },
    )
    expect(reply.status, JSON.stringify(reply.body)).toBe(207)
    expect(reply.body).toMatchObject({ created: 1, rejected: 1 })
    expect(reply.body.results[1]).toMatchObject({ status: 'rejected', error: { code: 'invalid_request', field: 'endpointTag' } })
    const stored = (await request('GET', '/v1/usage/events?limit=1000')).body.data.map((e: { external_request_id: string | null }) => e.external_request_id)
    expect(stored).toContain('hyg-2')
    expect(stored).not.toContain('hyg-3')
  })
})
