/**
 * The yardstick: the least a JSON-aware pass-through proxy must do, with the same tools the
 * gateway uses (node:http in, an undici Pool out). It parses the request body and serialises it
 * again, parses the whole non-stream response (then sends the raw bytes), and parses every SSE
 * `data:` line of a stream while forwarding chunks as they arrive. The gateway/bare ratio then
 * measures the gateway's own work: auth, routing, pricing, reservations, headers, usage events.
 *
 *   tsx bench/bare-proxy.ts UPSTREAM_ORIGIN [port]   → prints BARE_URL=http://127.0.0.1:PORT
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'

const upstreamOrigin = process.argv[2]
if (upstreamOrigin === undefined) throw new Error('usage: bare-proxy.ts UPSTREAM_ORIGIN [port]')
const port = Number(process.argv[3] ?? '0')

const requestBodyBytesMax = 4 * 1024 * 1024
/** As many as the gateway's default (`connections_max`): the yardstick must not queue 2,000 streams either. */
const upstreamConnectionsMax = 8192
const sseLineBytesMax = 1024 * 1024

const upstream = new Pool(upstreamOrigin, { connections: upstreamConnectionsMax, pipelining: 1, keepAliveTimeout: 60_000 })

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > requestBodyBytesMax) throw new Error('request body too large')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/** Parses each complete `data:` line as JSON (as the gateway's usage tracker must), keeping the partial tail. */
class SseLineParser {
  private tail = ''
  push(chunk: Buffer): void {
    const text = this.tail + chunk.toString('utf8')
    const lines = text.split('\n')
    this.tail = lines.pop() ?? ''
    if (this.tail.length > sseLineBytesMax) throw new Error('SSE line too long')
    for (const line of lines) {
      if (!line.startsWith('data:')) continue
      const data = line.slice(5).trim()
      if (data === '' || data === '[DONE]') continue
      JSON.parse(data)
    }
  }
}

async function proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = JSON.parse((await readBody(req)).toString('utf8')) as Record<string, unknown>
  const stream = body.stream === true
  const response = await upstream.request({
    method: 'POST',
    path: req.url ?? '/',
    headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
    body: JSON.stringify(body),
  })
  const contentType = response.headers['content-type']
  const headers = { 'content-type': typeof contentType === 'string' ? contentType : 'application/json' }
  if (!stream || response.statusCode !== 200) {
    const raw = Buffer.from(await response.body.arrayBuffer())
    JSON.parse(raw.toString('utf8'))
    res.writeHead(response.statusCode, { ...headers, 'content-length': raw.length })
    res.end(raw)
    return
  }
  res.writeHead(200, headers)
  const parser = new SseLineParser()
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    parser.push(chunk)
    res.write(chunk)
  }
  res.end()
}

const server = createServer((req, res) => {
  proxy(req, res).catch((error: unknown) => {
    if (res.headersSent) {
      res.destroy()
      return
    }
    res.writeHead(502, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: { message: (error as Error).message } }))
  })
})
server.keepAliveTimeout = 60_000

// The gateway's backlog: thousands of clients may connect at once (`--streams`).
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  const { port: bound } = server.address() as AddressInfo
  process.stdout.write(`BARE_URL=http://127.0.0.1:${bound}\n`)
})

const stop = (): void => {
  server.close()
  server.closeAllConnections()
  upstream.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
