/**
 * Serves the built console (console/ → dist/console/) from the gateway itself, so there is no
 * second server in production:
 *
 * - `/assets/*` are content-hashed by Vite: cached for a year, immutable.
 * - `index.html` (at `/` and as the SPA fallback) is `no-cache`, so a deploy is picked up at once.
 * - The SPA fallback answers only GET/HEAD requests that accept HTML and are not API or
 *   operations paths: `/v1/…`, `/healthz`, `/readyz`, `/metrics` keep their JSON 404.
 * - Without a build (tests that do not build it, a checkout before `npm run build`), `/` answers
 *   a plain page that says how to build the console instead of failing.
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyStatic from '@fastify/static'
import { newId } from '../lib/ids.js'

/** dist/console, from both dist/web/serve.js and src/web/serve.ts. */
export const CONSOLE_DIR_DEFAULT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/console')

const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable'
const NO_CACHE = 'no-cache'
/** Other root files (favicon): short, revalidated after an hour. */
const SHORT_CACHE = 'public, max-age=3600'

/** Paths that belong to the API and operations endpoints: never answered with the console. */
const RESERVED_PREFIXES = ['/v1', '/healthz', '/readyz', '/metrics'] as const

/**
 * The console page may not be framed (clickjacking of its approve/allocate buttons) and loads
 * nothing from elsewhere. Inline styles are allowed because the chart library sets them.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const

export interface ConsoleServeOptions {
  /** Folder with index.html and assets/ (default: dist/console). */
  readonly dir?: string
}

export async function consoleRoutes(app: FastifyInstance, options: ConsoleServeOptions = {}): Promise<void> {
  const dir = options.dir ?? CONSOLE_DIR_DEFAULT
  const isBuilt = existsSync(join(dir, 'index.html'))

  if (isBuilt) {
    await app.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      // One route per file found at start: nothing else is ever read from disk.
      wildcard: false,
      index: false,
      cacheControl: false,
      setHeaders: (res, path) => {
        res.header('cache-control', cacheControlOf(path, dir))
        res.header('x-content-type-options', 'nosniff')
      },
    })
  }

  const sendConsole = (reply: FastifyReply) => {
    reply.headers({ ...SECURITY_HEADERS, 'cache-control': NO_CACHE })
    if (isBuilt) return reply.type('text/html; charset=utf-8').sendFile('index.html')
    return reply.code(200).type('text/html; charset=utf-8').send(NOT_BUILT_PAGE)
  }

  app.get('/', (_request, reply) => sendConsole(reply))

  app.setNotFoundHandler((request, reply) => {
    if (isConsoleRoute(request)) return sendConsole(reply)
    return reply.code(404).send({
      error: {
        type: 'not_found_error',
        code: 'not_found',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
        request_id: newId('req'),
      },
    })
  })
}

/** GET/HEAD, accepts HTML, not an API/operations path, not a missing asset file. */
export function isConsoleRoute(request: Pick<FastifyRequest, 'method' | 'url' | 'headers'>): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false
  const path = request.url.split('?')[0] ?? '/'
  if (RESERVED_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`))) return false
  if (path.startsWith('/assets/')) return false
  const accept = request.headers.accept
  return typeof accept === 'string' && accept.includes('text/html')
}

function cacheControlOf(path: string, dir: string): string {
  const relative = path.slice(dir.length).replaceAll('\\', '/')
  if (relative.startsWith('/assets/')) return IMMUTABLE_CACHE
  if (relative === '/index.html') return NO_CACHE
  return SHORT_CACHE
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tollgate</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>Tollgate is running</h1>
<p>The web console has not been built in this checkout. Run <code>npm run build</code>
(or <code>npm start</code>, which builds first) and reload this page.</p>
<p>The API answers under <code>/v1/</code>; health at <code>/healthz</code>.</p>
</body></html>
`
