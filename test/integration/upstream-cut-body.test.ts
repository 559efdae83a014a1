/**
 * An upstream that sends its status, then hangs up partway through a whole (non-stream) body:
 * the client gets a clear 502 at once, and the call is settled as cut (charged its worst case,
 * flagged), never left holding its reservation.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { CONSUMER_KEY, PROVIDER_KEY, TEAM, aConfig, startTestGateway, type TestGateway } from '../support/gateway.js'

let upstream: Server
let gw: TestGateway

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const whole = JSON.stringify({ id: 'chatcmpl-cut', object: 'chat.completion', model: 'gpt-4o-mini', choices: [] })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(whole.length + 500) })
      res.write(whole.slice(0, 20))
      setTimeout(() => res.socket?.destroy(), 20)
    })
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const yaml = aConfig({ walletEnforcement: true })
  const targets = parseConfig(yaml, '<test>', { env: {} }).targets.map((t) => ({ ...t, baseUrl: `${url}/v1`, apiKey: PROVIDER_KEY }))
  gw = await startTestGateway({ yaml, configOverrides: { targets } })
  await gw.allocate(TEAM, 10)
})

afterAll(async () => {
  await gw.close()
  await new Promise((resolve) => upstream.close(resolve))
})

describe('an upstream that hangs up mid-body', () => {
  it('answers 502 upstream_unreachable and settles the call as cut', async () => {
    const started = Date.now()
    const response = await fetch(new URL('/v1/chat/completions', gw.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hello' }] }),
    })
    const body = (await response.json()) as { error: { code: string; message: string } }
    expect(response.status).toBe(502)
    expect(body.error.code).toBe('upstream_unreachable')
    expect(body.error.message).toMatch(/closed the connection mid-response/)
    expect(Date.now() - started).toBeLessThan(5_000)
    // The worst case was charged (the provider worked), and nothing stays reserved.
    expect(Number(response.headers.get('x-tollgate-cost-usd'))).toBeGreaterThan(0)
    const events = (await gw.admin('GET', '/v1/usage/events')).body.data as Array<{ status: string; http_status: number; cost_micros: number }>
    expect(events).toEqual([expect.objectContaining({ status: 'cut', http_status: 502, decision: 'allowed' })])
    const wallet = (await gw.admin('GET', '/v1/wallets')).body.data.find((w: { scope: string }) => w.scope === `team:${TEAM}`)
    expect(wallet.reserved_micros).toBe(0)
    expect(wallet.spent_micros).toBe(events[0]!.cost_micros)
    expect(wallet.spent_micros).toBeGreaterThan(0)
  })
})
