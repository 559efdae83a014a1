/**
 * Ingestion's money invariants, property-tested against the embedded store: for random events
 * (random token splits, models, data modes, ids repeated within and across batches, batches
 * posted concurrently), every distinct external id is stored once, each event costs exactly the
 * catalogue price of its usage, its breakdown sums to that cost, and a budget over the team has
 * counted exactly the real events' costs — never a duplicate, never a demo event.
 *
 * How: `buildTestApp` (SQLite in a temp dir) and `fastify.inject`; expected costs from a separate
 * PriceBook over the same catalogue.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from '../../test/support/gateway.js'
import { PriceBook, costOfUsage } from '../pricing/index.js'
import { parseEvent } from './payload.js'
import { usageOf } from './ingestor.js'

const MODELS = ['gpt-4o-mini', 'gpt-4o', 'o3-mini'] as const
const catalogue = new PriceBook()

let t: TestApp
beforeAll(async () => {
  t = await buildTestApp()
})
afterAll(async () => {
  await t?.close()
})

async function request(method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown, key?: string) {
  const response = await t.app.fastify.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key ?? t.adminToken}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  })
  return { status: response.statusCode, body: (response.body === '' ? undefined : response.json()) as any }
}

/** One event's content, fixed per external id so whichever copy wins a race costs the same. */
const eventArb = fc
  .record({
    model: fc.constantFrom(...MODELS),
    inputTokens: fc.integer({ min: 0, max: 300_000 }),
    outputTokens: fc.integer({ min: 0, max: 50_000 }),
    cachedShare: fc.integer({ min: 0, max: 100 }),
    writeShare: fc.integer({ min: 0, max: 100 }),
    reasoningShare: fc.integer({ min: 0, max: 100 }),
    demo: fc.boolean(),
  })
  .map((e) => {
    const cached = Math.floor((e.inputTokens * e.cachedShare) / 200)
    const written = Math.floor((e.inputTokens * e.writeShare) / 200)
    return {
      provider: 'openai',
      model: e.model,
      inputTokens: e.inputTokens,
      outputTokens: e.outputTokens,
      cachedInputTokens: cached,
      cacheWriteTokens: written,
      cacheWrite1hTokens: Math.floor(written / 3),
      reasoningTokens: Math.floor((e.outputTokens * e.reasoningShare) / 100),
      dataMode: e.demo ? 'demo' : 'real',
    }
  })

function catalogueMicros(event: Record<string, unknown>): number {
  const payload = parseEvent({ externalRequestId: 'x', ...event })
  if ('code' in payload) throw new Error(payload.message)
  const usage = usageOf(payload)
  return costOfUsage(usage, catalogue.lookup('openai', payload.model, usage.inputTokens)!).totalMicros
}

describe('ingestion money invariants', () => {
  it('each distinct id is stored once at its catalogue price; a budget counts exactly the real ones', async () => {
    let run = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.array(fc.nat(), { minLength: 1, maxLength: 15 }), { minLength: 1, maxLength: 5 }),
        async (contents, batchPicks) => {
          run++
          const ids = contents.map((_, i) => `p${run}-${i}`)
          const budget = await request('POST', '/v1/billing/budgets', {
            name: `prop ${run}`,
            period: 'monthly',
            amount_usd: 1_000_000,
            scope: { kind: 'user', id: `prop-user-${run}`, team_id: 'team_test' },
          })
          expect(budget.status).toBe(201)
          const batches = batchPicks.map((picks) =>
            picks.map((p) => ({ externalRequestId: ids[p % ids.length]!, userId: `prop-user-${run}`, ...contents[p % ids.length]! })),
          )
          const answers = await Promise.all(batches.map((events) => request('POST', '/v1/events', { events }, t.consumerKey)))
          const created = new Map<string, string>()
          for (const [b, answer] of answers.entries()) {
            expect(answer.body.rejected, JSON.stringify(answer.body)).toBe(0)
            for (const r of answer.body.results) if (r.status === 'created') created.set(batches[b]![r.index]!.externalRequestId, r.id)
          }
          const sent = new Set(batches.flat().map((e) => e.externalRequestId))
          expect(new Set(created.keys())).toEqual(sent)

          const listed = (await request('GET', `/v1/usage/events?user=prop-user-${run}&limit=1000`)).body.data as any[]
          expect(listed.map((e) => e.id).sort()).toEqual([...created.values()].sort())
          let realMicros = 0
          for (const event of listed) {
            const content = contents[ids.indexOf(event.external_request_id)]!
            const expected = catalogueMicros(content)
            expect(event.cost_micros).toBe(expected)
            expect(event.cost_breakdown.parts.reduce((sum: number, p: { cost_micros: number }) => sum + p.cost_micros, 0)).toBe(expected)
            if (content.dataMode === 'real') realMicros += expected
          }
          const posture = (await request('GET', `/v1/billing/budgets/${budget.body.id}`)).body.posture
          expect(Math.round(posture.spend_usd * 1e6)).toBe(realMicros)
          await request('DELETE', `/v1/billing/budgets/${budget.body.id}`)
        },
      ),
      { numRuns: 25 },
    )
  }, 120_000)
})

describe('parseEvent', () => {
  it('names the field of the first problem, and reads null as absent', () => {
    expect(parseEvent({ externalRequestId: 'a', provider: 'openai', model: 'm', inputTokens: 1, outputTokens: 1, userId: null })).toMatchObject({
      userId: undefined,
    })
    expect(parseEvent({ provider: 'openai', model: 'm', inputTokens: 1, outputTokens: 1 })).toMatchObject({
      field: 'externalRequestId',
      message: 'externalRequestId: required',
    })
    expect(parseEvent({ externalRequestId: 'a', provider: 'openai', model: 'm', inputTokens: 1.5, outputTokens: 1 })).toMatchObject({ field: 'inputTokens' })
    expect(parseEvent({ externalRequestId: 'a', provider: 'openai', model: 'm', inputTokens: 1, outputTokens: 1, reasoningTokens: 2 })).toMatchObject({
      field: 'reasoningTokens',
    })
    expect(
      parseEvent({ externalRequestId: 'a', provider: 'openai', model: 'm', inputTokens: 1, outputTokens: 1, occurredAt: '2026-12-01 10:00' }),
    ).toMatchObject({ field: 'occurredAt' })
    expect(parseEvent({ externalRequestId: 'a', provider: 'openai', model: 'm', inputTokens: 1, outputTokens: 1, costUsd: 0.1234567 })).toMatchObject({
      field: 'costUsd',
    })
    expect(
      parseEvent({ externalRequestId: 'a', provider: 'openai', model: 'm', inputTokens: 1, outputTokens: 1, costUsd: '0.25', occurredAt: 1_764_583_200_000 }),
    ).toMatchObject({ costUsd: 250_000, occurredAt: 1_764_583_200_000 })
    expect(parseEvent([1])).toMatchObject({ code: 'invalid_request', field: undefined })
  })
})
