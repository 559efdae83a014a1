/**
 * `service_tier_default` as a user of one gateway sees it. OpenAI serves a call that asks for
 * `auto`, or names no tier, at the tier set in the project's settings; a target says which with
 * `service_tier_default`, and the call's worst case is reserved at that tier's prices.
 *
 * How: one listening gateway (SQLite, the mock upstream in this process) with two OpenAI targets
 * in front of the same upstream — `std` (a project left at OpenAI's default) and `pri` (a project
 * set to priority) — each reached through a model of its own with names of equal length, so the
 * two requests are the same size and their worst cases differ only by the tier's price.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { parseUsd } from '../../src/money/index.js'
import { CONSUMER_KEY, TEAM, startTestGateway, type TestGateway } from '../support/gateway.js'
import { until, walletOf } from './hard-caps-support.js'

/** A consumer whose team wallet covers a standard worst case but not a priority one. */
const LEAN_KEY = 'tg_service_tier_lean_0123456789abcd'
const LEAN_TEAM = 'team_lean'
const STANDARD_PROJECT = 'std/gpt-4.1'
const PRIORITY_PROJECT = 'pri/gpt-4.1'

function gatewayYaml(): string {
  return stringify({
    version: '1',
    providers: {
      targets: [
        { id: 'std', provider: 'openai' },
        { id: 'pri', provider: 'openai', service_tier_default: 'priority' },
      ],
    },
    consumer_groups: [
      { name: 'svc', api_key: CONSUMER_KEY, team_id: TEAM },
      { name: 'lean', api_key: LEAN_KEY, team_id: LEAN_TEAM },
    ],
    cost_tracking: { enabled: true, wallet_enforcement: true },
    models: [
      { name: STANDARD_PROJECT, target: 'std', upstream_model: 'gpt-4.1' },
      { name: PRIORITY_PROJECT, target: 'pri', upstream_model: 'gpt-4.1' },
    ],
  })
}

/** `priority` is 2× `standard`, but for the rounding of each part of the standard worst case up to a whole µ$. */
function expectTwice(priority: number | undefined, standard: number | undefined): void {
  expect(priority).toBeGreaterThanOrEqual(2 * standard! - 12)
  expect(priority).toBeLessThanOrEqual(2 * standard!)
}

interface Reply {
  readonly status: number
  readonly body: any
  readonly reservedMicros: number | undefined
  readonly costMicros: number | undefined
  readonly requestId: string
}

describe('an OpenAI target whose project serves `auto` at priority', () => {
  let gw: TestGateway
  // Usage small enough that the settled cost is far below the worst case.
  const usage = { inputTokens: 1_000, outputTokens: 100 }
  // gpt-4.1: 1,000 × $2 + 100 × $8 per Mtok.
  const standardCost = 2_800

  beforeAll(async () => {
    gw = await startTestGateway({ yaml: gatewayYaml() })
    await gw.allocate(TEAM, 100)
  })
  afterAll(async () => {
    await gw?.close()
  })

  async function chat(model: string, tier: Record<string, unknown>, key = CONSUMER_KEY): Promise<Reply> {
    gw.mock.setScript({ usage, times: 1 })
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      // An explicit output cap: the gateway refuses a call its wallet cannot cover instead of lowering the cap.
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Summarise the spend.' }], max_completion_tokens: 1_000, ...tier }),
    })
    const usd = (name: string) => {
      const value = res.headers.get(name)
      return value === null ? undefined : parseUsd(value)
    }
    return {
      status: res.status,
      body: await res.json(),
      reservedMicros: usd('x-tollgate-cost-reserved-usd'),
      costMicros: usd('x-tollgate-cost-usd'),
      requestId: String(res.headers.get('x-tollgate-request-id')),
    }
  }

  async function eventOf(reply: Reply) {
    return until(`the event of ${reply.requestId}`, async () => (await gw.events()).find((e) => e.request_id === reply.requestId))
  }

  it('a call naming no tier reserves its worst case at 2× the standard prices; the answer’s tier decides the charge', async () => {
    const standard = await chat(STANDARD_PROJECT, {})
    const priority = await chat(PRIORITY_PROJECT, {})
    expect([standard.status, priority.status]).toEqual([200, 200])
    expect(standard.reservedMicros).toBeGreaterThan(8_000)
    expectTwice(priority.reservedMicros, standard.reservedMicros)
    // The same as asking for priority outright on a project left at the default.
    expect((await chat(STANDARD_PROJECT, { service_tier: 'priority' })).reservedMicros).toBe(priority.reservedMicros)
    // The mock answers that `default` served it: charged the standard price, unflagged.
    expect(priority.costMicros).toBe(standardCost)
    expect((await eventOf(priority)).price_source).not.toMatch(/service_tier/)
  })

  it('`auto` is reserved at the project’s tier; an explicit `default` stays at the standard prices', async () => {
    const standard = await chat(STANDARD_PROJECT, { service_tier: 'auto' })
    const auto = await chat(PRIORITY_PROJECT, { service_tier: 'auto' })
    const explicit = await chat(PRIORITY_PROJECT, { service_tier: 'default' })
    expect([standard.status, auto.status, explicit.status]).toEqual([200, 200, 200])
    expectTwice(auto.reservedMicros, standard.reservedMicros)
    expect(explicit.reservedMicros).toBe(standard.reservedMicros)
  })

  it('an answer that names no usage is estimated at the project’s tier, flagged', async () => {
    const standard = await chat(STANDARD_PROJECT, {})
    gw.mock.setScript({ omitUsage: true, times: 1 })
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: PRIORITY_PROJECT, messages: [{ role: 'user', content: 'Summarise the spend.' }], max_completion_tokens: 1_000 }),
    })
    expect(res.status).toBe(200)
    const event = await eventOf({ requestId: String(res.headers.get('x-tollgate-request-id')) } as Reply)
    expect(event).toMatchObject({ status: 'ok' })
    expect(event.price_source).toMatch(/;service_tier:priority@200%~upper_bound/)
    expect(event.cost_micros).toBeGreaterThan(standard.reservedMicros!)
  })

  it('a wallet that covers the standard worst case but not 2× refuses the call naming no tier or `auto`, and changes nothing', async () => {
    const standard = await chat(STANDARD_PROJECT, {})
    // Half as much again as the standard worst case: enough at default, not at priority.
    const funds = Math.round(1.5 * standard.reservedMicros!)
    await gw.allocate(LEAN_TEAM, funds / 1_000_000)
    const before = await walletOf(gw.admin, `team:${LEAN_TEAM}`)
    const sent = gw.mock.requests.length

    for (const tier of [{}, { service_tier: 'auto' }]) {
      const refused = await chat(PRIORITY_PROJECT, tier, LEAN_KEY)
      expect(refused.status).toBe(429)
      expect(refused.body.error).toMatchObject({ code: 'insufficient_quota', scope: `team:${LEAN_TEAM}` })
    }
    expect(gw.mock.requests.length).toBe(sent)
    expect(await walletOf(gw.admin, `team:${LEAN_TEAM}`)).toEqual(before)

    // The same call through the project left at the default, or asking for `default`, is served.
    expect((await chat(STANDARD_PROJECT, {}, LEAN_KEY)).status).toBe(200)
    expect((await chat(PRIORITY_PROJECT, { service_tier: 'default' }, LEAN_KEY)).status).toBe(200)
  })
})
