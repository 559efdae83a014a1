/**
 * Where the demo's notification channels deliver: a small HTTP receiver on loopback that accepts
 * the webhook and Slack posts and counts them, so the channels, preferences and delivery of a
 * real install have something to talk to without leaving the machine.
 */
import { createServer, type Server } from 'node:http'

/** A delivery body larger than this is cut off and refused (the receiver keeps nothing). */
const BODY_BYTES_MAX = 1_000_000

export interface DemoReceiver {
  readonly url: string
  /** Deliveries received per path (`/webhook`, `/slack`). */
  readonly received: ReadonlyMap<string, number>
  close(): Promise<void>
}

export async function startDemoReceiver(): Promise<DemoReceiver> {
  const received = new Map<string, number>()
  const server: Server = createServer((request, response) => {
    let bytes = 0
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > BODY_BYTES_MAX) request.destroy()
    })
    request.on('end', () => {
      const path = (request.url ?? '/').split('?')[0]!
      received.set(path, (received.get(path) ?? 0) + 1)
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
