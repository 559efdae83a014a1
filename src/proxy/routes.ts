/**
 * The consumer-facing endpoints. Authentication and parsing happen here; everything
 * else is `handleProxyCall`. Responses are written to the raw Node response (the reply is
 * hijacked) so streams pass through byte for byte without Fastify's serialisation in the way.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { newId } from '../lib/ids.js'
import { presentedKey, type ConsumerDirectory } from '../auth/index.js'
import { anthropicVersionDefault, buildUpstreamRequest, flavorOf, type Endpoint } from '../providers/index.js'
import { buildCall } from './call.js'
import { handleProxyCall, refuse, type ProxyDeps } from './pipeline.js'
import { errorBody, proxyError, type ProxyError } from './refusal.js'
import { ResponseSink } from './response-sink.js'
import { H } from './headers.js'
import { readJsonBody, type BodyError } from './body.js'
import type { Consumer } from '../auth/index.js'
import { doc, type RouteDoc } from '../api/openapi.js'

const ROUTES: ReadonlyArray<readonly [string, Endpoint, string]> = [
  ['/v1/chat/completions', 'chat_completions', 'OpenAI Chat Completions'],
  ['/v1/responses', 'responses', 'OpenAI Responses'],
  ['/v1/embeddings', 'embeddings', 'OpenAI Embeddings'],
  ['/v1/messages', 'messages', 'Anthropic Messages'],
]

/**
 * What the proxy routes document: the provider's own request body (checked here only for what
 * spend control needs: `model`, output caps, `n`, `stream`), answered as the provider answers.
 */
const providerBody = z.looseObject({ model: z.string().min(1), stream: z.boolean().optional() })

function proxyDoc(api: string, streams: boolean): RouteDoc {
  return {
    summary: `${api}, with spend control`,
    description: `The ${api} API, unchanged: the body is the provider's; the answer is the provider's, plus \`x-tollgate-*\` cost headers (trailers on a stream). Refusals use the API's own error shape.`,
    tag: 'proxy',
    auth: 'consumer',
    body: providerBody,
    responses: { 200: streams ? 'The provider’s answer (JSON, or `text/event-stream` when `stream: true`).' : 'The provider’s answer.' },
    errors: [413, 429, 502, 503, 504],
  }
}

export interface ProxyRouteDeps extends ProxyDeps {
  readonly consumers: ConsumerDirectory
}

declare module 'fastify' {
  interface FastifyRequest {
    consumer?: Consumer
  }
}

export async function proxyRoutes(app: FastifyInstance, deps: ProxyRouteDeps): Promise<void> {
  // Who is calling is settled before the body is read: a request with no valid key is a 401,
  // whatever its body, and costs no parsing.
  app.addHook('onRequest', async (request, reply) => {
    const consumer = deps.consumers.authenticate(presentedKey(request.headers))
    if (consumer) {
      request.consumer = consumer
      return
    }
    const flavor = request.url.startsWith('/v1/messages') || request.headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai'
    const requestId = newId('req')
    return reply
      .code(401)
      .header(H.requestId, requestId)
      .send(errorBody(flavor, proxyError.invalidKey(), requestId))
  })
  // Bodies are read here, once: bounded (a 413 only after the client finished sending), valid
  // UTF-8, and not nested absurdly deep, then JSON.parse. No prototype-poisoning pass: bodies are
  // only read as data and forwarded.
  app.addContentTypeParser('application/json', (request, payload, done) => {
    void readJsonBody(request.raw, deps.config.server.bodyLimitBytes).then((result) => {
      if (result.ok) return done(null, result.value)
      const error = new Error(result.error.message) as FastifyError & { tollgateError: BodyError }
      error.statusCode = result.error.status
      error.tollgateError = result.error
      done(error, undefined)
    })
    void payload
  })
  app.setErrorHandler((error: FastifyError & { tollgateError?: BodyError }, request, reply) => {
    const flavor = request.url.startsWith('/v1/messages') ? 'anthropic' : 'openai'
    const requestId = newId('req')
    const proxyErr: ProxyError =
      error.tollgateError !== undefined
        ? error.tollgateError
        : error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? { status: 413, code: 'body_too_large', message: `The request body is larger than ${deps.config.server.bodyLimitBytes} bytes.` }
          : (error.statusCode ?? 500) < 500
            ? proxyError.invalidRequest(error.message, error.statusCode)
            : { status: 500, code: 'internal_error', message: `Internal error (request ${requestId}).` }
    if (proxyErr.status >= 500) deps.logger.error({ err: error, requestId }, 'proxy: unhandled error')
    void reply
      .code(proxyErr.status)
      .header(H.requestId, requestId)
      .send(errorBody(flavor, proxyErr, requestId))
  })

  for (const [path, endpoint, api] of ROUTES) {
    app.post(path, doc(proxyDoc(api, endpoint !== 'embeddings')), (request, reply) => proxyHandler(endpoint, request, reply, deps))
  }
  app.get(
    '/v1/models',
    doc({
      summary: 'Models a consumer can call: configured routes and the upstream’s list',
      tag: 'proxy',
      auth: 'consumer',
      responses: { 200: 'OpenAI’s list shape, or Anthropic’s when `anthropic-version` is sent.' },
    }),
    (request, reply) => modelsHandler(request, reply, deps),
  )
}

async function proxyHandler(endpoint: Endpoint, request: FastifyRequest, reply: FastifyReply, deps: ProxyRouteDeps): Promise<void> {
  const receivedAtMs = deps.clock.nowMs()
  const requestId = newId('req', receivedAtMs)
  const flavor = flavorOf(endpoint)
  reply.hijack()
  const sink = new ResponseSink(reply.raw, request.headers['idempotency-key'] !== undefined)
  try {
    const consumer = request.consumer
    if (!consumer) {
      refuse({ flavor, requestId }, sink, proxyError.invalidKey())
      return
    }
    const call = buildCall({ requestId, endpoint, consumer, headers: request.headers, body: request.body, receivedAtMs })
    if ('code' in call) {
      refuse({ flavor, requestId }, sink, call)
      return
    }
    await handleProxyCall(call, deps, sink)
  } catch (error) {
    deps.logger.error({ err: error, requestId }, 'proxy: call failed')
    if (!reply.raw.headersSent) refuse({ flavor, requestId }, sink, { status: 500, code: 'internal_error', message: `Internal error (request ${requestId}).` })
    else reply.raw.destroy()
  }
}

/**
 * The models consumers can call: configured routes plus what the first target speaking the
 * caller's API lists. An Anthropic client (it sends `anthropic-version`) gets Anthropic's list
 * shape; any other client gets OpenAI's.
 */
async function modelsHandler(request: FastifyRequest, reply: FastifyReply, deps: ProxyRouteDeps): Promise<void> {
  const requestId = newId('req')
  const flavor = request.headers['anthropic-version'] === undefined ? 'openai' : 'anthropic'
  const consumer = request.consumer
  if (!consumer) {
    reply.hijack()
    refuse({ flavor, requestId }, new ResponseSink(reply.raw, false), proxyError.invalidKey())
    return
  }
  const ids = new Map<string, { owner: string; created: number }>()
  for (const route of deps.config.models) ids.set(route.name, { owner: route.target ?? 'tollgate', created: 0 })
  const target = deps.config.targets.find(
    (t) => t.baseUrl !== undefined && (flavor === 'anthropic' ? t.provider !== 'openai' && t.provider !== 'openai-compatible' : t.provider !== 'anthropic'),
  )
  if (target) {
    const upstream = buildUpstreamRequest({
      endpoint: 'models',
      provider: target.provider,
      baseUrl: target.baseUrl!,
      apiKey: target.apiKey,
      body: {},
      clientHeaders: {},
    })
    if (flavor === 'anthropic') upstream.headers['anthropic-version'] ??= anthropicVersionDefault
    try {
      const response = await deps.pools.get(target, upstream.origin).request({ method: 'GET', path: upstream.path, headers: upstream.headers })
      const text = await response.body.text()
      if (response.statusCode === 200) {
        const listed = JSON.parse(text) as { data?: Array<{ id: string; created?: number; created_at?: string; owned_by?: string }> }
        for (const m of listed.data ?? []) {
          const created = m.created ?? (m.created_at ? Math.floor(Date.parse(m.created_at) / 1000) : 0)
          if (!ids.has(m.id)) ids.set(m.id, { owner: m.owned_by ?? target.id, created })
        }
      }
    } catch (error) {
      deps.logger.warn({ err: error, target: target.id }, 'proxy: could not list upstream models')
    }
  }
  const entries = [...ids.entries()]
  const body =
    flavor === 'anthropic'
      ? {
          data: entries.map(([id, m]) => ({ type: 'model', id, display_name: id, created_at: new Date(m.created * 1000).toISOString() })),
          has_more: false,
          first_id: entries[0]?.[0] ?? null,
          last_id: entries.at(-1)?.[0] ?? null,
        }
      : { object: 'list', data: entries.map(([id, m]) => ({ id, object: 'model', created: m.created, owned_by: m.owner })) }
  void reply.header(H.requestId, requestId).send(body)
}
