/** Liveness, readiness and Prometheus metrics (SPEC §6). */
import type { FastifyInstance } from 'fastify'
import type { Stores } from '../app.js'
import type { Metrics } from './metrics.js'

export async function healthRoutes(app: FastifyInstance, deps: { stores: Stores; metrics: Metrics }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const storeReady = await deps.stores.ready().catch(() => false)
    return reply.code(storeReady ? 200 : 503).send({ status: storeReady ? 'ready' : 'not_ready', checks: { store: storeReady } })
  })
  app.get('/metrics', async (_request, reply) => {
    deps.metrics.reservationsPending.set(await deps.stores.ledger.countPending())
    return reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics())
  })
}
