/**
 * A budget created mid-period starts from exactly the spend its period's calls would have put on
 * it had it existed from the start: the seed counts what the live path counts, on SQLite and on
 * Redis + PostgreSQL.
 *
 * How: one gateway per store; for each scope, one budget created before any traffic (counted by
 * the calls themselves) and one with the same scope created after it (seeded from the usage
 * events). The traffic mixes what the two could disagree on: a key bound to carol, keys that name
 * carol (her team's, another team's; proxied and ingested), calls naming nobody, and calls to a
 * model alias (`fast`, served by gpt-4o-mini). Each late budget must show the early one's spend,
 * and both the spend the calls' cost headers add up to.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { startTestGateway, type TestGateway } from '../support/gateway.js'
import { postgresSkipReason, postgresService, redisService, redisSkipReason, type PostgresService, type RedisService } from '../support/services.js'

const ALPHA = 'team_alpha'
const BETA = 'team_beta'
/** Teams of the in-flight test: gamma's calls reserve (it has a hard budget), delta's do not. */
const GAMMA = 'team_gamma'
const DELTA = 'team_delta'
const KEYS = {
  carol: 'tg_seed_carol_key_0123456789abcdef0123',
  alpha: 'tg_seed_alpha_key_0123456789abcdef0123',
  beta: 'tg_seed_beta_key_0123456789abcdef01234',
  gamma: 'tg_seed_gamma_key_0123456789abcdef0123',
  delta: 'tg_seed_delta_key_0123456789abcdef0123',
}

function gatewayYaml(): string {
  return stringify({
    version: '1',
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: [
      { name: 'carol-laptop', api_key: KEYS.carol, team_id: ALPHA, user_id: 'carol' },
      { name: 'alpha-svc', api_key: KEYS.alpha, team_id: ALPHA },
      { name: 'beta-svc', api_key: KEYS.beta, team_id: BETA },
      { name: 'gamma-svc', api_key: KEYS.gamma, team_id: GAMMA },
      { name: 'delta-svc', api_key: KEYS.delta, team_id: DELTA },
    ],
    cost_tracking: { enabled: true, wallet_enforcement: false },
    models: [
      { name: 'gpt-4o-mini', target: 'mock' },
      { name: 'fast', target: 'mock', upstream_model: 'gpt-4o-mini' },
    ],
  })
}

interface Backend {
  readonly name: string
  readonly skip: string | undefined
  start(): Promise<{ gw: TestGateway; stop(): Promise<void> }>
}

const backends: Backend[] = [
  {
    name: 'SQLite',
    skip: undefined,
    async start() {
      const gw = await startTestGateway({ yaml: gatewayYaml() })
      return { gw, stop: () => gw.close() }
    },
  },
  {
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
  },
]

/** What a call counts toward, as the budget rules say (src/budgets/budget.ts `matchesCall`). */
interface Counts {
  /** `user:carol`, org-wide: only calls whose user is the key's own. */
  readonly carolAnywhere: boolean
  /** `user:carol` in team alpha: carol however she was named, on an alpha key. */
  readonly carolInAlpha: boolean
  /** `model:gpt-4o-mini`: the model the call asked for, not the one that served it. */
  readonly mini: boolean
}

const SCOPES = {
  carolAnywhere: { kind: 'user', id: 'carol' },
  carolInAlpha: { kind: 'user', id: 'carol', team_id: ALPHA },
  mini: { kind: 'model', id: 'gpt-4o-mini' },
} as const satisfies Record<keyof Counts, Record<string, string>>

const PROMPT = [{ role: 'user', content: 'Write one line about budgets.' }]

describe.each(backends)('a budget created mid-period, on $name', (backend) => {
  let gw: TestGateway
  let stop: (() => Promise<void>) | undefined

  beforeAll(async () => {
    if (backend.skip === undefined) ({ gw, stop } = await backend.start())
  })
  afterAll(async () => {
    await stop?.()
  })

  async function chat(key: string, model: string, user?: string): Promise<number> {
    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(user === undefined ? {} : { 'x-tollgate-user': user }) },
      body: JSON.stringify({ model, max_tokens: 40, messages: PROMPT }),
    })
    const body = await response.text()
    expect(response.status, body).toBe(200)
    return Math.round(Number(response.headers.get('x-tollgate-cost-usd')) * 1e6)
  }

  async function ingest(key: string, id: string, userId: string): Promise<number> {
    const response = await fetch(`${gw.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ externalRequestId: id, provider: 'openai', model: 'gpt-4o-mini', userId, inputTokens: 300, outputTokens: 90 }),
    })
    const body = (await response.json()) as { cost_micros: number }
    expect(response.status, JSON.stringify(body)).toBe(201)
    return body.cost_micros
  }

  async function budget(name: string, scope: Record<string, string>, hardLimit = false, amountUsd = 1000): Promise<{ id: string; spendMicros: number }> {
    const { status, body } = await gw.admin('POST', '/v1/billing/budgets', { name, scope, period: 'monthly', amount_usd: amountUsd, hard_limit: hardLimit })
    expect(status, JSON.stringify(body)).toBe(201)
    return { id: body.id, spendMicros: Math.round(body.posture.spend_usd * 1e6) }
  }

  async function spendMicros(id: string): Promise<number> {
    const { body } = await gw.admin('GET', `/v1/billing/budgets/${id}`)
    return Math.round(body.posture.spend_usd * 1e6)
  }

  it.skipIf(backend.skip !== undefined)('starts from the spend the budget would have counted, call by call, had it existed all period', async () => {
    const scopes = Object.keys(SCOPES) as Array<keyof Counts>
    const early = Object.fromEntries(await Promise.all(scopes.map(async (s) => [s, (await budget(`early ${s}`, SCOPES[s])).id] as const)))

    const traffic: Array<[() => Promise<number>, Counts]> = [
      // carol's own key: carol everywhere; alias calls are not calls to gpt-4o-mini.
      [() => chat(KEYS.carol, 'gpt-4o-mini'), { carolAnywhere: true, carolInAlpha: true, mini: true }],
      [() => chat(KEYS.carol, 'fast'), { carolAnywhere: true, carolInAlpha: true, mini: false }],
      // Her team's key naming her: her team's budget of her, not her org-wide one.
      [() => chat(KEYS.alpha, 'gpt-4o-mini', 'carol'), { carolAnywhere: false, carolInAlpha: true, mini: true }],
      [() => chat(KEYS.alpha, 'fast', 'carol'), { carolAnywhere: false, carolInAlpha: true, mini: false }],
      [() => ingest(KEYS.alpha, 'seed-alpha-carol', 'carol'), { carolAnywhere: false, carolInAlpha: true, mini: true }],
      // Another team's key naming her: neither of her budgets.
      [() => chat(KEYS.beta, 'gpt-4o-mini', 'carol'), { carolAnywhere: false, carolInAlpha: false, mini: true }],
      [() => ingest(KEYS.beta, 'seed-beta-carol', 'carol'), { carolAnywhere: false, carolInAlpha: false, mini: true }],
      // Nobody named, or someone else.
      [() => chat(KEYS.alpha, 'gpt-4o-mini'), { carolAnywhere: false, carolInAlpha: false, mini: true }],
      [() => chat(KEYS.alpha, 'fast', 'dave'), { carolAnywhere: false, carolInAlpha: false, mini: false }],
    ]
    const expected: Record<keyof Counts, number> = { carolAnywhere: 0, carolInAlpha: 0, mini: 0 }
    for (const [send, counts] of traffic) {
      const cost = await send()
      expect(cost).toBeGreaterThan(0)
      for (const s of scopes) if (counts[s]) expected[s] += cost
    }

    for (const s of scopes) {
      // Calls settle after their answer: wait until the early budget has them all.
      const deadline = Date.now() + 5_000
      while ((await spendMicros(early[s]!)) !== expected[s] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
      expect(await spendMicros(early[s]!), `early ${s}`).toBe(expected[s])
    }
    for (const s of scopes) {
      const late = await budget(`late ${s}`, SCOPES[s])
      expect(late.spendMicros, `late ${s}`).toBe(expected[s])
      expect(await spendMicros(late.id), `late ${s}, read back`).toBe(expected[s])
    }
  })

  /** A stream the mock paces: resolves once its first bytes arrived (the call is reserved and running). */
  async function startStream(key: string): Promise<{ finish(): Promise<void> }> {
    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, max_tokens: 40, messages: PROMPT }),
    })
    expect(response.status).toBe(200)
    const reader = response.body!.getReader()
    expect((await reader.read()).done).toBe(false)
    return {
      async finish() {
        while (!(await reader.read()).done) {}
      },
    }
  }

  it.skipIf(backend.skip !== undefined)('counts a call that was running when the budget was created, once: reserved, unreserved or direct', async () => {
    // The early budgets count the calls from the start; gamma's is hard, so its calls reserve.
    const early = {
      gamma: (await budget('early gamma', { kind: 'team', id: GAMMA }, true)).id,
      delta: (await budget('early delta', { kind: 'team', id: DELTA })).id,
    }
    gw.mock.setScript({ times: 4, chunkDelayMs: 40 })
    const streams = await Promise.all([KEYS.gamma, KEYS.gamma, KEYS.delta, KEYS.delta].map(startStream))
    // A call made outside the gateway, reserved like one: settled after the late budgets exist.
    await gw.allocate(GAMMA, 5)
    const direct = await gw.admin('POST', '/v1/reservations', { team_id: GAMMA, estimate_usd: 0.5, model: 'gpt-4o-mini' })
    expect(direct.status, JSON.stringify(direct.body)).toBe(201)
    // Created while all four run: nothing of theirs has settled, so nothing is seeded.
    const late = { gamma: await budget('late gamma', { kind: 'team', id: GAMMA }), delta: await budget('late delta', { kind: 'team', id: DELTA }) }
    // One the running calls alone take past every threshold: its notices come from their settles.
    const small = await budget('late small gamma', { kind: 'team', id: GAMMA }, false, 0.00002)
    expect(late.gamma.spendMicros).toBe(0)
    expect(late.delta.spendMicros).toBe(0)
    expect(small.spendMicros).toBe(0)
    await Promise.all(streams.map((s) => s.finish()))
    const settled = await gw.admin('POST', `/v1/reservations/${direct.body.id}/settle`, { actual_usd: 0.0025 })
    expect(settled.status, JSON.stringify(settled.body)).toBe(200)

    for (const team of ['gamma', 'delta'] as const) {
      const deadline = Date.now() + 5_000
      while ((await spendMicros(late[team].id)) !== (await spendMicros(early[team])) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
      const spent = await spendMicros(early[team])
      expect(spent, `early ${team}`).toBeGreaterThan(0)
      expect(await spendMicros(late[team].id), `late ${team}`).toBe(spent)
    }
    const firedPercents = async () => {
      const { body } = await gw.admin('GET', '/v1/notifications?limit=200')
      const notices = (body.data as Array<{ type: string; data: { budget_id: string; threshold_percent: number } }>).filter(
        (n) => n.type === 'budget.threshold' && n.data.budget_id === small.id,
      )
      return notices.map((n) => n.data.threshold_percent).sort((a, b) => a - b)
    }
    await expect.poll(firedPercents, { timeout: 5_000 }).toEqual([50, 80, 95])
  })
})
