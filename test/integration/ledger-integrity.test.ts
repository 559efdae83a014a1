/**
 * No request can spend past its funds, and every budget sees all its spend — tried as a valid but
 * hostile key holder would: answers multiplied by `n`, held requests abandoned by their client,
 * budgets created after the month's spend, budgets created on one process and used on another,
 * direct reservations, and numbers the arithmetic must not overflow on.
 *
 * How: real listening gateways on SQLite (`startTestGateway`, the mock upstream in this process)
 * with the `metered` model ($0.001 per input or output token), driven with `fetch`. "Spent" is
 * checked against what a client sees (cost headers) and what the mock was asked to do.
 */
import { mkdtempSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { buildApp, type App } from '../../src/app.js'
import { parseConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/observability/logger.js'
import { capsConfig, chatBody, ledgerOf, ledgerSum, METERED_USD_PER_TOKEN, until, usdToMicros, walletOf, type CapsConsumer } from './hard-caps-support.js'

const KEY = 'tg_integrity_consumer_0123456789abcd'
const HOLD_KEY = 'tg_integrity_holder_0123456789abcdef'
const TEAM = 'team_integrity'
const HOLD_TEAM = 'team_holder'

const open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((gw) => gw.close()))
})

async function aGateway(options: { holdTimeoutMs?: number; walletEnforcement?: boolean } = {}): Promise<TestGateway> {
  const consumers: CapsConsumer[] = [{ name: 'svc', apiKey: KEY, teamId: TEAM }]
  if (options.holdTimeoutMs !== undefined) consumers.push({ name: 'holder', apiKey: HOLD_KEY, teamId: HOLD_TEAM, hold: { timeoutMs: options.holdTimeoutMs } })
  const gw = await startTestGateway({ yaml: capsConfig({ consumers, walletEnforcement: options.walletEnforcement ?? true }) })
  open.push(gw)
  return gw
}

function chat(gw: TestGateway, extra: Record<string, unknown> = {}, options: { key?: string; signal?: AbortSignal; content?: string } = {}): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${options.key ?? KEY}`, 'content-type': 'application/json' },
    body: chatBody(options.content ?? 'write about budgets', extra),
    ...(options.signal ? { signal: options.signal } : {}),
  })
}

async function fund(gw: TestGateway, body: Record<string, unknown>): Promise<void> {
  const { status, body: reply } = await gw.admin('POST', '/v1/wallets/allocate', { currency: 'USD', ...body })
  expect(status, JSON.stringify(reply)).toBe(201)
}

describe('parameters that multiply billable output', () => {
  it('reserves n answers, so n=8 calls on a $0.20 wallet never make the provider bill more than $0.20', async () => {
    const gw = await aGateway()
    await fund(gw, { team_id: TEAM, amount: '0.20' })
    const responses: Response[] = []
    for (let i = 0; i < 8; i++) responses.push(await chat(gw, { n: 8, max_tokens: 10 }))
    const admitted = responses.filter((r) => r.status === 200)
    const refused = responses.filter((r) => r.status !== 200)
    // Each call reserves 8 × 10 output tokens plus its input: about $0.09, so two fit.
    expect(admitted.length).toBe(2)
    for (const r of refused) expect(r.status).toBe(429)
    const reserved = usdToMicros(admitted[0]!.headers.get('x-tollgate-cost-reserved-usd'))
    expect(reserved).toBeGreaterThanOrEqual(8 * 10 * METERED_USD_PER_TOKEN * 1_000_000)
    // The provider billed 8 answers per call (more output than one answer's cap of 10) and the
    // wallet paid exactly that, within its $0.20: the mock saw only the admitted calls.
    expect(gw.mock.requests).toHaveLength(2)
    const events = (await gw.events()).filter((e) => e.status === 'ok')
    expect(events).toHaveLength(2)
    for (const [i, event] of events.entries()) {
      expect(event.output_tokens).toBeGreaterThan(10)
      expect(event.output_tokens % 8).toBe(0)
      expect(event.cost_micros).toBe(usdToMicros(admitted[i]!.headers.get('x-tollgate-cost-usd')))
    }
    const charged = events.reduce((sum, e) => sum + e.cost_micros, 0)
    const wallet = (await walletOf(gw.admin, `team:${TEAM}`))!
    expect(wallet.spent_micros).toBe(charged)
    expect(charged).toBeLessThanOrEqual(200_000)
  })

  it.each([[0], [129], ['3'], [2.5]])('refuses n=%j with 400 before reserving or sending anything', async (n) => {
    const gw = await aGateway()
    await fund(gw, { team_id: TEAM, amount: 1 })
    const res = await chat(gw, { n, max_tokens: 10 })
    expect(res.status).toBe(400)
    expect(((await res.json()) as any).error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/"n"/) })
    expect(gw.mock.requests).toHaveLength(0)
    expect((await walletOf(gw.admin, `team:${TEAM}`))!.reserved_micros).toBe(0)
  })
})

describe('held requests', () => {
  async function ticketOf(gw: TestGateway): Promise<string> {
    return until('a pending ticket', async () => {
      const { body } = await gw.admin('GET', '/v1/cost-tickets?status=pending')
      return (body.data as Array<{ id: string }>)[0]?.id
    })
  }

  it('a held request whose client has gone away is never sent, even when its ticket is approved', async () => {
    const gw = await aGateway({ holdTimeoutMs: 10_000 })
    await fund(gw, { team_id: HOLD_TEAM, amount: '0.001' })
    const abort = new AbortController()
    const pending = chat(gw, { max_tokens: 50 }, { key: HOLD_KEY, signal: abort.signal }).catch((error: unknown) => error)
    const ticketId = await ticketOf(gw)
    abort.abort()
    expect(await pending).toBeInstanceOf(Error)
    // Give the gateway a moment to see the hang-up, then approve with money that would cover it.
    await new Promise((r) => setTimeout(r, 200))
    expect((await gw.admin('POST', `/v1/cost-tickets/${ticketId}/approve`, { amount: 1 })).status).toBe(200)
    await new Promise((r) => setTimeout(r, 700))
    expect(gw.mock.requests).toHaveLength(0)
    const wallet = (await walletOf(gw.admin, `team:${HOLD_TEAM}`))!
    expect(wallet).toMatchObject({ spent_micros: 0, reserved_micros: 0 })
    expect((await gw.events()).filter((e) => e.status === 'ok')).toEqual([])
  })

  it('a top-up of the wallet releases a held request, like an approval', async () => {
    const gw = await aGateway({ holdTimeoutMs: 10_000 })
    await fund(gw, { team_id: HOLD_TEAM, amount: '0.001' })
    const pending = chat(gw, { max_tokens: 50 }, { key: HOLD_KEY })
    const ticketId = await ticketOf(gw)
    await fund(gw, { team_id: HOLD_TEAM, amount: 1 })
    const res = await pending
    expect(res.status).toBe(200)
    await res.json()
    expect(gw.mock.requests).toHaveLength(1)
    const { body } = await gw.admin('GET', '/v1/cost-tickets')
    expect(body.data.find((t: { id: string }) => t.id === ticketId)).toMatchObject({
      status: 'approved',
      resolved_by: 'system:wallet-topped-up',
      grant_usd: null,
    })
  })
})

describe('a stream that outlives its reservation', () => {
  async function outlivingStream(): Promise<TestGateway> {
    const gw = await startTestGateway({
      yaml: capsConfig({
        consumers: [{ name: 'svc', apiKey: KEY, teamId: TEAM }],
        walletEnforcement: true,
        targetTimeoutMs: 1_000,
        reservations: { ttlMs: 1_000, sweepIntervalMs: 100 },
      }),
    })
    open.push(gw)
    await fund(gw, { team_id: TEAM, amount: '1' })
    // The target's timeout is per chunk, so a live stream may run past its 1 s reservation: about
    // 40 SSE events 60 ms apart take over 2 s.
    gw.mock.setScript({ chunkDelayMs: 60, times: 1 })
    return gw
  }

  /** node:http, not fetch: the cost of a stream comes in its trailers. `onFirstBytes` runs while it streams. */
  function streamThrough(gw: TestGateway, onFirstBytes: () => Promise<void> = async () => {}) {
    return new Promise<{ status: number; text: string; headers: NodeJS.Dict<string | string[]>; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      const req = httpRequest(
        `${gw.url}/v1/chat/completions`,
        { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } },
        (response) => {
          let text = ''
          const started = onFirstBytes()
          response.setEncoding('utf8')
          response.on('data', (part: string) => {
            text += part
          })
          response.on('end', () =>
            started.then(() => resolve({ status: response.statusCode ?? 0, text, headers: response.headers, trailers: response.trailers }), reject),
          )
        },
      )
      req.on('error', reject)
      req.end(chatBody('write about budgets', { stream: true, max_tokens: 40 }))
    })
  }

  it('is still recorded, at the full amount the expired reservation charged, and flagged; its cost trailer says that charge', async () => {
    const gw = await outlivingStream()
    const res = await streamThrough(gw)
    expect(res.status).toBe(200)
    expect(res.text).toContain('[DONE]')
    const reserved = usdToMicros(res.headers['x-tollgate-cost-reserved-usd'] as string)
    const event = await until('the stream’s usage event', async () => (await gw.events()).find((e) => e.status === 'ok'))
    expect(event.cost_micros).toBe(reserved)
    expect(event.price_source).toContain('reservation-expired')
    const wallet = (await walletOf(gw.admin, `team:${TEAM}`))!
    expect(wallet).toMatchObject({ spent_micros: reserved, reserved_micros: 0 })
    // The client is told the same charge, and what its wallet holds after it.
    expect(usdToMicros(res.trailers['x-tollgate-cost-usd'] ?? null)).toBe(reserved)
    expect(usdToMicros(res.trailers['x-tollgate-wallet-remaining-usd'] ?? null)).toBe(wallet.available_micros)
  })

  it('counts that charge toward a budget created while it ran', async () => {
    const gw = await outlivingStream()
    let budgetId = ''
    const res = await streamThrough(gw, async () => {
      const created = await gw.admin('POST', '/v1/billing/budgets', { name: 'during', scope: { kind: 'team', id: TEAM }, period: 'monthly', amount_usd: 100 })
      expect(created.status).toBe(201)
      expect(created.body.posture.spend_usd).toBe(0)
      budgetId = created.body.id
    })
    expect(res.status).toBe(200)
    const reserved = usdToMicros(res.headers['x-tollgate-cost-reserved-usd'] as string)
    expect(usdToMicros(res.trailers['x-tollgate-cost-usd'] ?? null)).toBe(reserved)
    const { body } = await gw.admin('GET', `/v1/billing/budgets/${budgetId}`)
    expect(usdToMicros(String(body.posture.spend_usd))).toBe(reserved)
  })
})

describe('budgets count the spend their period already had', () => {
  async function spend(gw: TestGateway, calls: number): Promise<number> {
    let total = 0
    for (let i = 0; i < calls; i++) {
      const res = await chat(gw, { max_tokens: 20 })
      expect(res.status).toBe(200)
      total += usdToMicros(res.headers.get('x-tollgate-cost-usd'))
    }
    return total
  }

  it('a hard budget created mid-period starts from the period spend so far, not from $0', async () => {
    const gw = await aGateway({ walletEnforcement: false })
    const spent = await spend(gw, 4)
    const limit = spent + 10_000
    const created = await gw.admin('POST', '/v1/billing/budgets', {
      name: 'late cap',
      scope: { kind: 'team', id: TEAM },
      period: 'monthly',
      amount_usd: limit / 1e6,
      hard_limit: true,
    })
    expect(created.status).toBe(201)
    expect(usdToMicros(String(created.body.posture.spend_usd))).toBe(spent)
    // $0.01 is left: one call reserving ~$0.03 is refused; a budget starting from $0 would admit it.
    const res = await chat(gw, { max_tokens: 20 })
    expect(res.status).toBe(429)
    expect(((await res.json()) as any).error).toMatchObject({ code: 'budget_cap_exceeded', scope: `team:${TEAM}` })
  })

  it("raising a budget keeps its spend; moving it to another scope counts that scope's spend", async () => {
    const gw = await aGateway({ walletEnforcement: false })
    const spent = await spend(gw, 3)
    const created = await gw.admin('POST', '/v1/billing/budgets', {
      name: 'cap',
      scope: { kind: 'team', id: 'team_idle' },
      period: 'monthly',
      amount_usd: 1,
      hard_limit: true,
    })
    expect(usdToMicros(String(created.body.posture.spend_usd))).toBe(0)
    const moved = await gw.admin('PATCH', `/v1/billing/budgets/${created.body.id}`, { scope: { kind: 'team', id: TEAM } })
    expect(moved.status).toBe(200)
    expect(usdToMicros(String(moved.body.posture.spend_usd))).toBe(spent)
    const raised = await gw.admin('PATCH', `/v1/billing/budgets/${created.body.id}`, { amount_usd: 2 })
    expect(usdToMicros(String(raised.body.posture.spend_usd))).toBe(spent)
  })
})

describe('budgets reach every process at once', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'tollgate-propagation-'))

  it('a hard budget created on one process is enforced by another within 100 ms', async () => {
    const path = join(dir(), 'shared.db')
    const yaml = capsConfig({ consumers: [{ name: 'svc', apiKey: KEY, teamId: TEAM }], walletEnforcement: false, sqlitePath: path })
    const options = { env: { TOLLGATE_ADMIN_TOKEN: 'tg_admin_propagation_0123456789' }, logger: createLogger({ level: 'silent' }) }
    const apps: App[] = []
    for (let i = 0; i < 2; i++) {
      const app = await buildApp(parseConfig(yaml, '<test>', { env: {} }), options)
      await app.start()
      apps.push(app)
      open.push(app)
    }
    const [first, second] = apps as [App, App]
    const call = (app: App) =>
      app.fastify.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        payload: chatBody('hi', { max_tokens: 20 }),
      })
    expect((await call(second)).statusCode).toBe(200)
    const created = await first.fastify.inject({
      method: 'POST',
      url: '/v1/billing/budgets',
      headers: { authorization: 'Bearer tg_admin_propagation_0123456789' },
      payload: { name: 'tiny', scope: { kind: 'team', id: TEAM }, period: 'daily', amount_usd: 0.000001, hard_limit: true },
    })
    expect(created.statusCode).toBe(201)
    await new Promise((r) => setTimeout(r, 100))
    const refused = await call(second)
    expect(refused.statusCode).toBe(429)
    expect(refused.json().error.code).toBe('budget_cap_exceeded')
  })
})

describe('direct reservations go through the same limits and become usage', () => {
  it("a hard budget refuses a reservation past it; a settlement is a usage event with the caller's attribution", async () => {
    const gw = await aGateway()
    await fund(gw, { team_id: TEAM, amount: 10 })
    const budget = await gw.admin('POST', '/v1/billing/budgets', {
      name: 'batch cap',
      scope: { kind: 'endpoint', id: 'nightly-batch' },
      period: 'monthly',
      amount_usd: 1,
      hard_limit: true,
    })
    expect(budget.status).toBe(201)
    const reserve = (estimate: number) =>
      gw.admin('POST', '/v1/reservations', { team_id: TEAM, estimate_usd: estimate, model: 'gpt-4o', endpoint_tag: 'nightly-batch', request_id: 'job-1' })
    const over = await reserve(1.5)
    expect(over.status).toBe(429)
    expect(over.body.error).toMatchObject({ code: 'budget_cap_exceeded', scope: 'endpoint:nightly-batch' })
    const ok = await reserve(0.8)
    expect(ok.status).toBe(201)
    const settled = await gw.admin('POST', `/v1/reservations/${ok.body.id}/settle`, { actual_usd: 0.25, input_tokens: 1000, output_tokens: 200 })
    expect(settled.status).toBe(200)
    const usage = await gw.admin('GET', '/v1/usage?group_by=endpoint,team,model')
    expect(usage.body.totals).toMatchObject({ requests: 1, cost_micros: 250_000, input_tokens: 1000, output_tokens: 200 })
    expect(usage.body.groups).toEqual([expect.objectContaining({ key: { endpoint: 'nightly-batch', team: TEAM, model: 'gpt-4o' }, cost_micros: 250_000 })])
    // The budget saw it: $0.25 spent, so a $0.80 reservation no longer fits.
    expect((await reserve(0.8)).status).toBe(429)
  })

  it('Idempotency-Keys are per team: another team reusing a key gets its own reservation; another body under a used key is 422', async () => {
    const gw = await aGateway()
    await fund(gw, { team_id: 'team_marketing', amount: 10 })
    await fund(gw, { team_id: 'team_engineering', amount: 10 })
    const token = async (team: string) => (await gw.admin('POST', '/v1/admin-tokens', { name: team, role: 'team_admin', team_id: team })).body.token as string
    const as = (bearer: string, body: unknown) =>
      fetch(`${gw.url}/v1/reservations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', 'idempotency-key': 'nightly-batch' },
        body: JSON.stringify(body),
      })
    const engineering = await as(await token('team_engineering'), { team_id: 'team_engineering', estimate_usd: 1 })
    expect(engineering.status).toBe(201)
    const marketingToken = await token('team_marketing')
    const marketing = await as(marketingToken, { team_id: 'team_marketing', estimate_usd: 2 })
    expect(marketing.status).toBe(201)
    const [e, m] = [(await engineering.json()) as any, (await marketing.json()) as any]
    expect(m.id).not.toBe(e.id)
    expect(m).toMatchObject({ scope: 'team:team_marketing', amount_micros: 2_000_000 })
    const retry = await as(marketingToken, { team_id: 'team_marketing', estimate_usd: 2 })
    expect(retry.status).toBe(200)
    expect(((await retry.json()) as any).id).toBe(m.id)
    const reused = await as(marketingToken, { team_id: 'team_marketing', estimate_usd: 3 })
    expect(reused.status).toBe(422)
    expect(((await reused.json()) as any).error.code).toBe('idempotency_key_reused')
    expect((await walletOf(gw.admin, 'team:team_marketing'))!.reserved_micros).toBe(2_000_000)
  })
})

describe('numbers the arithmetic must hold: 400 naming the field, or work', () => {
  it('a wallet funded with the $1e9 maximum pays a call; more than that is 400 naming amount', async () => {
    const gw = await aGateway()
    await fund(gw, { team_id: TEAM, amount: 1_000_000_000 })
    const res = await chat(gw, { max_tokens: 20 })
    expect(res.status).toBe(200)
    const wallet = (await walletOf(gw.admin, `team:${TEAM}`))!
    expect(wallet.spent_micros).toBe(usdToMicros(res.headers.get('x-tollgate-cost-usd')))
    expect(ledgerSum(await ledgerOf(gw.admin, wallet.id))).toBe(wallet.available_micros)
    const more = await gw.admin('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 1, currency: 'USD' })
    expect(more.status).toBe(400)
    expect(more.body.error.issues).toEqual([expect.objectContaining({ path: 'amount' })])
  })

  it.each([
    ['allocate $999,999,999,999', 'POST', '/v1/wallets/allocate', { team_id: TEAM, amount: 999_999_999_999, currency: 'USD' }, 'amount'],
    ['a reservation of $1e11', 'POST', '/v1/reservations', { team_id: TEAM, estimate_usd: 1e11 }, 'estimate_usd'],
    [
      'a budget of $1e11',
      'POST',
      '/v1/billing/budgets',
      { name: 'huge', scope: { kind: 'team', id: TEAM }, period: 'monthly', amount_usd: 1e11 },
      'amount_usd',
    ],
    ['/v1/usage from 99999999999999999999', 'GET', '/v1/usage?from=99999999999999999999', undefined, 'from'],
    ['/v1/usage/top to 1e30', 'GET', '/v1/usage/top?to=1e30', undefined, 'to'],
  ] as const)('%s → 400 naming the field', async (_name, method, path, body, field) => {
    const gw = await aGateway()
    const res = await gw.admin(method, path, body)
    expect(res.status, JSON.stringify(res.body)).toBe(400)
    expect(JSON.stringify(res.body.error)).toContain(field)
  })

  it.each([[1e12], [2 ** 53 - 1]])('max_tokens %d → 400 naming the field, nothing reserved', async (maxTokens) => {
    const gw = await aGateway()
    await fund(gw, { team_id: TEAM, amount: 1_000_000_000 })
    const res = await chat(gw, { max_tokens: maxTokens })
    expect(res.status).toBe(400)
    expect(((await res.json()) as any).error.message).toMatch(/max_tokens/)
    expect(gw.mock.requests).toHaveLength(0)
  })

  it('a $1e8 budget crosses its thresholds and its notices arrive', async () => {
    const gw = await aGateway({ walletEnforcement: false })
    const created = await gw.admin('POST', '/v1/billing/budgets', {
      name: 'big',
      scope: { kind: 'team', id: TEAM },
      period: 'monthly',
      amount_usd: 100_000_000,
      alert_thresholds: [50],
    })
    expect(created.status).toBe(201)
    await gw.app.budgets.onSpendSettled(
      [{ budgetId: created.body.id, periodKey: created.body.posture.period_key, spentBeforeMicros: 0 as never, spentAfterMicros: 60_000_000_000_000 as never }],
      { atMs: Date.now() },
    )
    const inbox = await gw.admin('GET', '/v1/notifications')
    const thresholds = inbox.body.data.filter((n: { type: string }) => n.type === 'budget.threshold')
    expect(thresholds).toEqual([expect.objectContaining({ data: expect.objectContaining({ threshold_percent: 50, percent: 60, spend_usd: 60_000_000 }) })])
  })

  it.each([
    ['no key and bad JSON: 401 (the key is checked first)', { authorization: '' }, '{bad', 401, 'invalid_api_key'],
    ['messages missing', {}, JSON.stringify({ model: 'metered' }), 400, 'invalid_request'],
    ['messages empty', {}, JSON.stringify({ model: 'metered', messages: [] }), 400, 'invalid_request'],
    ['messages not an array', {}, JSON.stringify({ model: 'metered', messages: 'hi' }), 400, 'invalid_request'],
    ['JSON nested 5,000 deep', {}, `{"model":"metered","messages":[{"role":"user","content":${'['.repeat(5000)}${']'.repeat(5000)}}]}`, 400, 'invalid_request'],
  ])('%s', async (_name, headers, body, status, code) => {
    const gw = await aGateway()
    await fund(gw, { team_id: TEAM, amount: 1 })
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
      body,
    })
    expect(res.status).toBe(status)
    expect(((await res.json()) as any).error.code).toBe(code)
    expect(gw.mock.requests).toHaveLength(0)
    expect((await walletOf(gw.admin, `team:${TEAM}`))!.reserved_micros).toBe(0)
  })

  it('a body that is not valid UTF-8 is 400, not forwarded with replacement characters', async () => {
    const gw = await aGateway()
    await fund(gw, { team_id: TEAM, amount: 1 })
    const body = Buffer.concat([Buffer.from('{"model":"metered","messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')])
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body,
    })
    expect(res.status).toBe(400)
    expect(((await res.json()) as any).error.message).toMatch(/UTF-8/)
    expect(gw.mock.requests).toHaveLength(0)
  })
})

describe('a body over the limit', () => {
  it('sent without a pause is answered 413, not a dropped connection', async () => {
    const gw = await aGateway()
    const body = Buffer.alloc(6 * 1024 * 1024, 0x61)
    const { port } = new URL(gw.url)
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1')
      let received = ''
      socket.on('data', (chunk) => (received += chunk.toString('latin1')))
      socket.on('error', reject)
      socket.on('close', () => resolve(received))
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`,
      )
      socket.end(body)
    })
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large')
    expect(answer).toContain('body_too_large')
    expect(gw.mock.requests).toHaveLength(0)
  })
})
