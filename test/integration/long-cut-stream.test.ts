/**
 * A stream the upstream cuts after a long answer (hundreds of kilobytes of text, no usage) takes
 * the path that counts the delivered text in slices, letting other calls run between them
 * (src/lib/tokenizer.test.ts shows the event loop turning meanwhile); the call is still settled
 * for exactly the tokenizer's count of the whole text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { countSliceChars, countTokens } from '../../src/lib/tokenizer.js'
import { CONSUMER_KEY, TEAM, type TestGateway } from '../support/gateway.js'
import { gatewayOnScriptedUpstream, type ScriptedUpstreamGateway } from '../support/scripted-upstream.js'

const sentence = 'Budgets are checked before a call is sent, and usage is settled after it returns. '
const deltas = Array.from({ length: 3_000 }, (_, i) => `${i}: ${sentence}`)
const delivered = deltas.join('')

let running: ScriptedUpstreamGateway
let gw: TestGateway

beforeAll(async () => {
  running = await gatewayOnScriptedUpstream((res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const chunk = (content: string) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-long', object: 'chat.completion.chunk', model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content } }] })}\n\n`
    res.write(deltas.map(chunk).join(''))
    // No usage chunk and no [DONE]: the provider hangs up.
    setTimeout(() => res.socket?.destroy(), 50)
  })
  gw = running.gw
})

afterAll(async () => {
  await running.close()
})

describe('a long stream the upstream cuts before its usage', () => {
  it('is settled for exactly the tokens of what was delivered', async () => {
    expect(delivered.length).toBeGreaterThan(5 * countSliceChars)
    const response = await fetch(new URL('/v1/chat/completions', gw.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, max_tokens: 100_000, messages: [{ role: 'user', content: 'write at length' }] }),
    })
    expect(response.status).toBe(200)
    const relayed = await response.text().catch(() => '')
    expect(relayed).toContain('2999: Budgets')

    const events = (await gw.admin('GET', '/v1/usage/events')).body.data as Array<Record<string, unknown>>
    expect(events).toEqual([expect.objectContaining({ status: 'cut', usage_source: 'counted', usage_note: 'cut_before_usage' })])
    expect((events[0]!.tokens as { output: number }).output).toBe(countTokens(delivered))
    const wallet = (await gw.admin('GET', '/v1/wallets')).body.data.find((w: { scope: string }) => w.scope === `team:${TEAM}`)
    expect(wallet.reserved_micros).toBe(0)
    expect(wallet.spent_micros).toBe(events[0]!.cost_micros)
  })
})
