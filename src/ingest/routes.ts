/**
 * `POST /v1/events`, authenticated like the proxy (a consumer key, `Authorization: Bearer` or
 * `x-api-key`) and answering in the admin API's error envelope. The statuses, in docs/ingestion.md:
 *
 *   one event      201 created · 200 duplicate (`duplicate: true`) · 400 rejected (its code and field)
 *   {"events": […]} 200 when none was rejected · 207 when any was (per-event `results`)
 *   either         400 a body of the wrong shape · 401 no or unknown key · 403 an admin token
 *                  413 more than 1,000 events or a body over `server.body_limit_bytes` · 503 store down
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { presentedKey, type AdminAuth, type Consumer, type ConsumerDirectory } from '../auth/index.js'
import { newId } from '../lib/ids.js'
import { toUsd } from '../money/index.js'
import { adminErrorHandler, errorEnvelope } from '../api/http-errors.js'
import { doc } from '../api/openapi.js'
import type { Logger } from '../observability/logger.js'
import type { Metrics } from '../observability/metrics.js'
import { EVENTS_PER_REQUEST_MAX, EventPayload } from './payload.js'
import type { IngestResult, Ingestor } from './ingestor.js'

export interface IngestRouteDeps {
  readonly ingestor: Ingestor
  readonly consumers: ConsumerDirectory
  readonly adminAuth: AdminAuth
  readonly logger: Logger
  readonly metrics: Metrics
}

/** What the OpenAPI document shows: one event, or a batch of them. */
const IngestBody = z.union([EventPayload, z.strictObject({ events: z.array(EventPayload).min(1).max(EVENTS_PER_REQUEST_MAX) })])

declare module 'fastify' {
  interface FastifyRequest {
    ingestConsumer?: Consumer
  }
}

export async function ingestRoutes(app: FastifyInstance, deps: IngestRouteDeps): Promise<void> {
  app.setErrorHandler(adminErrorHandler(deps.logger))
  // The key is checked before the body is read: a request without one costs no parsing.
  app.addHook('onRequest', async (request, reply) => {
    const consumer = deps.consumers.authenticate(presentedKey(request.headers))
    if (consumer) {
      request.ingestConsumer = consumer
      return
    }
    const key = presentedKey(request.headers)
    // An admin token here is a mix-up worth naming; any other credential is simply unknown.
    if (key !== undefined && (await deps.adminAuth.authenticate(key)) !== undefined) {
      return reply
        .code(403)
        .send(
          errorEnvelope(
            'forbidden',
            'POST /v1/events takes a consumer key (the key the application calls the gateway with), not an admin token.',
            newId('req'),
          ),
        )
    }
    return reply.code(401).send(errorEnvelope('unauthorized', 'Missing or unknown consumer key: send it as "Authorization: Bearer KEY".', newId('req')))
  })

  app.post(
    '/v1/events',
    doc({
      summary: 'Record usage of calls made outside the gateway',
      description:
        'One event, or `{"events": [...]}` of up to 1,000. Idempotent on `externalRequestId` per org and team of the key. Priced from the catalogue and counted in reports and budgets like proxied calls (never debited from wallets); `dataMode: demo` is stored and reported but counted against no budget. See docs/ingestion.md.',
      auth: 'consumer',
      body: IngestBody,
      responses: {
        200: 'One event already stored (`duplicate: true`), or a batch with no rejected event: `results`, `created`, `duplicates`, `rejected`.',
        201: 'One event stored.',
        207: 'A batch in which some events were rejected: each result names its error code and field.',
      },
      errors: [403, 413, 503],
    }),
    (request, reply) => handle(request, reply, deps),
  )
}

async function handle(request: FastifyRequest, reply: FastifyReply, deps: IngestRouteDeps) {
  const consumer = request.ingestConsumer!
  const body = request.body
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return reply.code(400).send(invalid('body', 'expected one event (a JSON object) or {"events": [...]}'))
  }
  if (!('events' in body)) return single(await deps.ingestor.ingest(consumer, [body]), reply, deps)
  const { events, ...rest } = body as { events: unknown }
  const extra = Object.keys(rest)[0]
  if (extra !== undefined) return reply.code(400).send(invalid(extra, `unknown field "${extra}" beside "events"; a batch is {"events": [...]}`))
  if (!Array.isArray(events) || events.length === 0) return reply.code(400).send(invalid('events', 'expected a non-empty array of events'))
  if (events.length > EVENTS_PER_REQUEST_MAX) {
    return reply.code(413).send(
      errorEnvelope(
        'payload_too_large',
        `events: at most ${EVENTS_PER_REQUEST_MAX} events per request, got ${events.length}; send them in batches`,
        newId('req'),
        {
          issues: [{ path: 'events', message: `at most ${EVENTS_PER_REQUEST_MAX} events per request` }],
        },
      ),
    )
  }
  return batch(await deps.ingestor.ingest(consumer, events), reply, deps)
}

function single(results: IngestResult[], reply: FastifyReply, deps: IngestRouteDeps) {
  const result = results[0]!
  count(deps, results)
  switch (result.status) {
    case 'created':
      return reply.code(201).send({ ...presentResult(result), duplicate: false })
    case 'duplicate':
      return reply.code(200).send({ ...presentResult(result), duplicate: true })
    case 'rejected': {
      const { code, message, field } = result.problem
      if (code === 'store_unavailable') return reply.code(503).send(errorEnvelope('store_unavailable', message, newId('req')))
      return reply.code(400).send({
        error: {
          type: 'invalid_request_error',
          code,
          message,
          field: field ?? null,
          issues: field === undefined ? [] : [{ path: field, message }],
          request_id: newId('req'),
        },
      })
    }
  }
}

function batch(results: IngestResult[], reply: FastifyReply, deps: IngestRouteDeps) {
  const tally = count(deps, results)
  if (tally.rejected === results.length && results.every((r) => r.status === 'rejected' && r.problem.code === 'store_unavailable')) {
    return reply.code(503).send(errorEnvelope('store_unavailable', 'The events could not be stored; send them again (ingestion is idempotent).', newId('req')))
  }
  return reply.code(tally.rejected > 0 ? 207 : 200).send({
    results: results.map(batchResult),
    created: tally.created,
    duplicates: tally.duplicates,
    rejected: tally.rejected,
  })
}

/**
 * One event of a batch, kept small (a batch answers 1,000 of them): the fields of the CLI's
 * `EventResult`. The cost of each created event is in `GET /v1/usage/events`.
 */
function batchResult(result: IngestResult, index: number) {
  switch (result.status) {
    case 'created':
      return { index, status: 'created' as const, id: result.event.id }
    case 'duplicate':
      return { index, status: 'duplicate' as const, duplicate: true }
    case 'rejected': {
      const { code, message, field } = result.problem
      return { index, status: 'rejected' as const, error: { code, message, ...(field !== undefined && { field }) } }
    }
  }
}

/** The answer to a single event: with its cost, as priced from the catalogue. */
function presentResult(result: IngestResult) {
  switch (result.status) {
    case 'created': {
      const e = result.event
      return {
        status: 'created' as const,
        id: e.id,
        external_request_id: e.externalRequestId,
        cost_usd: toUsd(e.costMicros),
        cost_micros: e.costMicros,
        reported_cost_usd: e.reportedCostMicros === undefined ? null : toUsd(e.reportedCostMicros),
        price_source: e.priceSource,
      }
    }
    case 'duplicate':
      return { status: 'duplicate' as const, external_request_id: result.externalRequestId, duplicate: true }
    case 'rejected': {
      const { code, message, field } = result.problem
      return { status: 'rejected' as const, error: { code, message, ...(field !== undefined && { field }) } }
    }
  }
}

function count(deps: IngestRouteDeps, results: readonly IngestResult[]) {
  const tally = { created: 0, duplicates: 0, rejected: 0 }
  for (const r of results) {
    if (r.status === 'created') tally.created++
    else if (r.status === 'duplicate') tally.duplicates++
    else tally.rejected++
  }
  if (tally.created > 0) deps.metrics.ingestedEvents.inc({ result: 'created' }, tally.created)
  if (tally.duplicates > 0) deps.metrics.ingestedEvents.inc({ result: 'duplicate' }, tally.duplicates)
  if (tally.rejected > 0) deps.metrics.ingestedEvents.inc({ result: 'rejected' }, tally.rejected)
  return tally
}

function invalid(path: string, message: string) {
  return errorEnvelope('invalid_request', `${path}: ${message}`, newId('req'), { issues: [{ path, message }] })
}
