/**
 * A prompt with one long run and no whitespace used to block the event loop while it was counted:
 * gpt-tokenizer merges a run in time quadratic in its length (64 KB of "x": 1.6 s), and a refusal
 * for want of funds counts the prompt exactly before it answers 429. The count is now linear (a run
 * that long counts as its bytes), so the gateway keeps answering meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONSUMER_KEY, aConfig, startTestGateway, type TestGateway } from '../support/gateway.js'

const chat = (content: string) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 100 })

async function refused(gw: TestGateway, content: string): Promise<number> {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json' },
    body: chat(content),
  })
  await response.arrayBuffer()
  return response.status
}

describe('a refused call with a 64 KB prompt without whitespace', () => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await startTestGateway({ yaml: aConfig({ walletEnforcement: true }) })
    // The first count loads the tokenizer's tables (half a second, once): not what is measured.
    expect(await refused(gw, 'warm the tokenizer up')).toBe(429)
  })
  afterAll(() => gw?.close())

  it('is answered 429 while /healthz keeps answering', async () => {
    const prompt = 'x'.repeat(64_000)
    let done = false
    const calls = Promise.all([refused(gw, prompt), refused(gw, prompt), refused(gw, prompt)]).finally(() => {
      done = true
    })
    // /healthz back to back for as long as the refusals run: the longest wait between two answers
    // is how long the event loop was blocked (each of them took 1.6 s or more before).
    let last = performance.now()
    let longestGapMs = 0
    let answers = 0
    while (!done) {
      const response = await fetch(`${gw.url}/healthz`)
      await response.arrayBuffer()
      expect(response.status).toBe(200)
      const now = performance.now()
      longestGapMs = Math.max(longestGapMs, now - last)
      last = now
      answers++
    }
    expect(await calls).toEqual([429, 429, 429])
    expect(answers).toBeGreaterThan(0)
    expect(longestGapMs).toBeLessThan(500)
    expect(gw.mock.requests).toHaveLength(0)
  })
})
