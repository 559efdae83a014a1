/** Consumer keys and admin tokens created through the API; each secret is returned once, at creation. */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { generateKey, hashKey, keyPrefix } from '../auth/index.js'
import { micros } from '../money/index.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { principalOf, requireAdmin, requireWrite } from './principal.js'

const name = z.string().trim().min(1).max(100)
const optionalId = z.string().trim().min(1).max(200).optional()

const KeyBody = z.strictObject({
  name,
  team_id: optionalId,
  user_id: optionalId,
  agent_id: optionalId,
  environment: z.string().trim().min(1).max(50).default('prod'),
  endpoint_tag: optionalId,
  on_insufficient_funds: z.enum(['refuse', 'hold']).default('refuse'),
  hold_timeout_ms: z.number().int().min(0).max(300_000).default(30_000),
})

const TokenBody = z.strictObject({
  name,
  role: z.enum(['admin', 'team_admin', 'viewer']),
  team_id: optionalId,
})

export async function keyRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.post('/v1/keys', async (request, reply) => {
    const principal = principalOf(request)
    const body = parseBody(KeyBody, request.body)
    requireWrite(principal, body.team_id)
    const key = generateKey('key')
    const consumer = {
      name: body.name,
      apiKeyHash: hashKey(key),
      orgId: principal.orgId,
      teamId: body.team_id,
      userId: body.user_id,
      agentId: body.agent_id,
      environment: body.environment,
      endpointTag: body.endpoint_tag,
      onInsufficientFunds: body.on_insufficient_funds,
      holdTimeoutMs: body.hold_timeout_ms,
      failMode: 'closed' as const,
      emergencyAllowanceMicros: micros(0),
    }
    await deps.stores.auth.createConsumerKey(consumer, keyPrefix(key), deps.clock.nowMs())
    deps.consumers.add(consumer)
    return reply.code(201).send({ name: body.name, key, prefix: keyPrefix(key), team_id: body.team_id ?? null, environment: body.environment })
  })

  app.post('/v1/admin-tokens', async (request, reply) => {
    const principal = principalOf(request)
    requireAdmin(principal)
    const body = parseBody(TokenBody, request.body)
    const created = await deps.adminAuth.create({ orgId: principal.orgId, role: body.role, teamId: body.team_id, name: body.name, atMs: deps.clock.nowMs() })
    return reply.code(201).send({ id: created.tokenId, token: created.token, role: body.role, team_id: body.team_id ?? null })
  })
}
