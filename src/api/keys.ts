/**
 * Consumer keys and admin tokens created through the API: create (the secret is returned once,
 * here and never again), list, revoke. A team_admin manages its own team's keys; only an admin
 * manages admin tokens.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { ENV_TOKEN_ID, generateKey, hashKey, keyPrefix, type AdminTokenRecord, type ConsumerKeyRecord } from '../auth/index.js'
import { newId } from '../lib/ids.js'
import { printable } from '../lib/text.js'
import { micros } from '../money/index.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { canRead, principalOf, requireAdmin, requireWrite } from './principal.js'
import { InvalidRequestError, NotFoundError } from './errors.js'
import { doc } from './openapi.js'

const name = printable(z.string().trim().min(1).max(100))
const optionalId = printable(z.string().trim().min(1).max(200)).optional()

const KeyBody = z.strictObject({
  name,
  team_id: optionalId,
  user_id: optionalId,
  agent_id: optionalId,
  environment: printable(z.string().trim().min(1).max(50)).default('prod'),
  endpoint_tag: optionalId,
  on_insufficient_funds: z.enum(['refuse', 'hold']).default('refuse'),
  hold_timeout_ms: z.number().int().min(0).max(300_000).default(30_000),
  /** False: calls may not name a user (`x-tollgate-user`, OpenAI's `user`); they are refused with 400. */
  allow_named_users: z.boolean().default(true),
  /** Output cap for this key's requests that set none (default: the model's maximum). */
  default_output_tokens: z.number().int().min(1).max(10_000_000).optional(),
})

const TokenBody = z
  .strictObject({
    name,
    role: z.enum(['admin', 'team_admin', 'viewer']),
    team_id: optionalId,
  })
  .superRefine((body, ctx) => {
    if (body.role === 'team_admin' && body.team_id === undefined) {
      ctx.addIssue({ code: 'custom', path: ['team_id'], message: 'a team_admin token needs the team it administers' })
    }
    if (body.role === 'admin' && body.team_id !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['team_id'],
        message: 'an admin token covers the whole org; give no team_id (use team_admin or viewer for one team)',
      })
    }
  })

export function presentKey(record: ConsumerKeyRecord) {
  const c = record.consumer
  return {
    id: record.id,
    name: c.name,
    prefix: record.prefix,
    team_id: c.teamId ?? null,
    user_id: c.userId ?? null,
    agent_id: c.agentId ?? null,
    environment: c.environment,
    endpoint_tag: c.endpointTag ?? null,
    on_insufficient_funds: c.onInsufficientFunds,
    hold_timeout_ms: c.holdTimeoutMs,
    allow_named_users: c.allowNamedUsers,
    default_output_tokens: c.defaultOutputTokens ?? null,
    created_at: new Date(record.createdAtMs).toISOString(),
    revoked_at: record.revokedAtMs === undefined ? null : new Date(record.revokedAtMs).toISOString(),
  }
}

export function presentToken(record: AdminTokenRecord) {
  return {
    id: record.tokenId,
    name: record.name,
    prefix: record.prefix,
    role: record.role,
    team_id: record.teamId ?? null,
    created_at: new Date(record.createdAtMs).toISOString(),
    revoked_at: record.revokedAtMs === undefined ? null : new Date(record.revokedAtMs).toISOString(),
  }
}

export async function keyRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.post(
    '/v1/keys',
    doc({ summary: 'Create a consumer key (shown once)', auth: 'admin', body: KeyBody, responses: { 201: 'The key record and `key`, the secret.' } }),
    async (request, reply) => {
      const principal = principalOf(request)
      const body = parseBody(KeyBody, request.body)
      requireWrite(principal, body.team_id)
      const key = generateKey('key')
      const now = deps.clock.nowMs()
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
        allowNamedUsers: body.allow_named_users,
        defaultOutputTokens: body.default_output_tokens,
        // A team_admin vouches for its own team only: its key's user spends and is budgeted as
        // that team's member, never from the user's wallets or budgets of another team or the org.
        ...(principal.role === 'team_admin' && body.user_id !== undefined && { userWithinTeam: true as const }),
      }
      const id = newId('ck', now)
      await deps.stores.auth.createConsumerKey(id, consumer, keyPrefix(key), now)
      deps.consumers.add(consumer)
      await deps.changes.announce('consumer_keys')
      return reply.code(201).send({ ...presentKey({ id, prefix: keyPrefix(key), consumer, createdAtMs: now, revokedAtMs: undefined }), key })
    },
  )

  app.get(
    '/v1/keys',
    doc({ summary: 'List consumer keys (never their secrets)', auth: 'admin', responses: { 200: '`data`: key records.' } }),
    async (request) => {
      const principal = principalOf(request)
      const records = await deps.stores.auth.listConsumerKeyRecords(principal.orgId)
      return { data: records.filter((r) => canRead(principal, r.consumer.teamId)).map(presentKey) }
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/v1/keys/:id',
    doc({ summary: 'Revoke a consumer key', auth: 'admin', responses: { 200: 'The revoked key record.' }, errors: [404] }),
    async (request) => {
      const principal = principalOf(request)
      const existing = (await deps.stores.auth.listConsumerKeyRecords(principal.orgId)).find((r) => r.id === request.params.id)
      if (!existing || !canRead(principal, existing.consumer.teamId)) throw new NotFoundError('key', request.params.id)
      requireWrite(principal, existing.consumer.teamId)
      const revoked = await deps.stores.auth.revokeConsumerKey(principal.orgId, existing.id, deps.clock.nowMs())
      if (!revoked) throw new NotFoundError('key', request.params.id)
      // Every process drops the key before this answers (this one) or within the change-feed poll.
      await deps.changes.announce('consumer_keys')
      return presentKey(revoked)
    },
  )

  app.post(
    '/v1/admin-tokens',
    doc({ summary: 'Create an admin token (shown once)', auth: 'admin', body: TokenBody, responses: { 201: 'The token record and `token`, the secret.' } }),
    async (request, reply) => {
      const principal = principalOf(request)
      requireAdmin(principal)
      const body = parseBody(TokenBody, request.body)
      const now = deps.clock.nowMs()
      const created = await deps.adminAuth.create({ orgId: principal.orgId, role: body.role, teamId: body.team_id, name: body.name, atMs: now })
      const view = presentToken({
        tokenId: created.tokenId,
        orgId: principal.orgId,
        role: body.role,
        teamId: body.team_id,
        name: body.name,
        prefix: created.prefix,
        createdAtMs: now,
        revokedAtMs: undefined,
      })
      return reply.code(201).send({ ...view, token: created.token })
    },
  )

  app.get(
    '/v1/admin-tokens',
    doc({ summary: 'List admin tokens (never their secrets)', auth: 'admin', responses: { 200: '`data`: token records.' } }),
    async (request) => {
      const principal = principalOf(request)
      requireAdmin(principal)
      return { data: (await deps.stores.auth.listAdminTokens(principal.orgId)).map(presentToken) }
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/v1/admin-tokens/:id',
    doc({ summary: 'Revoke an admin token', auth: 'admin', responses: { 200: 'The revoked token record.' }, errors: [404] }),
    async (request) => {
      const principal = principalOf(request)
      requireAdmin(principal)
      if (request.params.id === ENV_TOKEN_ID) {
        throw new InvalidRequestError('the TOLLGATE_ADMIN_TOKEN token is not stored: unset the variable and restart to retire it', [
          { path: 'id', message: 'not revocable' },
        ])
      }
      const revoked = await deps.stores.auth.revokeAdminToken(principal.orgId, request.params.id, deps.clock.nowMs())
      if (!revoked) throw new NotFoundError('admin token', request.params.id)
      return presentToken(revoked)
    },
  )
}
