/**
 * No secret reaches a log line: neither the consumer key, the provider key nor the
 * admin token, whatever happens — successes, streams, bad keys, bad bodies, upstream errors, an
 * unreachable upstream, admin calls with good and bad tokens.
 *
 * How: listening gateways whose pino logger writes, at `trace`, into an array; every line captured
 * is searched for each secret. The test also checks that lines were captured at all (including an
 * error log carrying an `err`), so it cannot pass by logging nothing.
 */
import { Writable } from 'node:stream'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createLogger } from '../../src/observability/logger.js'
import { freePort } from '../support/free-port.js'
import { ADMIN_TOKEN, aConfig, CONSUMER_KEY, PROVIDER_KEY, startTestGateway, TEAM, type TestGateway } from '../support/gateway.js'

const SECRETS = { consumer: CONSUMER_KEY, provider: PROVIDER_KEY, admin: ADMIN_TOKEN }

function capturedLogger() {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'))
      done()
    },
  })
  return { lines, logger: createLogger({ level: 'trace', destination }) }
}

async function send(gw: TestGateway, path: string, body: string, headers: Record<string, string>): Promise<number> {
  const response = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
  await response.arrayBuffer()
  return response.status
}

const chat = (content: string, extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra })

describe('logs', () => {
  it('never contain the consumer key, the provider key or the admin token', async () => {
    const { lines, logger } = capturedLogger()
    const gw = await startTestGateway({ yaml: aConfig({ walletEnforcement: true }), logger })
    onTestFinished(() => gw.close())
    const bearer = { authorization: `Bearer ${CONSUMER_KEY}` }

    expect(await send(gw, '/v1/chat/completions', chat('before any wallet'), bearer)).toBe(429)
    await gw.allocate(TEAM, 5)
    expect(await send(gw, '/v1/chat/completions', chat('fine'), bearer)).toBe(200)
    expect(await send(gw, '/v1/chat/completions', chat('streamed', { stream: true }), { 'x-api-key': CONSUMER_KEY })).toBe(200)
    await send(gw, '/v1/chat/completions', chat('cut __tollgate_cut_stream__', { stream: true }), bearer).catch(() => 'cut mid-body')
    expect(await send(gw, '/v1/chat/completions', '{"broken', bearer)).toBe(400)
    expect(await send(gw, '/v1/chat/completions', chat('wrong key'), { authorization: `Bearer ${CONSUMER_KEY}x` })).toBe(401)
    gw.mock.setFailure({ status: 500, body: { error: { message: 'upstream exploded', type: 'server_error' } }, times: 1 })
    expect(await send(gw, '/v1/chat/completions', chat('fails upstream'), bearer)).toBe(500)
    expect((await gw.admin('GET', '/v1/usage?group_by=user')).status).toBe(200)
    expect((await gw.admin('POST', '/v1/wallets/allocate', { team_id: TEAM, amount: -1, currency: 'USD' })).status).toBe(400)
    expect((await fetch(`${gw.url}/v1/usage`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } })).status).toBe(401)
    await gw.app.usage.flush()

    expect(lines.length).toBeGreaterThan(0)
    expectNoSecrets(lines)
  })

  it('never contain them when the upstream cannot be reached either', async () => {
    const { lines, logger } = capturedLogger()
    const closedPort = await freePort()
    // The only target points at a port nobody listens on.
    const targets = [
      {
        id: 'mock',
        provider: 'mock' as const,
        baseUrl: `http://127.0.0.1:${closedPort}/v1`,
        apiKey: PROVIDER_KEY,
        apiKeyEnv: undefined,
        timeoutMs: 5_000,
        connectionsMax: 16,
      },
    ]
    const unreachable = await startTestGateway({ logger, configOverrides: { targets } })
    onTestFinished(() => unreachable.close())

    expect(await send(unreachable, '/v1/chat/completions', chat('anyone there?'), { authorization: `Bearer ${CONSUMER_KEY}` })).toBe(502)
    expect((await fetch(`${unreachable.url}/v1/models`, { headers: { 'x-api-key': CONSUMER_KEY } })).status).toBe(200)

    // The failed upstream listing is logged with its error: the test sees error paths, not just silence.
    expect(lines.some((line) => line.includes('could not list upstream models') && line.includes('"err"'))).toBe(true)
    expectNoSecrets(lines)
  })
})

function expectNoSecrets(lines: readonly string[]): void {
  for (const [name, secret] of Object.entries(SECRETS)) {
    expect(
      lines.filter((line) => line.includes(secret)),
      `${name} secret in a log line`,
    ).toEqual([])
  }
}
