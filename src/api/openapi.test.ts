/**
 * The OpenAPI document: valid OpenAPI 3.1, and complete — every route the server registered is in
 * it, with the schemas that validate its body and query. Unknown routes answer the error envelope
 * and point out a base URL that lacks or doubles /v1.
 */
import { Validator } from '@seriousme/openapi-schema-validator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, CONSUMER_KEY, type TestApp } from '../../test/support/gateway.js'

let t: TestApp
let document: any

beforeAll(async () => {
  t = await buildTestApp()
  const res = await t.app.fastify.inject({ method: 'GET', url: '/v1/openapi.json' })
  expect(res.statusCode).toBe(200)
  document = res.json()
})
afterAll(() => t.close())

describe('GET /v1/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator()
    const result = await validator.validate(document)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  it('lists every registered route, and no route is registered without a description', () => {
    expect(t.app.openApi.undocumented).toEqual([])
    const listed = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    )
    // Every route Fastify knows, read from the router's own printout (a tree: each level is a
    // suffix of its parent), must be in the document.
    const routes: string[] = []
    const stack: string[] = []
    for (const line of t.app.fastify.printRoutes({ commonPrefix: false }).split('\n')) {
      const m = /^([│ ]*)[├└]── (\S+) \(([A-Z, ]+)\)/.exec(line)
      if (m === null) continue
      const depth = m[1]!.length / 4
      stack.length = depth
      stack.push(m[2]!)
      const path = stack.join('').replace(/:(\w+)/g, '{$1}')
      for (const method of m[3]!.split(', ')) if (method !== 'HEAD' && method !== 'OPTIONS') routes.push(`${method} ${path}`)
    }
    expect(routes.length).toBeGreaterThan(30)
    for (const route of routes) expect(listed, route).toContain(route)
    for (const op of ['POST /v1/chat/completions', 'POST /v1/messages', 'POST /v1/billing/budgets', 'GET /v1/wallets/{id}/ledger', 'GET /v1/openapi.json']) {
      expect(listed).toContain(op)
    }
  })

  it('documents request bodies and queries from the schemas that validate them', async () => {
    const allocate = document.paths['/v1/wallets/allocate'].post
    const body = allocate.requestBody.content['application/json'].schema
    expect(body.properties).toHaveProperty('amount')
    expect(body.properties).toHaveProperty('team_id')
    const tickets = document.paths['/v1/cost-tickets'].get
    const status = tickets.parameters.find((p: any) => p.name === 'status')
    expect(status.schema.enum).toEqual(['pending', 'approved', 'denied', 'expired'])
    // …and the server refuses what the document says is not allowed.
    const refused = await t.app.fastify.inject({ method: 'GET', url: '/v1/cost-tickets?status=lost', headers: { authorization: `Bearer ${t.adminToken}` } })
    expect(refused.statusCode).toBe(400)
    expect(refused.json()).toMatchObject({ error: { code: 'invalid_request', issues: [{ path: 'status' }] } })
    expect(allocate.security).toEqual([{ admin: [] }])
    expect(document.paths['/v1/chat/completions'].post.security).toEqual([{ consumer: [] }])
    expect(allocate.responses['400'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' })
  })
})

describe('an unknown route', () => {
  it('answers the error envelope with not_found', async () => {
    const res = await t.app.fastify.inject({ method: 'GET', url: '/v1/nothing-here' })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toMatchObject({
      error: { type: 'not_found_error', code: 'not_found', message: expect.stringContaining('/v1/openapi.json'), request_id: expect.any(String) },
    })
  })

  it('says when the base URL lacks /v1', async () => {
    const res = await t.app.fastify.inject({
      method: 'POST',
      url: '/chat/completions',
      headers: { authorization: `Bearer ${CONSUMER_KEY}`, 'content-type': 'application/json' },
      payload: '{}',
    })
    expect(res.statusCode).toBe(404)
    expect(res.json().error.message).toContain('Did you mean /v1/chat/completions?')
  })

  it('says when the base URL doubles /v1 (an Anthropic SDK given …/v1)', async () => {
    const res = await t.app.fastify.inject({
      method: 'POST',
      url: '/v1/v1/messages',
      headers: { 'x-api-key': CONSUMER_KEY, 'content-type': 'application/json' },
      payload: '{}',
    })
    expect(res.statusCode).toBe(404)
    expect(res.json().error.message).toContain('Did you mean /v1/messages?')
    const ledger = await t.app.fastify.inject({ method: 'GET', url: '/v1/v1/wallets/w_123/ledger' })
    expect(ledger.json().error.message).toContain('Did you mean /v1/wallets/w_123/ledger?')
  })
})
