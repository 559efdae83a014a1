/**
 * Serves the built console (console/ → dist/console/) from the gateway itself, so there is no
 * second server in production:
 *
 * - `/assets/*` are content-hashed by Vite: cached for a year, immutable.
 * - `index.html` (at `/` and as the SPA fallback) is `no-cache`, so a deploy is picked up at once.
 * - The SPA fallback answers only GET/HEAD requests that accept HTML and are not API or
 *   operations paths: `/v1/…`, `/healthz`, `/readyz`, `/metrics` keep the API's JSON 404. It runs
 *   inside the server's one not-found handler (app.ts), before the API's.
 * - Without a build (tests that do not build it, a checkout before `npm run build`), `/` answers
 *   a plain page that says how to build the console instead of failing.
 *
 * Two routes only (`/` and `/assets/{file}`), both described for the OpenAPI document; index.html is
 * read once at start (it is small, and a new build means a restart).
 */
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyStatic from '@fastify/static'
import { doc } from '../api/openapi.js'

/** dist/console, from both dist/web/serve.js and src/web/serve.ts. */
export const CONSOLE_DIR_DEFAULT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/console')

const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable'
const NO_CACHE = 'no-cache'

/** Paths that belong to the API and operations endpoints: never answered with the console. */
const RESERVED_PREFIXES = ['/v1', '/healthz', '/readyz', '/metrics', '/assets'] as const

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

export interface ConsoleSiteOptions {
  /** Folder with index.html and assets/ (default: dist/console). */
  readonly dir?: string
}

export interface ConsoleSite {
  /** Registers `GET /` and `GET /assets/{file}`. */
  routes(app: FastifyInstance): Promise<void>
  /** The SPA fallback: answers a console navigation with index.html and returns true; false for anything else. */
  fallback(request: Pick<FastifyRequest, 'method' | 'url' | 'headers'>, reply: FastifyReply): boolean
}

export function consoleSite(options: ConsoleSiteOptions = {}): ConsoleSite {
  const dir = options.dir ?? CONSOLE_DIR_DEFAULT
  const indexPath = join(dir, 'index.html')
  const indexHtml = existsSync(indexPath) ? readFileSync(indexPath) : undefined
  const assetsDir = join(dir, 'assets')

  const sendIndex = (reply: FastifyReply) =>
    reply
      .code(200)
      .headers({ ...SECURITY_HEADERS, 'cache-control': NO_CACHE })
      .type('text/html; charset=utf-8')
      .send(indexHtml ?? NOT_BUILT_PAGE)

  return {
    async routes(app) {
      app.get(
        '/',
        doc({ summary: 'The web console (HTML)', tag: 'console', auth: 'none', produces: 'text/html', responses: { 200: 'The console page.' } }),
        (_request, reply) => sendIndex(reply),
      )
      // Registered built or not, so the route list (and the API reference made from it) does not
      // depend on whether this checkout has built the console; unbuilt, every file is a 404.
      const built = indexHtml !== undefined && existsSync(assetsDir)
      // Only `reply.sendFile` (path checks, ETag, ranges); the one route below serves it.
      if (built) await app.register(fastifyStatic, { root: assetsDir, serve: false, cacheControl: false })
      // Vite writes assets/ flat, so one path segment names every file (and `..` cannot climb).
      app.get<{ Params: { file: string } }>(
        '/assets/:file',
        doc({
          summary: "The web console's content-hashed files",
          tag: 'console',
          auth: 'none',
          produces: 'application/octet-stream',
          responses: { 200: 'A script, style sheet or image.' },
          errors: [404],
        }),
        (request, reply) => {
          if (!built) return reply.callNotFound()
          reply.header('cache-control', IMMUTABLE_CACHE).header('x-content-type-options', 'nosniff')
          return reply.sendFile(request.params.file)
        },
      )
    },
    fallback(request, reply) {
      if (!isConsoleNavigation(request)) return false
      void sendIndex(reply)
      return true
    },
  }
}

/** GET/HEAD, accepts HTML, not an API, operations or asset path. */
export function isConsoleNavigation(request: Pick<FastifyRequest, 'method' | 'url' | 'headers'>): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false
  const path = request.url.split('?')[0] ?? '/'
  if (RESERVED_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`))) return false
  const accept = request.headers.accept
  return typeof accept === 'string' && accept.includes('text/html')
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tollgate</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>Tollgate is running</h1>
<p>The web console has not been built in this checkout. Run <code>npm run build</code>
(or <code>npm start</code>, which builds first) and reload this page.</p>
<p>The API answers under <code>/v1/</code> (described at <code>/v1/openapi.json</code>); health at <code>/healthz</code>.</p>
</body></html>
`
