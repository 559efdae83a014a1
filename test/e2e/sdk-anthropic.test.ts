/**
 * The real `@anthropic-ai/sdk` → a listening Tollgate (base URL without /v1, as the SDK expects)
 * → the mock upstream. Proves that Messages calls, plain and streamed, work unmodified and are
 * recorded with their cost; that only the provider key goes upstream; and that bad keys, upstream
 * errors and cut streams are handled as docs/errors.md and docs/costs.md say. Each test starts its own gateway.
 */
import Anthropic from '@anthropic-ai/sdk'
import { describe, expect, it, onTestFinished } from 'vitest'
import { aConfig, CONSUMER_KEY, PROVIDER_KEY, startTestGateway, TEAM, type ConfigSpec, type TestGateway } from '../support/gateway.js'

const MODEL = 'claude-haiku-4-5'
const ask = (content: string) => ({ model: MODEL, max_tokens: 200, messages: [{ role: 'user' as const, content }] })

async function gateway(spec: ConfigSpec = {}): Promise<{ gw: TestGateway; anthropic: Anthropic }> {
  const gw = await startTestGateway({ yaml: aConfig(spec) })
  onTestFinished(() => gw.close())
  return { gw, anthropic: new Anthropic({ baseURL: gw.url, apiKey: gw.consumerKey, maxRetries: 0 }) }
}

const usd = (micros: number) => (micros / 1e6).toFixed(6)

describe('@anthropic-ai/sdk through Tollgate', () => {
  it('answers a message and records its cost, the same as the cost header says', async () => {
    const { gw, anthropic } = await gateway({ walletEnforcement: true })
    await gw.allocate(TEAM, 5)

    const { data, response } = await anthropic.messages.create(ask('hello claude')).withResponse()

    const block = data.content[0]
    expect(block?.type === 'text' && block.text).toMatch(/^Tollgate mock reply to: hello claude/)
    const [event] = await gw.events()
    expect(event).toMatchObject({ endpoint: 'messages', status: 'ok', output_tokens: data.usage.output_tokens })
    expect(event!.cost_micros).toBeGreaterThan(0)
    expect(response.headers.get('x-tollgate-cost-usd')).toBe(usd(event!.cost_micros))
    expect(response.headers.get('x-tollgate-wallet')).toBe(`team:${TEAM}`)
  })

  it('streams a message and records the usage the stream reported', async () => {
    const { gw, anthropic } = await gateway()

    const stream = anthropic.messages.stream(ask('stream claude'))
    const final = await stream.finalMessage()

    const block = final.content[0]
    expect(block?.type === 'text' && block.text).toMatch(/^Tollgate mock reply to: stream claude/)
    const [event] = await gw.events()
    expect(event).toMatchObject({ endpoint: 'messages', status: 'ok', output_tokens: final.usage.output_tokens })
    expect(event!.cost_micros).toBeGreaterThan(0)
  })

  it('lists models in the Anthropic shape for the Anthropic client', async () => {
    const { anthropic } = await gateway()
    const page = await anthropic.models.list()
    const ids = page.data.map((m) => m.id)
    expect(ids).toContain('claude-sonnet-4-5')
    expect(ids.some((id) => id.startsWith('gpt-'))).toBe(false)
    expect(page.data[0]).toMatchObject({ type: 'model', display_name: expect.any(String) })
  })

  it('refuses an unknown key with 401 (AuthenticationError, Anthropic envelope) and sends nothing upstream', async () => {
    const { gw } = await gateway()
    const stranger = new Anthropic({ baseURL: gw.url, apiKey: 'tg_not_a_key', maxRetries: 0 })

    const error = await stranger.messages.create(ask('hi')).catch((e: unknown) => e)

    expect(error).toBeInstanceOf(Anthropic.AuthenticationError)
    expect((error as InstanceType<typeof Anthropic.AuthenticationError>).error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } })
    expect(gw.mock.requests).toEqual([])
  })

  it('sends the provider key upstream as x-api-key, never the consumer key', async () => {
    const { gw, anthropic } = await gateway()

    await anthropic.messages.create(ask('whose key'))

    expect(gw.mock.requests).toHaveLength(1)
    expect(gw.mock.requests[0]?.headers['x-api-key']).toBe(PROVIDER_KEY)
    expect(gw.mock.requests[0]?.headers['anthropic-version']).toBeDefined()
    expect(JSON.stringify(gw.mock.requests)).not.toContain(CONSUMER_KEY)
  })

  it('settles a message stream the upstream cut for what was delivered, and the client sees it cut', async () => {
    const { gw, anthropic } = await gateway({ walletEnforcement: true })
    await gw.allocate(TEAM, 5)

    const stream = anthropic.messages.stream(ask('long __tollgate_cut_stream__ answer'))
    const outcome = await stream.finalMessage().catch((e: unknown) => e)

    expect(outcome).toBeInstanceOf(Error)
    const [event] = await gw.events()
    expect(event).toMatchObject({ endpoint: 'messages', status: 'cut' })
    expect(event!.output_tokens).toBeGreaterThan(0)
    expect(event!.cost_micros).toBeGreaterThan(0)
    expect(await gw.app.stores.ledger.getReservation('default', event!.reservation_id!)).toMatchObject({ status: 'settled', settledMicros: event!.cost_micros })
  })

  it('passes an upstream 500 through with its own status and body, records zero cost and voids the reservation', async () => {
    const { gw, anthropic } = await gateway({ walletEnforcement: true })
    await gw.allocate(TEAM, 5)
    const upstreamError = { type: 'error', error: { type: 'api_error', message: 'Internal server error' } }
    gw.mock.setFailure({ status: 500, body: upstreamError, times: 1 })

    const error = await anthropic.messages.create(ask('fail')).catch((e: unknown) => e)

    expect(error).toBeInstanceOf(Anthropic.InternalServerError)
    expect((error as InstanceType<typeof Anthropic.InternalServerError>).error).toEqual(upstreamError)
    const [event] = await gw.events()
    expect(event).toMatchObject({ status: 'upstream_error', http_status: 500, cost_micros: 0 })
    expect(await gw.app.stores.ledger.getReservation('default', event!.reservation_id!)).toMatchObject({ status: 'voided', settledMicros: 0 })
  })

  it('counts an upstream 529 overloaded error as spending nothing', async () => {
    const { gw, anthropic } = await gateway()
    gw.mock.setFailure({ status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, times: 1 })

    const error = await anthropic.messages.create(ask('busy')).catch((e: unknown) => e)

    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529)
    expect(await gw.events()).toMatchObject([{ status: 'upstream_error', http_status: 529, cost_micros: 0 }])
  })
})
