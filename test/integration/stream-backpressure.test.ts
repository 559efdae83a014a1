/**
 * A slow client slows the upstream down instead of filling the gateway's memory. A stream is
 * relayed chunk by chunk; when the client's socket is full the gateway stops reading the
 * upstream's body until it drains, so the provider's own writes back up. Method: an upstream
 * that streams 64 MiB of OpenAI chat chunks, waiting for 'drain' whenever its socket is full, and
 * a client that reads nothing for two seconds, then everything. While the client was paused the
 * upstream must have been held back (without back-pressure the gateway read all 64 MiB into its
 * memory within that time), and the client must still get every byte, with the cost. Waiting
 * for the client thousands of times must not pile listeners onto its response (Node warns of a
 * leak when it does).
 */
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { CONSUMER_KEY, PROVIDER_KEY, aConfig, startTestGateway, type TestGateway } from '../support/gateway.js'

const EVENTS = 4_096
const CHUNK_CHARS = 16 * 1024
const CLIENT_PAUSE_MS = 2_000

let upstream: Server
let upstreamUrl: string
/** Events of the upstream's reply written so far, and its bytes. */
let eventsSent = 0
let bytesSent = 0
let gw: TestGateway

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => void streamReply(res))
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  // The default test config's targets, pointed at this upstream instead of the mock.
  const targets = parseConfig(aConfig(), '<test>', { env: {} }).targets.map((t) => ({ ...t, baseUrl: `${upstreamUrl}/v1`, apiKey: PROVIDER_KEY }))
  gw = await startTestGateway({ configOverrides: { targets } })
})

afterAll(async () => {
  await gw.close()
  await new Promise((resolve) => upstream.close(resolve))
})

/** OpenAI chat chunks of CHUNK_CHARS characters each, then the usage chunk and [DONE]; waits for 'drain' whenever its socket is full. */
async function streamReply(res: import('node:http').ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  const content = 'x'.repeat(CHUNK_CHARS)
  for (let i = 0; i < EVENTS; i++) {
    const chunk = { id: 'chatcmpl-bp', object: 'chat.completion.chunk', model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content }, finish_reason: null }] }
    const event = `data: ${JSON.stringify(chunk)}\n\n`
    bytesSent += event.length
    const accepted = res.write(event)
    eventsSent++
    if (!accepted) await new Promise((resolve) => res.once('drain', resolve))
  }
  const usage = { prompt_tokens: 12, completion_tokens: EVENTS * 4, total_tokens: 12 + EVENTS * 4 }
  const tail = `data: ${JSON.stringify({ id: 'chatcmpl-bp', object: 'chat.completion.chunk', model: 'gpt-4o-mini', choices: [], usage })}\n\ndata: [DONE]\n\n`
  bytesSent += tail.length
  res.end(tail)
}

describe('a slow client reading a large stream', () => {
  it('holds the upstream back while the client reads nothing, then delivers every byte and the cost', async () => {
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`)
    process.on('warning', onWarning)
    const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'long' }] })
    const url = new URL('/v1/chat/completions', gw.url)
    const reply = await new Promise<{ status: number; bytes: number; last: string; trailers: NodeJS.Dict<string>; sentWhilePaused: number }>(
      (resolve, reject) => {
        const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json' } }, (res) => {
          res.pause()
          setTimeout(() => {
            const sentWhilePaused = eventsSent
            let bytes = 0
            let last = ''
            res.on('data', (part: Buffer) => {
              bytes += part.length
              last = (last + part.toString('latin1')).slice(-64)
            })
            res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, last, trailers: res.trailers, sentWhilePaused }))
            res.resume()
          }, CLIENT_PAUSE_MS)
        })
        req.on('error', reject)
        req.end(body)
      },
    )

    expect(reply.status).toBe(200)
    // Held back while the client read nothing: far from all of it had been sent.
    expect(reply.sentWhilePaused).toBeLessThan(EVENTS / 2)
    // Then every byte, as the upstream sent it, and the cost.
    expect(reply.bytes).toBe(bytesSent)
    expect(reply.last.endsWith('data: [DONE]\n\n')).toBe(true)
    expect(Number(reply.trailers['x-tollgate-cost-usd'])).toBeGreaterThan(0)
    const [event] = await gw.events()
    expect(event).toMatchObject({ status: 'ok', output_tokens: EVENTS * 4 })
    process.off('warning', onWarning)
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([])
  }, 30_000)
})
