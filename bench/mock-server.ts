/**
 * The mock upstream in its own process, so it never shares an event loop with what is measured.
 * Runs the built code (`dist/`, as the gateway does); prints `MOCK_URL=http://127.0.0.1:PORT` once
 * listening and stops on SIGTERM/SIGINT.
 *
 *   tsx bench/mock-server.ts [port] [stream chunk delay ms]
 */
import type * as Providers from '../src/providers/index.js'

// dist/ carries no declarations: the types come from src/, the code from the build.
const distProviders = new URL('../dist/providers/index.js', import.meta.url).href
const { startMockUpstream } = (await import(distProviders)) as typeof Providers

const port = Number(process.argv[2] ?? '0')
const streamChunkDelayMs = Number(process.argv[3] ?? '0')
const mock = await startMockUpstream({ port, host: '127.0.0.1', latencyMs: 0, streamChunkDelayMs, requestsRecordedMax: 16 })
process.stdout.write(`MOCK_URL=${mock.url}\n`)

const stop = (): void => {
  mock.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
