/**
 * A refusal for want of funds counts the prompt exactly before it answers 429, and that count must
 * not stop the gateway answering anyone else:
 * - a prompt with one long run and no whitespace used to block the event loop: gpt-tokenizer
 *   merges a run in time quadratic in its length (64 KB of "x": 1.6 s). The count is now linear (a
 *   run that long counts as its bytes);
 * - a prompt of megabytes, under a raised `reservations.tokenizer_max_bytes`, takes seconds to
 *   count however it is written. It is now counted in slices, with the event loop turning between
 *   them.
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

/** /healthz back to back while `calls` run: the longest wait between two answers (how long the event loop was blocked). */
async function longestHealthzGapMs(gw: TestGateway, calls: Promise<unknown>): Promise<{ longestGapMs: number; answers: number }> {
  let done = false
  void calls.finally(() => {
    done = true
  })
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
  return { longestGapMs, answers }
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
    const calls = Promise.all([refused(gw, prompt), refused(gw, prompt), refused(gw, prompt)])
    // Each of the refusals took 1.6 s or more before.
    const { longestGapMs, answers } = await longestHealthzGapMs(gw, calls)
    expect(await calls).toEqual([429, 429, 429])
    expect(answers).toBeGreaterThan(0)
    expect(longestGapMs).toBeLessThan(500)
    expect(gw.mock.requests).toHaveLength(0)
  })
})

describe('a refused call with a 12 MB prompt under a tokenizer_max_bytes of 16 MiB', () => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await startTestGateway({
      yaml: `${aConfig({ walletEnforcement: true, bodyLimitBytes: 16 * 1024 * 1024 })}reservations:\n  tokenizer_max_bytes: 16777216\n`,
    })
    expect(await refused(gw, 'warm the tokenizer up')).toBe(429)
  })
  afterAll(() => gw?.close())

  it('is answered 429 while /healthz keeps answering', async () => {
    const prompt = 'Summarise the quarterly spend of every team, one line each. '.repeat(200_000)
    const started = performance.now()
    const calls = refused(gw, prompt)
    const { longestGapMs, answers } = await longestHealthzGapMs(gw, calls)
    expect(await calls).toBe(429)
    // The refusal lasted several times the longest wait (counted in one block, the wait was most
    // of it: 390 of 505 ms here), and the gateway kept answering meanwhile.
    expect(performance.now() - started).toBeGreaterThan(3 * longestGapMs)
    expect(answers).toBeGreaterThan(3)
    expect(longestGapMs).toBeLessThan(500)
    expect(gw.mock.requests).toHaveLength(0)
  })
})
