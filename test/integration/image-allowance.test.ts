/**
 * Images on gpt-4o-mini: OpenAI bills each one as up to 48,169 input tokens (2,833 base + 8 tiles
 * of 5,667), six times the flat 8,192-token allowance other models get. The reservation follows
 * the model the call is sent upstream as, so a gpt-4o-mini call with images is reserved at what
 * it can be billed and a wallet that cannot cover that is refused before anything is sent.
 *
 * How: a real listening gateway on SQLite (`startTestGateway`, the mock upstream in this process),
 * driven with `fetch`. Two aliases with the same round price (1 µ$ per token in and out) differ
 * only in their upstream model; gpt-4o-mini is also called by its own id at the catalogue price.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { CONSUMER_KEY, TEAM, aConfig, startTestGateway, type TestGateway } from '../support/gateway.js'
import { usdToMicros } from './hard-caps-support.js'

const MINI = 'vision-mini'
const WIDE = 'vision-4o'
/** The most gpt-4o-mini bills one image, and the flat allowance of every other model. */
const MINI_IMAGE_TOKENS = 2_833 + 8 * 5_667
const FLAT_IMAGE_TOKENS = 8_192
/** "compare these" (13 bytes) + 1 segment + 4 framing + 3 priming, by the byte bound. */
const TEXT_TOKENS = 21
/** What the worst case adds to its parts for per-part rounding (`worstCaseRoundingSlackMicros`). */
const SLACK = 6

const open: TestGateway[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((gw) => gw.close()))
})

/** With the two aliases, or (`catalogue`) with no `models:` at all, so gpt-4o-mini has its catalogue price. */
async function aGateway(catalogue = false): Promise<TestGateway> {
  const models = [
    { name: MINI, target: 'mock', upstream_model: 'gpt-4o-mini', pricing: { input_mtok: 1, output_mtok: 1 } },
    { name: WIDE, target: 'mock', upstream_model: 'gpt-4o', pricing: { input_mtok: 1, output_mtok: 1 } },
  ]
  const gw = await startTestGateway({ yaml: aConfig({ walletEnforcement: true, ...(catalogue ? {} : { models }) }) })
  open.push(gw)
  return gw
}

/** A chat call with two images by URL and a 100-token cap. */
function twoImages(gw: TestGateway, model: string): Promise<Response> {
  const image = (n: number) => ({ type: 'image_url', image_url: { url: `https://example.com/page-${n}.png`, detail: 'high' } })
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      max_tokens: 100,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'compare these' }, image(1), image(2)] }],
    }),
  })
}

describe('images on gpt-4o-mini', () => {
  it("reserve each image at gpt-4o-mini's largest; the same call on gpt-4o keeps the flat allowance", async () => {
    const gw = await aGateway()
    await gw.allocate(TEAM, 5)
    const mini = await twoImages(gw, MINI)
    const wide = await twoImages(gw, WIDE)
    expect([mini.status, wide.status]).toEqual([200, 200])
    await Promise.all([mini.json(), wide.json()])
    expect(usdToMicros(mini.headers.get('x-tollgate-cost-reserved-usd'))).toBe(TEXT_TOKENS + 2 * MINI_IMAGE_TOKENS + 100 + SLACK)
    expect(usdToMicros(wide.headers.get('x-tollgate-cost-reserved-usd'))).toBe(TEXT_TOKENS + 2 * FLAT_IMAGE_TOKENS + 100 + SLACK)
  })

  it('reserve at least two whole images at the catalogue price when called by its own id', async () => {
    const gw = await aGateway(true)
    await gw.allocate(TEAM, 5)
    const res = await twoImages(gw, 'gpt-4o-mini')
    expect(res.status).toBe(200)
    await res.json()
    // $0.15 per Mtok input: 0.15 µ$ per token.
    expect(usdToMicros(res.headers.get('x-tollgate-cost-reserved-usd'))).toBeGreaterThanOrEqual(Math.ceil(2 * MINI_IMAGE_TOKENS * 0.15))
  })

  it('are refused 429 on a wallet that covers the flat allowance but not what gpt-4o-mini can bill', async () => {
    const gw = await aGateway()
    // $0.05: above the flat worst case (16,511 µ$), below gpt-4o-mini's (96,454 µ$).
    await gw.allocate(TEAM, 0.05)
    const refused = await twoImages(gw, MINI)
    expect(refused.status).toBe(429)
    const body = (await refused.json()) as any
    expect(body.error.code).toBe('insufficient_quota')
    // A refusal counts the text with the tokenizer ("compare these" is 2 tokens, not 13 bytes).
    expect(body.error.message).toContain('$0.096454')
    expect(gw.mock.requests).toHaveLength(0)
    // The same call on gpt-4o fits the same wallet.
    const served = await twoImages(gw, WIDE)
    expect(served.status).toBe(200)
    await served.json()
  })
})
