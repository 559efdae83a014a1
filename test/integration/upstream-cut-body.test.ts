/**
 * An upstream that sends its status, then hangs up partway through a whole (non-stream) body:
 * the client gets a clear 502 at once, and the call is settled as cut (charged its worst case,
 * flagged), never left holding its reservation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONSUMER_KEY, TEAM, type TestGateway } from '../support/gateway.js'
import { gatewayOnScriptedUpstream, type ScriptedUpstreamGateway } from '../support/scripted-upstream.js'

let running: ScriptedUpstreamGateway
let gw: TestGateway

beforeAll(async () => {
  running = await gatewayOnScriptedUpstream((res) => {
    const whole = JSON.stringify({ id: 'chatcmpl-cut', object: 'chat.completion', model: 'gpt-4o-mini', choices: [] })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(whole.length + 500) })
    res.write(whole.slice(0, 20))
    setTimeout(() => res.socket?.destroy(), 20)
  })
  gw = running.gw
})

afterAll(async () => {
  await running.close()
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
