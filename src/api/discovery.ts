/**
 * What a client finds when it looks around: `GET /v1/openapi.json`, and for a route that does not
 * exist the documented error envelope (`not_found`), with a hint when the path is a known one
 * with `/v1` missing or doubled — the usual slip when setting an SDK's base URL.
 */
import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import { newId } from '../lib/ids.js'
import { errorEnvelope } from './http-errors.js'
import { doc, openApiPath, type OpenApiRegistry } from './openapi.js'

const packageVersion = (createRequire(import.meta.url)('../../package.json') as { version: string }).version

export async function discoveryRoutes(app: FastifyInstance, registry: OpenApiRegistry): Promise<void> {
  let document: Record<string, unknown> | undefined
  app.get(
    '/v1/openapi.json',
    doc({ summary: 'This API, as an OpenAPI 3.1 document', tag: 'meta', auth: 'none', responses: { 200: 'The OpenAPI document.' } }),
    async () => (document ??= registry.document({ version: packageVersion })),
  )
}

/** The not-found handler for the whole server. */
export function notFoundHandler(registry: OpenApiRegistry) {
  return (request: { method: string; url: string }, reply: { code(status: number): { send(body: unknown): unknown } }) => {
    const path = request.url.split('?', 1)[0] ?? '/'
    const hint = baseUrlHint(request.method, path, new Set(registry.operations))
    const message = `No route ${request.method} ${path}.${hint === undefined ? ' The routes are listed at /v1/openapi.json.' : ` ${hint}`}`
    return reply.code(404).send(errorEnvelope('not_found', message, newId('req')))
  }
}

function baseUrlHint(method: string, path: string, known: ReadonlySet<string>): string | undefined {
  const exists = (candidate: string) => known.has(`${method} ${openApiPath(candidate)}`) || [...known].some((op) => matches(op, `${method} ${candidate}`))
  if (path.startsWith('/v1/v1/')) {
    const fixed = path.slice(3)
    if (exists(fixed))
      return `Did you mean ${fixed}? The client's base URL ends in /v1 and the client adds /v1 again: drop one (Anthropic SDKs take the base URL without /v1).`
  }
  if (!path.startsWith('/v1/')) {
    const fixed = `/v1${path}`
    if (exists(fixed)) return `Did you mean ${fixed}? Add /v1 to the client's base URL (OpenAI SDKs take it with /v1).`
  }
  return undefined
}

/** `GET /v1/wallets/{id}/ledger` against `GET /v1/wallets/w_1/ledger`. */
function matches(operation: string, request: string): boolean {
  const a = operation.split('/')
  const b = request.split('/')
  return a.length === b.length && a.every((part, i) => part === b[i] || (part.startsWith('{') && part.endsWith('}') && (b[i] ?? '').length > 0))
}
