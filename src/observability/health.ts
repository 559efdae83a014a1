/** Liveness, readiness and Prometheus metrics. */
import type { FastifyInstance } from 'fastify'
import type { Stores } from '../app.js'
import { metricsText, type Metrics } from './metrics.js'
import { doc } from '../api/openapi.js'

export async function healthRoutes(app: FastifyInstance, deps: { stores: Stores; metrics: Metrics }): Promise<void> {
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
      auth: 'none',
      produces: 'text/plain',
      responses: { 200: 'The Prometheus text format: the gateway’s metrics, then the process’s (CPU, memory, garbage collection, event-loop delay).' },
    }),
    async (_request, reply) => {
      deps.metrics.reservationsPending.set(await deps.stores.ledger.countPending())
      return reply.header('content-type', deps.metrics.registry.contentType).send(await metricsText(deps.metrics))
    },
  )
}
