/**
 * The OpenAPI 3.1 document, built from the routes as they are registered. Each route carries its
 * description in Fastify's route `config` (`{ config: doc({...}) }`), with the same zod schemas
 * that validate its body and query, so the document cannot drift from what the server accepts.
 * A route registered without a description is listed under `undocumented` (a test keeps that
 * list empty).
 */
import type { RouteOptions } from 'fastify'
import { z } from 'zod'

export type RouteAuth = 'admin' | 'consumer' | 'session' | 'metrics' | 'none'

export interface RouteDoc {
  readonly summary: string
  /** Longer prose, markdown. */
  readonly description?: string
  /** Defaults to the resource of the path (`/v1/billing/budgets/{id}` → `billing`). */
  readonly tag?: string
  readonly auth: RouteAuth
  readonly body?: z.ZodType
  readonly query?: z.ZodType
  /** Success statuses and what they carry; errors are added from `errors`. */
  readonly responses: Readonly<Record<number, string>>
  /** Error statuses this route answers beyond the common ones (400/401/403 per auth). */
  readonly errors?: readonly number[]
  /** Response content type of the success, when not JSON (`text/csv`, `text/event-stream`…). */
  readonly produces?: string
}

/** Route options that attach `doc` for the OpenAPI document. */
export function doc(routeDoc: RouteDoc): { config: { doc: RouteDoc } } {
  return { config: { doc: routeDoc } }
}

interface Operation {
  readonly method: string
  readonly path: string
  readonly doc: RouteDoc
}

const ERROR_TEXT: Record<number, string> = {
  400: 'The request is invalid; `issues` names each field.',
  401: 'Missing or unknown credentials.',
  403: 'The credentials may not do this.',
  404: 'No such resource (or not visible to these credentials).',
  409: 'Conflicts with the current state.',
  410: 'Gone for good: an export file deleted after its retention period (`export_expired`).',
  413: 'The body is larger than the server accepts.',
  422: 'The Idempotency-Key was used with a different body.',
  429: 'Refused by a limit: a wallet, a hard budget, or a full export queue (`export_queue_full`).',
  502: 'The upstream provider failed.',
  503: 'The store is unavailable.',
  504: 'The upstream provider did not answer in time.',
}

const errorEnvelopeSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['type', 'code', 'message'],
      properties: {
        type: { type: 'string' },
        code: { type: 'string', description: 'Stable machine-readable code; see docs/errors.md.' },
        message: { type: 'string' },
        issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
        request_id: { type: 'string' },
      },
    },
  },
}

export class OpenApiRegistry {
  readonly #operations: Operation[] = []
  readonly #undocumented: string[] = []

  /** A Fastify `onRoute` hook: add it on the root instance before any route is registered. */
  readonly onRoute = (route: RouteOptions): void => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue
      const routeDoc = (route.config as { doc?: RouteDoc } | undefined)?.doc
      if (routeDoc === undefined) this.#undocumented.push(`${method} ${route.url}`)
      else this.#operations.push({ method: method.toLowerCase(), path: openApiPath(route.url), doc: routeDoc })
    }
  }

  /** `METHOD /url` of every route registered without a description. */
  get undocumented(): readonly string[] {
    return this.#undocumented
  }

  /** `METHOD /path` (OpenAPI spelling) of every documented route. */
  get operations(): readonly string[] {
    return this.#operations.map((o) => `${o.method.toUpperCase()} ${o.path}`)
  }

  document(info: { readonly version: string }): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {}
    for (const op of this.#operations) {
      paths[op.path] ??= {}
      paths[op.path]![op.method] = operationObject(op)
    }
    return {
      openapi: '3.1.0',
      info: {
        title: 'Tollgate',
        version: info.version,
        description: 'The LLM spend gateway: OpenAI- and Anthropic-compatible proxy routes, and the admin API for wallets, budgets, tickets, usage and keys.',
      },
      paths,
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer', description: 'An admin token (`Authorization: Bearer tg_admin_…`).' },
          consumer: { type: 'http', scheme: 'bearer', description: 'A consumer key; `x-api-key` is accepted on /v1/messages.' },
          session: { type: 'apiKey', in: 'cookie', name: 'tollgate_session', description: 'A console session (with the `x-tollgate-csrf` header on writes).' },
          metrics: { type: 'http', scheme: 'bearer', description: 'The metrics token, when `server.metrics_token_ref` names one; otherwise none.' },
        },
        schemas: { Error: errorEnvelopeSchema },
      },
    }
  }
}

function operationObject(op: Operation): Record<string, unknown> {
  const { doc: d } = op
  const parameters: unknown[] = []
  for (const name of op.path.match(/\{(\w+)\}/g) ?? []) {
    parameters.push({ name: name.slice(1, -1), in: 'path', required: true, schema: { type: 'string' } })
  }
  if (d.query !== undefined) {
    const schema = jsonSchemaOf(d.query)
    const required = new Set((schema['required'] as string[] | undefined) ?? [])
    for (const [name, property] of Object.entries((schema['properties'] as Record<string, unknown> | undefined) ?? {})) {
      parameters.push({ name, in: 'query', required: required.has(name), schema: property })
    }
  }
  const responses: Record<string, unknown> = {}
  for (const [status, description] of Object.entries(d.responses)) {
    responses[status] = { description, content: { [d.produces ?? 'application/json']: { schema: {} } } }
  }
  const errorStatuses = new Set<number>(d.errors ?? [])
  if (d.body !== undefined || d.query !== undefined) errorStatuses.add(400)
  if (d.auth !== 'none') errorStatuses.add(401)
  if (d.auth === 'admin' || d.auth === 'session') errorStatuses.add(403)
  for (const status of [...errorStatuses].sort()) {
    responses[String(status)] = {
      description: ERROR_TEXT[status] ?? 'Error.',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    }
  }
  return {
    operationId: operationId(op),
    summary: d.summary,
    ...(d.description === undefined ? {} : { description: d.description }),
    tags: [d.tag ?? tagOf(op.path)],
    ...(d.auth === 'none' ? { security: [] } : { security: [{ [d.auth]: [] }] }),
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(d.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: jsonSchemaOf(d.body) } } } }),
    responses,
  }
}

/** The schema of what a client sends (the input side of transforms and defaults). */
function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>
  delete json['$schema']
  return json
}

/** `/v1/wallets/:id/ledger` → `/v1/wallets/{id}/ledger`. */
export function openApiPath(url: string): string {
  return url.replace(/:(\w+)/g, '{$1}')
}

function tagOf(path: string): string {
  const parts = path.split('/').filter((p) => p.length > 0 && !p.startsWith('{'))
  return parts[0] === 'v1' ? (parts[1] ?? 'v1') : (parts[0] ?? 'root')
}

function operationId(op: Operation): string {
  const words = op.path
    .split('/')
    .filter((p) => p.length > 0 && p !== 'v1')
    .map((p) => (p.startsWith('{') ? `by-${p.slice(1, -1)}` : p))
  return [op.method, ...words].join('-').replace(/[^A-Za-z0-9]+(.)/g, (_m, c: string) => c.toUpperCase())
}
