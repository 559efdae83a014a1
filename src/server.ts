/**
 * startServer: buildApp + listen + graceful shutdown. On SIGTERM/SIGINT the server stops taking
 * requests, lets in-flight calls finish (they settle their reservations), flushes the usage
 * queue and closes the store, so a restart loses nothing.
 */
import { buildApp, type App, type AppOptions } from './app.js'
import type { Config } from './config/index.js'
import { warmTokenizer } from './lib/tokenizer.js'
import { undici } from './lib/undici.js'

/** How long after listening the tokenizer starts loading: long enough for the first probes to be answered. */
const LAZY_MODULES_WARM_DELAY_MS = 250

export interface RunningServer {
  readonly app: App
  readonly url: string
  stop(): Promise<void>
}

export async function startServer(
  config: Config,
  options: AppOptions & { port?: number; host?: string; announce?: (line: string) => void } = {},
): Promise<RunningServer> {
  const app = await buildApp(config, options)
  const announce = options.announce ?? ((line: string) => process.stdout.write(`${line}\n`))
  const host = options.host ?? config.server.host
  const port = options.port ?? config.server.port
  try {
    await app.fastify.listen({ host, port, backlog: config.server.listenBacklog })
    await app.start()
  } catch (error) {
    // A port in use: close what was opened (stores, mock upstreams) so the process can exit.
    await app.close().catch(() => {})
    throw error
  }
  const address = app.fastify.server.address()
  const boundPort = typeof address === 'object' && address ? address.port : port
  const url = `http://${host}:${boundPort}`
  // Secrets created on first start are shown once, on the terminal, never through the logger.
  if (app.firstStart.adminToken) announce(`tollgate: first start — admin token (shown once, store it now): ${app.firstStart.adminToken}`)
  if (app.firstStart.consumerKey) announce(`tollgate: first start — consumer key for team "default" (shown once): ${app.firstStart.consumerKey}`)
  const targets = app.config.targets.map((t) => `${t.id} (${t.provider})`).join(', ')
  announce(`tollgate: listening on ${url} — store ${config.storage.kind === 'sqlite' ? config.storage.path : 'postgres+redis'}, targets ${targets}`)
  app.logger.info({ url, config: config.source }, 'tollgate: started')
  // The tokenizer (half a second of CPU) and undici load just after start (src/lib/lazy-require.ts),
  // not before listening: a readiness probe or an admin call right after start is answered first,
  // and a call that needs one sooner loads it itself.
  setTimeout(() => {
    undici.get()
    warmTokenizer()
  }, LAZY_MODULES_WARM_DELAY_MS).unref()
  return { app, url, stop: () => app.close() }
}

/** Stops the server on SIGTERM / SIGINT; a second signal exits at once. */
export function stopOnSignals(server: RunningServer): void {
  let stopping = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1)
    stopping = true
    server.app.logger.info({ signal }, 'tollgate: shutting down')
    server
      .stop()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        server.app.logger.error({ err: error }, 'tollgate: shutdown failed')
        process.exit(1)
      })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
