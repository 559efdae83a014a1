/**
 * A client that hangs up stops the upstream, whenever it hangs up: the provider stops generating
 * what nobody will read, and the call is charged for what was produced until then. Method: an
 * upstream that answers a stream only after HEADERS_DELAY_MS, then writes an event every
 * EVENT_GAP_MS, counting the events it wrote until its connection closed.
 */
import { createServer, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { CONSUMER_KEY, PROVIDER_KEY, TEAM, aConfig, startTestGateway, type TestGateway } from '../support/gateway.js'
import { until } from './hard-caps-support.js'

const HEADERS_DELAY_MS = 500
const EVENT_GAP_MS = 10
const EVENTS = 300

let upstream: Server
let gw: TestGateway
/** Per upstream request: events written, and whether its connection has closed. */
const replies: Array<{ events: number; closed: boolean }> = []

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => void streamReply(res))
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const targets = parseConfig(aConfig(), '<test>', { env: {} }).targets.map((t) => ({ ...t, baseUrl: `${url}/v1`, apiKey: PROVIDER_KEY }))
  gw = await startTestGateway({ configOverrides: { targets } })
  await gw.allocate(TEAM, 10)
})

afterAll(async () => {
  await gw.close()
  await new Promise((resolve) => upstream.close(resolve))
})

async function streamReply(res: ServerResponse): Promise<void> {
  const reply = { events: 0, closed: false }
  replies.push(reply)
  res.on('close', () => (reply.closed = true))
  await new Promise((resolve) => setTimeout(resolve, HEADERS_DELAY_MS))
  if (reply.closed) return
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  for (let i = 0; i < EVENTS && !reply.closed; i++) {
    const chunk = {
      id: 'chatcmpl-gone',
      object: 'chat.completion.chunk',
      model: 'gpt-4o-mini',
      choices: [{ index: 0, delta: { content: 'word ' }, finish_reason: null }],
    }
    res.write(`data: ${JSON.stringify(chunk)}\n\n`)
    reply.events++
    await new Promise((resolve) => setTimeout(resolve, EVENT_GAP_MS))
  }
  res.end('data: [DONE]\n\n')
}

describe('a client that hangs up before the upstream answers', () => {
  it('stops the upstream as soon as it answers, and the call is recorded as cut', async () => {
    const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, max_tokens: 50, messages: [{ role: 'user', content: 'hello' }] })
    const req = request(new URL('/v1/chat/completions', gw.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json' },
    })
    req.on('error', () => {})
    req.end(body)
    await until('the upstream got the call', async () => replies.length === 1 || undefined)
    req.destroy()

    const reply = replies[0]!
    await until('the upstream connection closed', async () => reply.closed || undefined, 5_000)
    // Stopped right after its headers, not after its EVENTS × EVENT_GAP_MS (3 s) stream.
    expect(reply.events).toBeLessThan(20)
    const events = (await gw.admin('GET', '/v1/usage/events')).body.data as Array<{ status: string }>
    expect(events).toEqual([expect.objectContaining({ status: 'cut' })])
    const wallet = (await gw.admin('GET', '/v1/wallets')).body.data.find((w: { scope: string }) => w.scope === `team:${TEAM}`)
    expect(wallet.reserved_micros).toBe(0)
  })
})
