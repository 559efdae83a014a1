/**
 * Hard caps as a user of one gateway sees them: who pays (the cascade), what
 * is refused and with what, how an absent output cap is lowered instead of refused, holds on
 * cost tickets, idempotent retries, the reservations API, voids on upstream failure, cut streams,
 * and response headers that agree with `GET /v1/wallets`.
 *
 * How: a real listening gateway per test (`startTestGateway`: SQLite in a temp dir, the mock
 * upstream in this process), driven with `fetch` like any client. Money is read back through the
 * admin API, and every test that moves money ends by checking that the wallet's ledger entries
 * add up to what is available.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import {
  capsConfig,
  chatBody,
  ledgerOf,
  ledgerSum,
  METERED_OUTPUT_TOKENS_MAX,
  until,
  usdToMicros,
  walletOf,
  type CapsConsumer,
  type WalletView,
} from './hard-caps-support.js'

const KEY = 'tg_hard_caps_consumer_0123456789ab'
const HOLD_KEY = 'tg_hard_caps_holder_0123456789abcd'
const TEAM = 'team_caps'
const HOLD_TEAM = 'team_hold'

const open: TestGateway[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((gw) => gw.close()))
})

async function aGateway(options: { walletEnforcement?: boolean; holdTimeoutMs?: number } = {}): Promise<TestGateway> {
  const consumers: CapsConsumer[] = [{ name: 'svc', apiKey: KEY, teamId: TEAM }]
  if (options.holdTimeoutMs !== undefined) consumers.push({ name: 'holder', apiKey: HOLD_KEY, teamId: HOLD_TEAM, hold: { timeoutMs: options.holdTimeoutMs } })
  const gw = await startTestGateway({
    yaml: capsConfig({ consumers, ...(options.walletEnforcement === undefined ? {} : { walletEnforcement: options.walletEnforcement }) }),
  })
  open.push(gw)
  return gw
}

async function allocate(gw: TestGateway, scope: { team_id?: string; user_id?: string }, amountUsd: number | string): Promise<void> {
  const { status, body } = await gw.admin('POST', '/v1/wallets/allocate', { ...scope, amount: amountUsd, currency: 'USD', description: 'test funds' })
  expect(status, JSON.stringify(body)).toBe(201)
}

function chat(
  gw: TestGateway,
  content: string,
  options: { key?: string; extra?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${options.key ?? KEY}`, 'content-type': 'application/json', ...options.headers },
    body: chatBody(content, options.extra),
  })
}

async function wallet(gw: TestGateway, scope: string): Promise<WalletView> {
  const w = await walletOf(gw.admin, scope)
  if (!w) throw new Error(`no wallet ${scope}`)
  return w
}

/** The ledger balances: allocations − reservations + releases == available, nothing left reserved. */
async function expectBalanced(gw: TestGateway, scope: string): Promise<WalletView> {
  const w = await wallet(gw, scope)
  expect(ledgerSum(await ledgerOf(gw.admin, w.id))).toBe(w.available_micros)
  expect(w.allocated_micros - w.spent_micros - w.reserved_micros).toBe(w.available_micros)
  expect(w.reserved_micros).toBe(0)
  return w
}

describe('the cascade: user → team → org', () => {
  it('lets the team wallet pay when the user wallet is too small, and says so in x-tollgate-wallet', async () => {
    const gw = await aGateway()
    await allocate(gw, { user_id: 'u_small', team_id: TEAM }, '0.01')
    await allocate(gw, { team_id: TEAM }, 1)
    const res = await chat(gw, 'hello', { headers: { 'x-tollgate-user': 'u_small' }, extra: { max_tokens: 100 } })
    expect(res.status).toBe(200)
    await res.json()
    expect(res.headers.get('x-tollgate-wallet')).toBe(`team:${TEAM}`)
    const user = await wallet(gw, 'user:u_small')
    expect(user).toMatchObject({ spent_micros: 0, reserved_micros: 0, available_micros: 10_000 })
    const team = await expectBalanced(gw, `team:${TEAM}`)
    expect(team.spent_micros).toBe(usdToMicros(res.headers.get('x-tollgate-cost-usd')))
    expect(team.spent_micros).toBeGreaterThan(0)
  })

  it('lets the user wallet pay first when it can', async () => {
    const gw = await aGateway()
    await allocate(gw, { user_id: 'u_rich', team_id: TEAM }, 1)
    await allocate(gw, { team_id: TEAM }, 1)
    const res = await chat(gw, 'hello', { headers: { 'x-tollgate-user': 'u_rich' }, extra: { max_tokens: 100 } })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-tollgate-wallet')).toBe('user:u_rich')
    expect((await wallet(gw, `team:${TEAM}`)).spent_micros).toBe(0)
  })

  it('refuses with 429 insufficient_quota, a scope and a ticket when no wallet can pay; nothing goes upstream', async () => {
    const gw = await aGateway()
    await allocate(gw, { user_id: 'u_small', team_id: TEAM }, '0.01')
    await allocate(gw, { team_id: TEAM }, '0.02')
    const before = await wallet(gw, `team:${TEAM}`)
    // An explicit cap is the client's choice: it is not lowered, so the call is refused.
    const res = await chat(gw, 'hello', { headers: { 'x-tollgate-user': 'u_small' }, extra: { max_tokens: 100 } })
    expect(res.status).toBe(429)
    const body = (await res.json()) as any
    expect(body.error).toMatchObject({ code: 'insufficient_quota', scope: 'user:u_small' })
    expect(body.error.ticket_id).toMatch(/^ct_/)
    expect(gw.mock.requests).toHaveLength(0)
    expect(await wallet(gw, `team:${TEAM}`)).toEqual(before)
    const tickets = await gw.admin('GET', '/v1/cost-tickets?status=pending')
    expect(tickets.body.data).toEqual([expect.objectContaining({ id: body.error.ticket_id, status: 'pending', scope: 'user:u_small' })])
    expect(tickets.body.data[0].estimate_usd).toBeGreaterThan(0.02)
  })
})

describe('output cap', () => {
  it('lowers an absent cap to what the wallet covers, says so in a header, and sends that cap upstream', async () => {
    const gw = await aGateway()
    // About 8 input tokens + 100 output would be ~$0.108 at $0.001/token; $0.03 covers ~22 outputs.
    await allocate(gw, { team_id: TEAM }, '0.03')
    const res = await chat(gw, 'hello')
    expect(res.status).toBe(200)
    const capped = Number(res.headers.get('x-tollgate-output-tokens-capped'))
    expect(capped).toBeGreaterThanOrEqual(1)
    expect(capped).toBeLessThan(METERED_OUTPUT_TOKENS_MAX)
    expect(gw.mock.requests).toHaveLength(1)
    const sent = gw.mock.requests[0]!.body as Record<string, unknown>
    expect(sent.max_completion_tokens ?? sent.max_tokens).toBe(capped)
    const reply = (await res.json()) as any
    expect(reply.usage.completion_tokens).toBeLessThanOrEqual(capped)
    expect(usdToMicros(res.headers.get('x-tollgate-cost-reserved-usd'))).toBeLessThanOrEqual(30_000)
    const team = await expectBalanced(gw, `team:${TEAM}`)
    expect(team.spent_micros).toBeLessThanOrEqual(team.allocated_micros)
  })

  it('leaves the request uncapped, without the header, when the wallet covers the model maximum', async () => {
    const gw = await aGateway()
    await allocate(gw, { team_id: TEAM }, 1)
    const res = await chat(gw, 'hello')
    expect(res.status).toBe(200)
    expect(res.headers.get('x-tollgate-output-tokens-capped')).toBeNull()
    const sent = gw.mock.requests[0]!.body as Record<string, unknown>
    // The model bounds its own output: nothing is written that the client did not ask for.
    expect(sent.max_completion_tokens ?? sent.max_tokens).toBeUndefined()
    expect(Number(res.headers.get('x-tollgate-cost-reserved-usd'))).toBeGreaterThan(0)
  })
})

it('with wallet_enforcement: false serves a team without any wallet and still records the usage', async () => {
  const gw = await aGateway({ walletEnforcement: false })
  const res = await chat(gw, 'hello', { extra: { max_tokens: 100 } })
  expect(res.status).toBe(200)
  await res.json()
  expect(gw.mock.requests).toHaveLength(1)
  const events = await gw.events()
  expect(events).toHaveLength(1)
  expect(events[0]).toMatchObject({ status: 'ok', decision: 'unenforced', reservation_id: null })
  expect(events[0]!.cost_micros).toBeGreaterThan(0)
  expect(events[0]!.cost_micros).toBe(usdToMicros(res.headers.get('x-tollgate-cost-usd')))
  expect((await gw.admin('GET', '/v1/wallets')).body.data).toEqual([])
})

it('answers a retry with the same Idempotency-Key from the first outcome: one upstream call, one charge', async () => {
  const gw = await aGateway()
  await allocate(gw, { team_id: TEAM }, 1)
  const send = () => chat(gw, 'charge me once', { extra: { max_tokens: 50 }, headers: { 'idempotency-key': 'retry-1' } })
  const first = await send()
  const firstBody = await first.text()
  const second = await send()
  const secondBody = await second.text()
  expect(first.status).toBe(200)
  expect(second.status).toBe(200)
  expect(secondBody).toBe(firstBody)
  expect(second.headers.get('x-tollgate-cost-usd')).toBe(first.headers.get('x-tollgate-cost-usd'))
  expect(gw.mock.requests).toHaveLength(1)
  const team = await expectBalanced(gw, `team:${TEAM}`)
  expect(team.spent_micros).toBe(usdToMicros(first.headers.get('x-tollgate-cost-usd')))
  const kinds = (await ledgerOf(gw.admin, team.id)).map((e) => e.kind)
  expect(kinds).toEqual(['allocation', 'reservation', 'settlement'])
})

it('answers a retry whose first answer was too large to keep with 409, never a second upstream call', async () => {
  const gw = await aGateway()
  await allocate(gw, { team_id: TEAM }, 1)
  // 300 embeddings of 1,536 floats: about 6 MB of JSON, over the 4 MiB kept for replay.
  const body = JSON.stringify({ model: 'text-embedding-3-small', input: Array.from({ length: 300 }, (_, i) => `document ${i}`) })
  const send = () =>
    fetch(`${gw.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'idempotency-key': 'big-batch' },
      body,
    })
  const first = await send()
  expect(first.status).toBe(200)
  expect((await first.arrayBuffer()).byteLength).toBeGreaterThan(4 * 1024 * 1024)
  const second = await send()
  expect(second.status).toBe(409)
  expect(second.headers.get('x-tollgate-idempotent-replay')).toBe('true')
  expect(((await second.json()) as { error: { code: string } }).error.code).toBe('idempotency_replay_too_large')
  expect(gw.mock.requests).toHaveLength(1)
  const team = await expectBalanced(gw, `team:${TEAM}`)
  expect(team.spent_micros).toBe(usdToMicros(first.headers.get('x-tollgate-cost-usd')))
})

describe('hold on insufficient funds', () => {
  const expensive = { key: HOLD_KEY, extra: { max_tokens: 100 } }

  async function pendingTicket(gw: TestGateway): Promise<{ id: string; estimate_usd: number }> {
    return until('a pending cost ticket', async () => {
      const { body } = await gw.admin('GET', '/v1/cost-tickets?status=pending')
      return body.data[0] as { id: string; estimate_usd: number } | undefined
    })
  }

  it('keeps the request open until the ticket is approved with a top-up, then serves it from the topped-up wallet', async () => {
    const gw = await aGateway({ holdTimeoutMs: 10_000 })
    await allocate(gw, { team_id: HOLD_TEAM }, '0.01')
    const pending = chat(gw, 'hello', expensive)
    const ticket = await pendingTicket(gw)
    expect(gw.mock.requests).toHaveLength(0)
    const approved = await gw.admin('POST', `/v1/cost-tickets/${ticket.id}/approve`, { amount: 1 })
    expect(approved.status).toBe(200)
    const res = await pending
    expect(res.status, await res.clone().text()).toBe(200)
    expect(res.headers.get('x-tollgate-wallet')).toBe(`team:${HOLD_TEAM}`)
    expect(gw.mock.requests).toHaveLength(1)
    const w = await expectBalanced(gw, `team:${HOLD_TEAM}`)
    expect(w.allocated_micros).toBe(1_010_000)
    expect(w.spent_micros).toBe(usdToMicros(res.headers.get('x-tollgate-cost-usd')))
  })

  it('approval without an amount grants the request its estimate, once', async () => {
    const gw = await aGateway({ holdTimeoutMs: 10_000 })
    const pending = chat(gw, 'hello', expensive)
    const ticket = await pendingTicket(gw)
    expect((await gw.admin('POST', `/v1/cost-tickets/${ticket.id}/approve`, {})).status).toBe(200)
    const res = await pending
    expect(res.status, await res.clone().text()).toBe(200)
    const w = await expectBalanced(gw, `team:${HOLD_TEAM}`)
    expect(w.allocated_micros).toBe(Math.round(ticket.estimate_usd * 1_000_000))
    const again = await gw.admin('POST', `/v1/cost-tickets/${ticket.id}/approve`, {})
    expect(again.status).toBe(409)
    expect((await wallet(gw, `team:${HOLD_TEAM}`)).allocated_micros).toBe(w.allocated_micros)
  })

  it('refuses with 429 and the ticket id when the ticket is denied; nothing goes upstream', async () => {
    const gw = await aGateway({ holdTimeoutMs: 10_000 })
    await allocate(gw, { team_id: HOLD_TEAM }, '0.01')
    const pending = chat(gw, 'hello', expensive)
    const ticket = await pendingTicket(gw)
    expect((await gw.admin('POST', `/v1/cost-tickets/${ticket.id}/deny`, { note: 'not this month' })).status).toBe(200)
    const res = await pending
    expect(res.status).toBe(429)
    expect(((await res.json()) as any).error).toMatchObject({ code: 'insufficient_quota', scope: `team:${HOLD_TEAM}`, ticket_id: ticket.id })
    expect(gw.mock.requests).toHaveLength(0)
    await expectBalanced(gw, `team:${HOLD_TEAM}`)
  })

  it('refuses with 429 once the hold timeout passes without a decision', async () => {
    const gw = await aGateway({ holdTimeoutMs: 600 })
    await allocate(gw, { team_id: HOLD_TEAM }, '0.01')
    const started = Date.now()
    const res = await chat(gw, 'hello', expensive)
    expect(res.status).toBe(429)
    expect(Date.now() - started).toBeGreaterThanOrEqual(550)
    const body = (await res.json()) as any
    expect(body.error.code).toBe('insufficient_quota')
    expect(body.error.ticket_id).toMatch(/^ct_/)
    expect(gw.mock.requests).toHaveLength(0)
  })
})

describe('shutting down with a held request', () => {
  it('answers it with 429 and its ticket at once instead of waiting out the hold', async () => {
    const gw = await aGateway({ holdTimeoutMs: 60_000 })
    open.splice(open.indexOf(gw), 1)
    await allocate(gw, { team_id: HOLD_TEAM }, '0.01')
    const held = chat(gw, 'hello', { key: HOLD_KEY, extra: { max_tokens: 100 } })
    const ticket = await until('the held request’s ticket', async () => ((await gw.admin('GET', '/v1/cost-tickets?status=pending')).body.data as any[])[0])
    const started = Date.now()
    await Promise.all([gw.close(), held.then((res) => expect(res.status).toBe(429))])
    expect(Date.now() - started).toBeLessThan(5_000)
    const body = (await (await held).json()) as any
    expect(body.error).toMatchObject({ code: 'insufficient_quota', ticket_id: ticket.id })
    expect(gw.mock.requests).toHaveLength(0)
  })
})

it('reservations API: reserve → settle returns the rest; beyond funds is 429; a second resolve is 409 and moves nothing; void returns all', async () => {
  const gw = await aGateway()
  await allocate(gw, { team_id: TEAM }, 1)
  const reserved = await gw.admin('POST', '/v1/reservations', { team_id: TEAM, estimate_usd: 0.4 })
  expect(reserved.status).toBe(201)
  expect(reserved.body).toMatchObject({ status: 'pending', scope: `team:${TEAM}`, amount_usd: 0.4, wallet_available_usd: 0.6 })
  expect(await wallet(gw, `team:${TEAM}`)).toMatchObject({ reserved_micros: 400_000, available_micros: 600_000 })

  const beyond = await gw.admin('POST', '/v1/reservations', { team_id: TEAM, estimate_usd: '0.600001' })
  expect(beyond.status).toBe(429)
  expect(beyond.body.error).toMatchObject({ code: 'insufficient_quota', scope: `team:${TEAM}` })

  const settled = await gw.admin('POST', `/v1/reservations/${reserved.body.id}/settle`, { actual_usd: 0.1 })
  expect(settled.status).toBe(200)
  expect(settled.body).toMatchObject({ result: 'settled', released_usd: 0.3 })
  expect(await wallet(gw, `team:${TEAM}`)).toMatchObject({ spent_micros: 100_000, reserved_micros: 0, available_micros: 900_000 })

  const twice = await gw.admin('POST', `/v1/reservations/${reserved.body.id}/settle`, { actual_usd: 0.4 })
  expect(twice.status).toBe(409)
  expect(twice.body.error.result).toBe('already_settled')
  const voidSettled = await gw.admin('POST', `/v1/reservations/${reserved.body.id}/void`, {})
  expect(voidSettled.status).toBe(409)
  expect(voidSettled.body.error.result).toBe('already_settled')
  expect(await wallet(gw, `team:${TEAM}`)).toMatchObject({ spent_micros: 100_000, available_micros: 900_000 })

  const second = await gw.admin('POST', '/v1/reservations', { team_id: TEAM, estimate_usd: 0.9 })
  expect(second.status).toBe(201)
  const voided = await gw.admin('POST', `/v1/reservations/${second.body.id}/void`, {})
  expect(voided.status).toBe(200)
  expect(voided.body).toMatchObject({ result: 'voided', released_usd: 0.9 })
  const w = await expectBalanced(gw, `team:${TEAM}`)
  expect(w).toMatchObject({ spent_micros: 100_000, available_micros: 900_000 })
  expect((await ledgerOf(gw.admin, w.id)).map((e) => e.kind)).toEqual(['allocation', 'reservation', 'settlement', 'reservation', 'void'])
})

it('voids the reservation when the upstream fails with 500 and spent nothing', async () => {
  const gw = await aGateway()
  await allocate(gw, { team_id: TEAM }, 1)
  gw.mock.setFailure({ status: 500, body: { error: { message: 'upstream exploded', type: 'server_error' } }, times: 1 })
  const res = await chat(gw, 'hello', { extra: { max_tokens: 100 } })
  expect(res.status).toBe(500)
  await res.text()
  expect(gw.mock.requests).toHaveLength(1)
  const w = await expectBalanced(gw, `team:${TEAM}`)
  expect(w).toMatchObject({ spent_micros: 0, available_micros: 1_000_000 })
  const ledger = await ledgerOf(gw.admin, w.id)
  expect(ledger.map((e) => e.kind)).toEqual(['allocation', 'reservation', 'void'])
  expect(ledger[2]!.amount_micros).toBe(-ledger[1]!.amount_micros)
  expect(ledger[2]!.reservation_id).toBe(ledger[1]!.reservation_id)
})

it('settles a stream cut half-way for what was delivered: more than zero, less than reserved', async () => {
  const gw = await aGateway()
  await allocate(gw, { team_id: TEAM }, 1)
  const res = await chat(gw, 'tell me a story __tollgate_cut_stream__ please', { extra: { max_tokens: 100, stream: true } })
  expect(res.status).toBe(200)
  const reservedMicros = usdToMicros(res.headers.get('x-tollgate-cost-reserved-usd'))
  // The client sees the stream end early (the socket is cut).
  await res.text().catch(() => undefined)
  const w = await until('the cut stream to settle', async () => {
    const current = await wallet(gw, `team:${TEAM}`)
    return current.reserved_micros === 0 ? current : undefined
  })
  expect(w.spent_micros).toBeGreaterThan(0)
  expect(w.spent_micros).toBeLessThan(reservedMicros)
  await expectBalanced(gw, `team:${TEAM}`)
  const kinds = (await ledgerOf(gw.admin, w.id)).map((e) => e.kind)
  expect(kinds).toEqual(['allocation', 'reservation', 'settlement'])
  const events = await gw.events()
  expect(events[0]).toMatchObject({ status: 'cut', cost_micros: w.spent_micros })
})

it('reports reserved, actual, paying wallet and remaining in headers that agree with GET /v1/wallets', async () => {
  const gw = await aGateway()
  await allocate(gw, { team_id: TEAM }, 2)
  let expectedSpent = 0
  for (const content of ['first call', 'a second, somewhat longer call to the metered model']) {
    const res = await chat(gw, content)
    expect(res.status).toBe(200)
    await res.json()
    const reserved = usdToMicros(res.headers.get('x-tollgate-cost-reserved-usd'))
    const actual = usdToMicros(res.headers.get('x-tollgate-cost-usd'))
    const remaining = usdToMicros(res.headers.get('x-tollgate-wallet-remaining-usd'))
    expect(res.headers.get('x-tollgate-wallet')).toBe(`team:${TEAM}`)
    expect(actual).toBeGreaterThan(0)
    expect(actual).toBeLessThanOrEqual(reserved)
    expectedSpent += actual
    const w = await expectBalanced(gw, `team:${TEAM}`)
    expect(w.spent_micros).toBe(expectedSpent)
    expect(w.available_micros).toBe(remaining)
    const ledger = await ledgerOf(gw.admin, w.id)
    const [reservation, settlement] = ledger.slice(-2)
    expect(reservation).toMatchObject({ kind: 'reservation', amount_micros: -reserved })
    expect(settlement).toMatchObject({ kind: 'settlement', amount_micros: reserved - actual })
  }
})
