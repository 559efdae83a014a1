/**
 * The upstream connection limit per target (`providers.targets[].connections_max`): calls beyond
 * it wait inside the gateway, and `/metrics` says how many wait; with the default, hundreds of
 * concurrent calls each get a connection at once. (2,000 concurrent one-second streams is a
 * bench case, `npm run bench -- --streams`: too heavy for a 2-core test run.)
 *
 * How: a real listening gateway on SQLite, its one target pointed at an upstream that holds every
 * call until released, calls sent with fetch, the gauges read from GET /metrics while they wait.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parseConfig } from '../config/index.js'
import { DEFAULTS } from '../config/defaults.js'
import { PROVIDER_KEY, startTestGateway, type TestGateway } from '../../test/support/gateway.js'

/** A gateway whose one target is `upstream`, with `connectionsMax` connections at most. */
async function gatewayOn(upstream: { url: string }, connectionsMax: number): Promise<TestGateway> {
  const targets = [
    { id: 'mock', provider: 'mock' as const, baseUrl: `${upstream.url}/v1`, apiKey: PROVIDER_KEY, apiKeyEnv: undefined, timeoutMs: 60_000, connectionsMax },
  ]
  const gw = await startTestGateway({ configOverrides: { targets } })
  onTestFinished(() => gw.close())
  return gw
}

async function gauge(gw: TestGateway, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${gw.url}/metrics`)).text()
  const match = new RegExp(`^${name}\\{target="mock"\\} (\\d+)$`, 'm').exec(text)
  return match ? Number(match[1]) : undefined
}

async function chat(gw: TestGateway): Promise<number> {
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.consumerKey}` },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'hello' }] }),
  })
  await response.arrayBuffer()
  return response.status
}

/** An OpenAI-shaped upstream that answers nothing until `release()`; counts the calls it holds open. */
async function gatedUpstream(): Promise<{ url: string; open(): number; waitForOpen(count: number): Promise<void>; release(): void }> {
  let open = 0
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  const completion = JSON.stringify({
    id: 'chatcmpl-gate',
    object: 'chat.completion',
    created: 0,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 8, completion_tokens: 1, total_tokens: 9 },
  })
  const server = createServer((req, res) => {
    req.resume()
    open += 1
    void released.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(completion))
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => {
    release()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open: () => open,
    async waitForOpen(count) {
      const deadline = Date.now() + 45_000
      while (open < count) {
        if (Date.now() > deadline) throw new Error(`only ${open} of ${count} calls reached the upstream at once`)
        await sleep(20)
      }
    },
    release,
  }
}

/** Polls the gauge until it reads `value` (or 30 s pass); returns the last reading. */
async function waitForGauge(gw: TestGateway, name: string, value: number): Promise<number | undefined> {
  const deadline = Date.now() + 30_000
  let last = await gauge(gw, name)
  while (last !== value && Date.now() < deadline) {
    await sleep(50)
    last = await gauge(gw, name)
  }
  return last
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('upstream connections per target', () => {
  it('queues calls beyond connections_max, counts them in tollgate_upstream_queued_requests, and serves them all', async () => {
    const gate = await gatedUpstream()
    const gw = await gatewayOn(gate, 2)

    const calls = Array.from({ length: 6 }, () => chat(gw))
    await gate.waitForOpen(2)
    const queued = await waitForGauge(gw, 'tollgate_upstream_queued_requests', 4)
    const connections = await gauge(gw, 'tollgate_upstream_connections')
    const openAtUpstream = gate.open()
    gate.release()
    const statuses = await Promise.all(calls)

    expect({ queued, connections, openAtUpstream }).toEqual({ queued: 4, connections: 2, openAtUpstream: 2 })
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200])
    expect(await gauge(gw, 'tollgate_upstream_queued_requests')).toBe(0)
  }, 60_000)

  it('by default lets 400 concurrent calls each have a connection at once: none waits', async () => {
    // An upstream that holds every call until 400 are open at once (past the old fixed limit of
    // 256), so the test waits on the count, not on the clock of a busy machine.
    const gate = await gatedUpstream()
    const gw = await gatewayOn(gate, DEFAULTS.target.connectionsMax)

    const calls = Array.from({ length: 400 }, () => chat(gw))
    await gate.waitForOpen(400)
    const queued = await gauge(gw, 'tollgate_upstream_queued_requests')
    const running = await gauge(gw, 'tollgate_upstream_running_requests')
    gate.release()
    const statuses = await Promise.all(calls)

    expect({ queued, running }).toEqual({ queued: 0, running: 400 })
    expect(statuses.every((s) => s === 200)).toBe(true)
  }, 60_000)

  it('refuses a connections_max outside 1–65,536, naming the key', () => {
    const yaml = (value: number) => `version: '1'\nproviders:\n  targets:\n    - {id: up, provider: mock, connections_max: ${value}}\n`
    expect(() => parseConfig(yaml(0), 'bad.yaml', { env: {} })).toThrow(/providers\.targets\[0\]\.connections_max.*at least 1/s)
    expect(parseConfig(yaml(64), 'ok.yaml', { env: {} }).targets[0]?.connectionsMax).toBe(64)
  })
})
