/**
 * A gateway (wallet enforcement on, the team's wallet funded) whose every target points at an
 * upstream the test writes itself: for answers the mock cannot give (a body cut mid-way, a stream
 * of hundreds of kilobytes).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseConfig } from '../../src/config/index.js'
import { PROVIDER_KEY, TEAM, aConfig, startTestGateway, type TestGateway } from './gateway.js'

export interface ScriptedUpstreamGateway {
  readonly gw: TestGateway
  close(): Promise<void>
}

/** `answer` is called once each request's body has been read. */
export async function gatewayOnScriptedUpstream(answer: (res: ServerResponse) => void, walletUsd = 10): Promise<ScriptedUpstreamGateway> {
  const upstream = createServer((req: IncomingMessage, res) => {
    req.resume()
    req.on('end', () => answer(res))
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const yaml = aConfig({ walletEnforcement: true })
  const targets = parseConfig(yaml, '<test>', { env: {} }).targets.map((t) => ({ ...t, baseUrl: `${url}/v1`, apiKey: PROVIDER_KEY }))
  const gw = await startTestGateway({ yaml, configOverrides: { targets } })
  await gw.allocate(TEAM, walletUsd)
  return {
    gw,
    async close() {
      await gw.close()
      await new Promise((resolve) => upstream.close(resolve))
    },
  }
}
