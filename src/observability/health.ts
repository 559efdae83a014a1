/** Liveness, readiness and Prometheus metrics. */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Stores } from '../app.js'
import type { ServerSettings } from '../config/index.js'
import { errorEnvelope } from '../api/http-errors.js'
import { bearerToken } from '../api/principal.js'
import { hashKey, sameHash } from '../auth/keys.js'
import { newId } from '../lib/ids.js'
import { metricsText, type Metrics } from './metrics.js'
import { doc } from '../api/openapi.js'

export async function healthRoutes(app: FastifyInstance, deps: { stores: Stores; metrics: Metrics; access: ServerSettings['metrics'] }): Promise<void> {
  const allowed = scrapeCheck(deps.access)
  app.get('/healthz', doc({ summary: 'Liveness', tag: 'health', auth: 'none', responses: { 200: '`{"status":"ok"}`' } }), async () => ({ status: 'ok' }))
  app.get(
    '/readyz',
    doc({ summary: 'Readiness: the store answers', tag: 'health', auth: 'none', responses: { 200: 'Ready.', 503: 'Not ready; `checks` says what failed.' } }),
    async (_request, reply) => {
      const storeReady = await deps.stores.ready().catch(() => false)
      return reply.code(storeReady ? 200 : 503).send({ status: storeReady ? 'ready' : 'not_ready', checks: { store: storeReady } })
    },
  )
  app.get(
    '/metrics',
    doc({
      summary: 'Prometheus metrics',
      tag: 'health',
      auth: 'metrics',
      produces: 'text/plain',
      responses: { 200: 'The Prometheus text format: the gateway’s metrics, then the process’s (CPU, memory, garbage collection, event-loop delay).' },
    }),
    async (request, reply) => {
      if (!allowed(request)) {
        const message = 'Missing or wrong metrics token: send the one server.metrics_token_ref names as "Authorization: Bearer TOKEN".'
        return reply.code(401).send(errorEnvelope('unauthorized', message, newId('req')))
      }
      deps.metrics.reservationsPending.set(await deps.stores.ledger.countPending())
      return reply.header('content-type', deps.metrics.registry.contentType).send(await metricsText(deps.metrics))
    },
  )
}

/**
 * Whether a scrape may read /metrics. The token is read as the admin API reads its tokens and
 * compared as consumer keys and admin tokens are: by hash, in constant time (auth/keys.ts).
 */
function scrapeCheck(access: ServerSettings['metrics']): (request: FastifyRequest) => boolean {
  if (access.kind === 'open') return () => true
  const expected = access.token === undefined ? undefined : hashKey(access.token)
  return (request) => {
    const presented = bearerToken(request)
    return expected !== undefined && presented !== undefined && sameHash(expected, hashKey(presented))
  }
}
