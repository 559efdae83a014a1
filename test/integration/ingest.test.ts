/**
 * Ingestion (`POST /v1/events`) as an application owner uses it, on both stores:
 *
 * - a telemetry payload in the shape telemetry SDKs send it (camelCase, every key) is accepted as
 *   is, attributed to the key's org and team, priced from the catalogue to the micro-dollar, and
 *   listed by `GET /v1/usage/events` with its source, usage source, breakdown and reported cost;
 * - replaying it answers 200 `duplicate: true` and counts nothing twice (report, budget);
 * - a mixed batch answers 207: valid events stored, each invalid one rejected naming its field;
 * - `dataMode: demo` shows in reports (filterable) but never moves a budget;
 * - an ingested event crossing a budget threshold fires its notice once, replays included;
 * - a key of team A cannot write into team B, another environment, or a team B user's budget;
 * - nor take team B's external ids: an id is unique per team, so B's events are stored and
 *   counted whatever A sent first, and A's answers say nothing of B's ids;
 * - many concurrent identical posts (single and batched) store one event and one charge per team,
 *   two teams sending the same id at once included.
 *
 * How: `startTestGateway` on SQLite, and on Redis + PostgreSQL (own key prefix and schema);
 * expected costs come from the same catalogue (`PriceBook`), never from the gateway's answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { ADMIN_TOKEN, startTestGateway, type TestGateway } from '../support/gateway.js'
import { postgresSkipReason, postgresService, redisService, redisSkipReason, type PostgresService, type RedisService } from '../support/services.js'
import { PriceBook, costOfUsage } from '../../src/pricing/index.js'
import { emptyUsage } from '../../src/providers/index.js'

const KEY_A = 'tg_ingest_team_a_key_0123456789abcdef01'
const KEY_A_STRICT = 'tg_ingest_team_a_strict_0123456789abcd'
const KEY_B = 'tg_ingest_team_b_key_0123456789abcdef01'
const KEY_ORG = 'tg_ingest_org_wide_key_0123456789abcdef'
const TEAM_A = 'team_alpha'
const TEAM_B = 'team_beta'

const catalogue = new PriceBook()

/** What the catalogue charges for `input`/`output` tokens of gpt-4o-mini (cached part of input). */
function catalogueMicros(input: number, output: number, cached = 0): number {
  const price = catalogue.lookup('openai', 'gpt-4o-mini', input)!
  return costOfUsage({ ...emptyUsage(), inputTokens: input, outputTokens: output, cacheReadTokens: cached }, price).totalMicros
}

/** The telemetry payload, every key as the sender writes it. */
function telemetry(id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    externalRequestId: id,
    provider: 'openai',
    model: 'gpt-4o-mini',
    endpointTag: 'billing.guardrail_check',
    promptVersion: 'budget_v1',
    userId: 'tenant_acme_hash',
    inputTokens: 240,
    outputTokens: 80,
    latencyMs: 892,
    status: 'success',
    dataMode: 'real',
    environment: 'prod',
    ...over,
  }
}

function gatewayYaml(): string {
  return stringify({
    version: '1',
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: [
      { name: 'alpha', api_key: KEY_A, team_id: TEAM_A, environment: 'prod' },
      { name: 'alpha-strict', api_key: KEY_A_STRICT, team_id: TEAM_A, environment: 'prod', allow_named_users: false },
      { name: 'beta', api_key: KEY_B, team_id: TEAM_B, environment: 'prod' },
      { name: 'org-wide', api_key: KEY_ORG, environment: 'prod' },
    ],
    cost_tracking: { enabled: true, wallet_enforcement: false },
  })
}

interface Backend {
  readonly name: string
  readonly skip: string | undefined
  start(): Promise<{ gw: TestGateway; stop(): Promise<void> }>
}

const sqlite: Backend = {
  name: 'SQLite',
  skip: undefined,
  async start() {
    const gw = await startTestGateway({ yaml: gatewayYaml() })
    return { gw, stop: () => gw.close() }
  },
}

const postgresRedis: Backend = {
  name: 'Redis + PostgreSQL',
  skip: redisSkipReason() ?? postgresSkipReason(),
  async start() {
    const redis = (await redisService()) as RedisService
    const postgres = (await postgresService()) as PostgresService
    const gw = await startTestGateway({
      yaml: gatewayYaml(),
      env: { TOLLGATE_REDIS_PREFIX: redis.prefix },
      configOverrides: { storage: { kind: 'postgres', postgresUrl: postgres.url, redisUrl: redis.url } },
    })
    return {
      gw,
      async stop() {
        await gw.close()
        await Promise.all([redis.stop(), postgres.stop()])
      },
    }
  },
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each([sqlite, postgresRedis])('POST /v1/events on $name', (backend) => {
  let gw: TestGateway
  let stop: (() => Promise<void>) | undefined

  beforeAll(async () => {
    if (backend.skip !== undefined) return
    ;({ gw, stop } = await backend.start())
  })
  afterAll(async () => {
    await stop?.()
  })

  async function post(key: string, body: unknown): Promise<{ status: number; body: any }> {
    const response = await fetch(`${gw.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: response.status, body: await response.json() }
  }

  async function eventsOf(query: string): Promise<any[]> {
    const { status, body } = await gw.admin('GET', `/v1/usage/events?${query}`)
    expect(status, JSON.stringify(body)).toBe(200)
    return body.data
  }

  async function aBudget(name: string, amountUsd: number, scope: Record<string, unknown>, thresholds = [50, 80]): Promise<string> {
    const { status, body } = await gw.admin('POST', '/v1/billing/budgets', {
      name,
      amount_usd: amountUsd,
      period: 'monthly',
      scope,
      alert_thresholds: thresholds,
    })
    expect(status, JSON.stringify(body)).toBe(201)
    return body.id as string
  }

  async function budgetSpendMicros(id: string): Promise<number> {
    const { body } = await gw.admin('GET', `/v1/billing/budgets/${id}`)
    return Math.round(Number(body.posture.spend_usd) * 1e6)
  }

  async function notificationsOf(budgetId: string): Promise<any[]> {
    const { body } = await gw.admin('GET', '/v1/notifications?limit=50')
    // Threshold and block notices only: a forecast may follow its own rule.
    return (body.data as any[]).filter((n) => n.data?.budget_id === budgetId && (n.type === 'budget.threshold' || n.type === 'budget.blocked'))
  }

  it.skipIf(backend.skip !== undefined)(
    'takes the telemetry payload as sent: attributed by the key, priced from the catalogue, listed with where its numbers came from',
    async () => {
      const sent = telemetry('req_01HZXB6MQZ2WQ9D2KCF9M4V2QY', { costUsd: 0.5, cachedInputTokens: 40, occurredAt: '2026-11-30T10:00:00Z' })
      // occurredAt in the past keeps this event out of the budget tests' current period.
      const created = await post(KEY_A, sent)
      expect(created.status, JSON.stringify(created.body)).toBe(201)
      const expected = catalogueMicros(240, 80, 40)
      expect(created.body).toMatchObject({
        status: 'created',
        duplicate: false,
        external_request_id: sent.externalRequestId,
        cost_micros: expected,
        reported_cost_usd: 0.5,
      })

      const [event] = await eventsOf('from=2026-11-30T00:00:00Z&to=2026-12-01T00:00:00Z&source=ingest')
      expect(event).toMatchObject({
        id: created.body.id,
        external_request_id: sent.externalRequestId,
        occurred_at: '2026-11-30T10:00:00.000Z',
        team_id: TEAM_A,
        user_id: 'tenant_acme_hash',
        key_name: 'alpha',
        endpoint_tag: 'billing.guardrail_check',
        prompt_version: 'budget_v1',
        environment: 'prod',
        provider: 'openai',
        model_served: 'gpt-4o-mini',
        endpoint: 'ingested',
        status: 'ok',
        data_mode: 'real',
        source: 'ingest',
        usage_source: 'reported',
        usage_note: null,
        latency_ms: 892,
        tokens: { input: 240, cache_read: 40, output: 80, reasoning: 0 },
        cost_micros: expected,
        reported_cost_usd: 0.5,
      })
      expect(event.price_source).toMatch(/^genai-prices@.*openai\/gpt-4o-mini/)
      const parts = event.cost_breakdown.parts as Array<{ part: string; tokens: number; cost_micros: number }>
      expect(parts.map((p) => [p.part, p.tokens])).toEqual([
        ['input', 200],
        ['cache_read', 40],
        ['output', 80],
      ])
      expect(parts.reduce((sum, p) => sum + p.cost_micros, 0)).toBe(expected)
    },
  )

  it.skipIf(backend.skip !== undefined)('reports count every kind of token; the event list pages newest first and filters by usage source', async () => {
    // A day of its own (2026-11-28), so the totals are these three events only.
    const day = (hour: number) => `2026-11-28T${String(hour).padStart(2, '0')}:00:00Z`
    const sent = [
      telemetry('kinds-1', { occurredAt: day(1), inputTokens: 1_000, cacheWriteTokens: 300, cacheWrite1hTokens: 100, outputTokens: 500, reasoningTokens: 200 }),
      telemetry('kinds-2', { occurredAt: day(2), inputTokens: 2_000, cachedInputTokens: 1_500, outputTokens: 100 }),
      telemetry('kinds-3', { occurredAt: day(3), inputTokens: 10, outputTokens: 10 }),
    ]
    expect((await post(KEY_A, { events: sent })).body.created).toBe(3)
    const range = 'from=2026-11-28T00:00:00Z&to=2026-11-29T00:00:00Z'
    const { body } = await gw.admin('GET', `/v1/usage?${range}`)
    expect(body.totals).toMatchObject({
      requests: 3,
      input_tokens: 3_010,
      cache_read_tokens: 1_500,
      cache_write_5m_tokens: 200,
      cache_write_1h_tokens: 100,
      output_tokens: 610,
      reasoning_tokens: 200,
      audio_input_tokens: 0,
      audio_output_tokens: 0,
    })
    const first = await gw.admin('GET', `/v1/usage/events?${range}&limit=2`)
    expect(first.body.data.map((e: any) => e.external_request_id)).toEqual(['kinds-3', 'kinds-2'])
    expect(first.body.data[1].tokens).toMatchObject({ input: 2_000, cache_read: 1_500, cache_write_5m: 0, cache_write_1h: 0 })
    const second = await gw.admin('GET', `/v1/usage/events?${range}&limit=2&cursor=${first.body.next_cursor}`)
    expect(second.body.data.map((e: any) => e.external_request_id)).toEqual(['kinds-1'])
    expect(second.body.data[0].tokens).toMatchObject({ cache_write_5m: 200, cache_write_1h: 100, reasoning: 200 })
    expect(second.body.next_cursor).toBeNull()
    expect((await eventsOf(`${range}&usage_source=reported`)).length).toBe(3)
    expect(await eventsOf(`${range}&usage_source=estimated`)).toEqual([])
    const bad = await gw.admin('GET', `/v1/usage/events?usage_source=guessed&cursor=nope`)
    expect(bad.status).toBe(400)
    expect(bad.body.error.issues.map((i: any) => i.path).sort()).toEqual(['cursor', 'usage_source'])
  })

  it.skipIf(backend.skip !== undefined)('searches the provider billed are charged at their per-call fees and stored as counts', async () => {
    // A day of its own (2026-11-27).
    const day = (hour: number) => `2026-11-27T${String(hour).padStart(2, '0')}:00:00Z`
    const tools = await post(KEY_A, telemetry('searches-1', { occurredAt: day(1), webSearches: 2, fileSearches: 3 }))
    expect(tools.status, JSON.stringify(tools.body)).toBe(201)
    // gpt-4o-mini: the catalogue's $10 per 1,000 web searches and $2.50 per 1,000 file searches.
    const price = catalogue.lookup('openai', 'gpt-4o-mini', 240)!
    expect(price.webSearchMicrosPerKcall).toBe(10_000_000)
    expect(tools.body.cost_micros).toBe(catalogueMicros(240, 80) + 2 * 10_000 + 3 * 2_500)
    // A chat search model, whose call does not say the context size it asked: its dearest ($30 per 1,000), flagged.
    const chat = await post(KEY_A, telemetry('searches-2', { occurredAt: day(2), model: 'gpt-4o-mini-search-preview', webSearches: 1 }))
    expect(chat.status, JSON.stringify(chat.body)).toBe(201)
    const searchModel = catalogue.lookup('openai', 'gpt-4o-mini-search-preview', 240)!
    expect(chat.body.cost_micros).toBe(costOfUsage({ ...emptyUsage(), inputTokens: 240, outputTokens: 80 }, searchModel).totalMicros + 30_000)
    expect(chat.body.price_source).toMatch(/;fallback:web_search$/)

    const listed = await eventsOf('from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z&source=ingest')
    expect(listed.map((e) => [e.external_request_id, e.web_searches, e.file_searches, e.web_search_kind])).toEqual([
      ['searches-2', 1, 0, 'chat:unknown'],
      ['searches-1', 2, 3, null],
    ])
    // A count that is not one is refused, naming the field, and nothing is stored.
    for (const webSearches of [-1, 1.5, 10_001, '2']) {
      const bad = await post(KEY_A, telemetry(`searches-bad-${webSearches}`, { occurredAt: day(3), webSearches }))
      expect(bad.status).toBe(400)
      expect(bad.body.error).toMatchObject({ code: 'invalid_request', field: 'webSearches', message: expect.stringMatching(/whole number of searches/) })
    }
    expect(await eventsOf('from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z&source=ingest')).toHaveLength(2)
  })

  it.skipIf(backend.skip !== undefined)('an event that says how its call searched is charged that fee; a kind its model cannot have is refused', async () => {
    // A day of its own (2026-11-26).
    const day = (hour: number) => `2026-11-26T${String(hour).padStart(2, '0')}:00:00Z`
    const tokens = catalogueMicros(240, 80)
    // OpenAI's older web_search_preview tool: $25 per 1,000 on gpt-4o-mini, not the model's own $10.
    const preview = await post(KEY_A, telemetry('kind-preview', { occurredAt: day(1), webSearches: 2, webSearchKind: 'web_search_preview' }))
    expect(preview.status, JSON.stringify(preview.body)).toBe(201)
    expect(preview.body.cost_micros).toBe(tokens + 2 * 25_000)
    // Saying the model's own fee outright is what an event that says nothing gets.
    const own = await post(KEY_A, telemetry('kind-own', { occurredAt: day(2), webSearches: 2, webSearchKind: 'web_search' }))
    expect(own.body.cost_micros).toBe(tokens + 2 * 10_000)
    // A chat search model at the context size the call asked: the exact fee ($25 per 1,000 at low), no upper-bound flag.
    const low = await post(KEY_A, telemetry('kind-low', { occurredAt: day(3), model: 'gpt-4o-mini-search-preview', webSearches: 1, webSearchKind: 'chat:low' }))
    expect(low.status, JSON.stringify(low.body)).toBe(201)
    const searchModel = catalogue.lookup('openai', 'gpt-4o-mini-search-preview', 240)!
    expect(low.body.cost_micros).toBe(costOfUsage({ ...emptyUsage(), inputTokens: 240, outputTokens: 80 }, searchModel).totalMicros + 25_000)
    expect(low.body.price_source).not.toMatch(/fallback/)

    const range = 'from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z&source=ingest'
    expect((await eventsOf(range)).map((e) => [e.external_request_id, e.web_searches, e.web_search_kind])).toEqual([
      ['kind-low', 1, 'chat:low'],
      ['kind-own', 2, null],
      ['kind-preview', 2, 'web_search_preview'],
    ])
    // A kind the provider or model cannot have, or one an event cannot declare, is refused with the field; nothing is stored.
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ webSearchKind: 'chat:low' }, /OpenAI chat search model/],
      [{ provider: 'anthropic', model: 'claude-sonnet-4-5', webSearchKind: 'web_search_preview' }, /OpenAI's tool/],
      [{ model: 'gpt-4o-mini-search-preview', webSearchKind: 'web_search' }, /chat:low, chat:medium or chat:high/],
      [{ webSearchKind: 'chat:unknown' }, /expected web_search \| web_search_preview/],
    ]
    for (const [over, message] of refused) {
      const bad = await post(KEY_A, telemetry(`kind-bad-${JSON.stringify(over)}`, { occurredAt: day(4), webSearches: 1, ...over }))
      expect(bad.status, JSON.stringify(over)).toBe(400)
      expect(bad.body.error).toMatchObject({ code: 'invalid_request', field: 'webSearchKind', message: expect.stringMatching(message) })
    }
    expect(await eventsOf(range)).toHaveLength(3)
  })

  it.skipIf(backend.skip !== undefined)('a replay answers 200 duplicate: true and counts nothing twice', async () => {
    const budget = await aBudget('alpha replay', 1_000, { kind: 'team', id: TEAM_A })
    const event = telemetry('replay-1', { userId: undefined })
    const first = await post(KEY_A, event)
    expect(first.status).toBe(201)
    const before = await gw.admin('GET', '/v1/usage?data_mode=real')
    for (let i = 0; i < 3; i++) {
      const again = await post(KEY_A, event)
      expect(again.status).toBe(200)
      expect(again.body).toMatchObject({ status: 'duplicate', duplicate: true, external_request_id: 'replay-1' })
    }
    // A changed body with the same id is the same event: the first one stands.
    expect((await post(KEY_A, { ...event, outputTokens: 9_999 })).body.duplicate).toBe(true)
    const after = await gw.admin('GET', '/v1/usage?data_mode=real')
    expect(after.body.totals.requests).toBe(before.body.totals.requests)
    expect(
      await eventsOf('source=ingest&user=&model=gpt-4o-mini&limit=1000').then((list) => list.filter((e) => e.external_request_id === 'replay-1')),
    ).toHaveLength(1)
    expect(await budgetSpendMicros(budget)).toBe(catalogueMicros(240, 80))
    await gw.admin('DELETE', `/v1/billing/budgets/${budget}`)
  })

  it.skipIf(backend.skip !== undefined)('a mixed batch answers 207: valid events stored, each invalid one rejected naming its field', async () => {
    const batch = [
      telemetry('mixed-ok-1'),
      telemetry('mixed-bad-tokens', { inputTokens: -1 }),
      telemetry('mixed-bad-field', { colour: 'red' }),
      telemetry('mixed-bad-model', { model: 'no-such-model-anywhere' }),
      telemetry('mixed-other-env', { environment: 'staging' }),
      telemetry('mixed-bad-status', { status: 'maybe' }),
      telemetry('mixed-too-cached', { cachedInputTokens: 500 }),
      { provider: 'openai', model: 'gpt-4o-mini', inputTokens: 1, outputTokens: 1 },
      telemetry('mixed-ok-2', { dataMode: 'demo' }),
    ]
    const { status, body } = await post(KEY_A, { events: batch })
    expect(status).toBe(207)
    expect(body).toMatchObject({ created: 2, duplicates: 0, rejected: 7 })
    const byIndex = (i: number) => body.results.find((r: any) => r.index === i)
    expect(byIndex(0)).toMatchObject({ status: 'created', id: expect.stringMatching(/^evt_/) })
    expect(byIndex(1).error).toMatchObject({ code: 'invalid_request', field: 'inputTokens', message: expect.stringMatching(/whole number of tokens/) })
    expect(byIndex(2).error).toMatchObject({ code: 'invalid_request', field: 'colour', message: expect.stringContaining('unknown field "colour"') })
    expect(byIndex(3).error).toMatchObject({ code: 'model_not_priced', field: 'model' })
    expect(byIndex(4).error).toMatchObject({ code: 'invalid_request', field: 'environment', message: expect.stringContaining('"prod" only') })
    expect(byIndex(5).error).toMatchObject({ code: 'invalid_request', field: 'status', message: expect.stringContaining('success | error | cancelled') })
    expect(byIndex(6).error).toMatchObject({ code: 'invalid_request', field: 'cachedInputTokens' })
    expect(byIndex(7).error).toMatchObject({ code: 'invalid_request', field: 'externalRequestId', message: 'externalRequestId: required' })
    expect(byIndex(8)).toMatchObject({ status: 'created' })
    const stored = (await eventsOf('source=ingest')).map((e) => e.external_request_id).filter((id: string) => id.startsWith('mixed-'))
    expect(stored.sort()).toEqual(['mixed-ok-1', 'mixed-ok-2'])

    // The batch itself: more than 1,000 events, or no list, changes nothing.
    const tooMany = await post(KEY_A, { events: Array.from({ length: 1_001 }, (_, i) => telemetry(`over-${i}`)) })
    expect(tooMany.status).toBe(413)
    expect(tooMany.body.error).toMatchObject({ code: 'payload_too_large', message: expect.stringContaining('at most 1000 events') })
    expect((await post(KEY_A, { events: [] })).status).toBe(400)
    expect((await post(KEY_A, [telemetry('bare-array')])).body.error).toMatchObject({ code: 'invalid_request' })
    expect(await eventsOf('source=ingest').then((list) => list.filter((e) => /^(over|bare)-/.test(e.external_request_id)))).toEqual([])
    // A single invalid event is a 400 naming its field.
    const single = await post(KEY_A, telemetry('single-bad', { outputTokens: 'many' }))
    expect(single.status).toBe(400)
    expect(single.body.error).toMatchObject({ code: 'invalid_request', field: 'outputTokens', issues: [{ path: 'outputTokens' }] })
  })

  it.skipIf(backend.skip !== undefined)('demo events are reported (and filterable) but never counted against a budget', async () => {
    const budget = await aBudget('beta demo', 0.001, { kind: 'team', id: TEAM_B })
    const demo = await post(KEY_B, telemetry('demo-1', { dataMode: 'demo', inputTokens: 1_000_000, outputTokens: 100_000 }))
    expect(demo.status).toBe(201)
    expect(demo.body.cost_micros).toBeGreaterThan(1_000)
    await sleep(300)
    expect(await budgetSpendMicros(budget)).toBe(0)
    expect(await notificationsOf(budget)).toEqual([])
    const [listed] = await eventsOf(`data_mode=demo&team=${TEAM_B}`)
    expect(listed).toMatchObject({ external_request_id: 'demo-1', data_mode: 'demo' })
    const demoReport = await gw.admin('GET', '/v1/usage?data_mode=demo&group_by=team')
    expect(demoReport.body.groups.find((g: any) => g.key.team === TEAM_B)).toMatchObject({ requests: 1, cost_micros: demo.body.cost_micros })
    const realReport = await gw.admin('GET', '/v1/usage?data_mode=real&group_by=team')
    expect(realReport.body.groups.find((g: any) => g.key.team === TEAM_B)).toBeUndefined()
    await gw.admin('DELETE', `/v1/billing/budgets/${budget}`)
  })

  it.skipIf(backend.skip !== undefined)('an ingested event crossing a threshold fires its notice once, however often it is replayed', async () => {
    const unit = catalogueMicros(240, 80)
    // 50% is reached by the second event; the third stays below 80% (75%).
    const budget = await aBudget('beta thresholds', (unit * 4) / 1e6, { kind: 'team', id: TEAM_B })
    expect((await post(KEY_B, telemetry('thr-1'))).status).toBe(201)
    expect(await notificationsOf(budget)).toEqual([])
    const crossing = telemetry('thr-2')
    await Promise.all(Array.from({ length: 10 }, () => post(KEY_B, crossing)))
    expect((await post(KEY_B, { events: [crossing, telemetry('thr-3')] })).body).toMatchObject({ created: 1, duplicates: 1 })
    let fired: any[] = []
    for (let i = 0; i < 50 && fired.length === 0; i++) {
      await sleep(100)
      fired = await notificationsOf(budget)
    }
    await sleep(300)
    fired = await notificationsOf(budget)
    expect(fired.map((n) => [n.type, n.data.threshold_percent])).toEqual([['budget.threshold', 50]])
    expect(await budgetSpendMicros(budget)).toBe(3 * unit)
    await gw.admin('DELETE', `/v1/billing/budgets/${budget}`)
  })

  it.skipIf(backend.skip !== undefined)('a key of team A cannot write into team B, another environment, or a team B user budget', async () => {
    const userBudget = await aBudget('bob of beta', 1_000, { kind: 'user', id: 'bob', team_id: TEAM_B })
    const teamBudget = await aBudget('beta all', 1_000, { kind: 'team', id: TEAM_B })
    // A new budget starts from the period's spend so far (team B's earlier events).
    const teamSpendBefore = await budgetSpendMicros(teamBudget)
    const teamField = await post(KEY_A, telemetry('tenancy-team', { teamId: TEAM_B }))
    expect(teamField.status).toBe(400)
    expect(teamField.body.error).toMatchObject({ field: 'teamId' })
    expect((await post(KEY_A, telemetry('tenancy-env', { environment: 'staging' }))).body.error).toMatchObject({ field: 'environment' })
    expect((await post(KEY_A_STRICT, telemetry('tenancy-named'))).body.error).toMatchObject({
      field: 'userId',
      message: expect.stringContaining('may not name a user'),
    })
    // Naming team B's user from team A's key: recorded for team A, counted by no team B budget.
    expect((await post(KEY_A, telemetry('tenancy-bob', { userId: 'bob' }))).status).toBe(201)
    const [event] = (await eventsOf('user=bob')).filter((e) => e.external_request_id === 'tenancy-bob')
    expect(event).toMatchObject({ team_id: TEAM_A, user_id: 'bob', key_name: 'alpha' })
    expect(await budgetSpendMicros(userBudget)).toBe(0)
    expect(await budgetSpendMicros(teamBudget)).toBe(teamSpendBefore)
    const admin = await fetch(`${gw.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(telemetry('tenancy-admin')),
    })
    expect(admin.status).toBe(403)
    const nobody = await fetch(`${gw.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(telemetry('tenancy-nobody')),
    })
    expect(nobody.status).toBe(401)
    await gw.admin('DELETE', `/v1/billing/budgets/${userBudget}`)
    await gw.admin('DELETE', `/v1/billing/budgets/${teamBudget}`)
  })

  it.skipIf(backend.skip !== undefined)("a key of team A cannot take team B's external ids: B's events are stored and counted all the same", async () => {
    const betaBudget = await aBudget('beta ids', 1_000, { kind: 'team', id: TEAM_B })
    const betaBefore = await budgetSpendMicros(betaBudget)
    // Team A sends, ahead of team B's collector, the ids B is about to use, at no cost to itself.
    const claims = ['claim-1', 'claim-2', 'claim-3'].map((id) => telemetry(id, { userId: undefined, inputTokens: 0, outputTokens: 0 }))
    expect((await post(KEY_A, { events: claims })).body).toMatchObject({ created: 3, duplicates: 0 })
    // Team B's real events are stored, counted by B's budget, and not reported as duplicates.
    const single = await post(KEY_B, telemetry('claim-1', { userId: undefined }))
    expect(single.status).toBe(201)
    expect(single.body).toMatchObject({ status: 'created', duplicate: false, cost_micros: catalogueMicros(240, 80) })
    const batch = await post(KEY_B, { events: [telemetry('claim-2', { userId: undefined }), telemetry('claim-3', { userId: undefined })] })
    expect(batch.body).toMatchObject({ created: 2, duplicates: 0, rejected: 0 })
    expect(await budgetSpendMicros(betaBudget)).toBe(betaBefore + 3 * catalogueMicros(240, 80))
    // Within a team an id is still sent once: B's and A's replays change nothing.
    expect((await post(KEY_B, telemetry('claim-1', { userId: undefined }))).body).toMatchObject({ status: 'duplicate', duplicate: true })
    expect((await post(KEY_A, { events: claims })).body).toMatchObject({ created: 0, duplicates: 3 })
    expect(await budgetSpendMicros(betaBudget)).toBe(betaBefore + 3 * catalogueMicros(240, 80))
    // A key of no team is a scope of its own: neither team's ids are its duplicates, its own are.
    expect((await post(KEY_ORG, telemetry('claim-1', { userId: undefined }))).status).toBe(201)
    expect((await post(KEY_ORG, telemetry('claim-1', { userId: undefined }))).body.duplicate).toBe(true)
    // The admin sees each team's event under the shared id, with its team and cost.
    const listed = (await eventsOf('source=ingest&limit=1000')).filter((e) => e.external_request_id === 'claim-1')
    expect(listed.map((e) => [e.team_id, e.key_name, e.cost_micros]).sort()).toEqual(
      [
        [TEAM_A, 'alpha', 0],
        [TEAM_B, 'beta', catalogueMicros(240, 80)],
        [null, 'org-wide', catalogueMicros(240, 80)],
      ].sort(),
    )
    await gw.admin('DELETE', `/v1/billing/budgets/${betaBudget}`)
  })

  it.skipIf(backend.skip !== undefined)(
    'many concurrent identical posts store one event and one charge per team, for two teams sending the same id',
    async () => {
      const budgets = [await aBudget('alpha race', 1_000, { kind: 'team', id: TEAM_A }), await aBudget('beta race', 1_000, { kind: 'team', id: TEAM_B })]
      const spendBefore = await Promise.all(budgets.map(budgetSpendMicros))
      const event = telemetry('race-1', { userId: undefined, inputTokens: 10_000, outputTokens: 2_000 })
      const perTeam = await Promise.all(
        [KEY_A, KEY_B].map((key) =>
          Promise.all([
            ...Array.from({ length: 40 }, () => post(key, event)),
            ...Array.from({ length: 10 }, () => post(key, { events: [event, event, telemetry(`race-other-${Math.random()}`)] })),
          ]),
        ),
      )
      for (const answers of perTeam) {
        const created = answers.reduce(
          (sum, a) => sum + (a.status === 201 ? 1 : 0) + (a.body.results?.filter((r: any) => r.status === 'created' && r.index < 2).length ?? 0),
          0,
        )
        expect(created).toBe(1)
        expect(answers.every((a) => a.status === 200 || a.status === 201)).toBe(true)
      }
      const stored = (await eventsOf('source=ingest&limit=1000')).filter((e) => e.external_request_id === 'race-1')
      expect(stored.map((e) => e.team_id).sort()).toEqual([TEAM_A, TEAM_B])
      for (const [i, budget] of budgets.entries()) {
        expect(await budgetSpendMicros(budget)).toBe(spendBefore[i]! + catalogueMicros(10_000, 2_000) + 10 * catalogueMicros(240, 80))
        await gw.admin('DELETE', `/v1/billing/budgets/${budget}`)
      }
    },
  )

  it.skipIf(backend.skip !== undefined)('an event spelled in another case counts toward its model and provider budgets all the same', async () => {
    const byModel = await aBudget('mini, any spelling', 1_000, { kind: 'model', id: 'gpt-4o-mini' })
    const byProvider = await aBudget('openai, any spelling', 1_000, { kind: 'provider', id: 'openai' })
    const [modelBefore, providerBefore] = [await budgetSpendMicros(byModel), await budgetSpendMicros(byProvider)]
    const created = await post(KEY_B, telemetry('case-1', { provider: 'OpenAI', model: 'GPT-4o-MINI', inputTokens: 100_000 }))
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    expect(created.body.cost_micros).toBe(catalogueMicros(100_000, 80))
    expect((await budgetSpendMicros(byModel)) - modelBefore).toBe(created.body.cost_micros)
    expect((await budgetSpendMicros(byProvider)) - providerBefore).toBe(created.body.cost_micros)
    const [event] = (await eventsOf('source=ingest&limit=500')).filter((e) => e.external_request_id === 'case-1')
    expect(event.provider).toBe('openai')
  })
})

describe.each([sqlite, postgresRedis])('spend past what a number holds exactly, on $name', (backend) => {
  it.skipIf(backend.skip !== undefined)('saturates: budgets are created and listed, their spend reads at least 2^53 − 1 µ$', { timeout: 60_000 }, async () => {
    const { gw, stop } = await backend.start()
    try {
      // $750,000 an event, within every documented bound; 13,000 of them pass 2^53 µ$ together.
      const huge = (batch: number, i: number) => telemetry(`huge-${batch}-${i}`, { model: 'o1-pro', inputTokens: 1e9, outputTokens: 1e9 })
      for (let batch = 0; batch < 13; batch++) {
        const response = await fetch(`${gw.url}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY_B}`, 'content-type': 'application/json' },
          body: JSON.stringify({ events: Array.from({ length: 1_000 }, (_, i) => huge(batch, i)) }),
        })
        expect(response.status).toBe(200)
        expect(((await response.json()) as { created: number }).created).toBe(1_000)
      }
      const created = await gw.admin('POST', '/v1/billing/budgets', {
        name: 'beta cap',
        amount_usd: 1_000_000_000,
        period: 'monthly',
        scope: { kind: 'team', id: TEAM_B },
        alert_thresholds: [50],
      })
      expect(created.status, JSON.stringify(created.body)).toBe(201)
      const listed = await gw.admin('GET', '/v1/billing/budgets')
      expect(listed.status, JSON.stringify(listed.body)).toBe(200)
      const budget = (listed.body.data as Array<{ id: string; posture: { spend_usd: number } }>).find((b) => b.id === created.body.id)!
      expect(budget.posture.spend_usd).toBeGreaterThanOrEqual(Math.floor(Number.MAX_SAFE_INTEGER / 1e6))
    } finally {
      await stop()
    }
  })
})
