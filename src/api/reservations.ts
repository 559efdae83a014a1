/**
 * The hard cap for applications that call a provider directly: reserve an estimate against a
 * wallet — through the same ledger and the same hard budgets as a proxied call — then settle to
 * the actual cost or void. A settlement is a usage event with the caller's attribution, so it
 * shows in /v1/usage like any call. The reservation expires (settled at the estimate) if the
 * caller never comes back.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { newId } from '../lib/ids.js'
import { printable } from '../lib/text.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { usdAmount, usdAmountOrZero } from './contract/money.js'
import { walletRefOf, walletScopeFields } from './scope.js'
import { canRead, principalOf, requireWrite } from './principal.js'
import { ConflictError, IdempotencyKeyReusedError, NotFoundError } from './errors.js'
import { presentReservation } from './present.js'
import { errorEnvelope } from './http-errors.js'
import { formatUsd, toUsd, ZERO, type Micros } from '../money/index.js'
import { countersMissing, type CascadeStep, type Reservation, type ResolveResult } from '../ledger/index.js'
import { counterRefOf, scopeLabel, walletCrossingOf } from '../budgets/index.js'
import { emptyUsage } from '../providers/index.js'
import type { Principal } from '../auth/index.js'
import type { Attribution, UsageEvent } from '../usage/index.js'
import { doc } from './openapi.js'

const TTL_MS_MAX = 24 * 3_600_000
const label = printable(z.string().trim().min(1).max(200))

const ReserveBody = z
  .strictObject({
    ...walletScopeFields,
    estimate_usd: usdAmount,
    ttl_ms: z.number().int().min(1_000).max(TTL_MS_MAX).optional(),
    request_id: label.optional(),
    /** What the call is, for budgets that match it and for its usage event. */
    model: label.optional(),
    provider: label.optional(),
    endpoint_tag: label.optional(),
    agent_id: label.optional(),
    prompt_version: label.optional(),
    environment: label.optional(),
  })
  .transform((body, ctx) => ({ ...body, wallet: walletRefOf(body, ctx)! }))
type ReserveBody = z.infer<typeof ReserveBody>

const SettleBody = z.strictObject({
  actual_usd: usdAmountOrZero,
  input_tokens: z.number().int().min(0).max(1_000_000_000).optional(),
  output_tokens: z.number().int().min(0).max(1_000_000_000).optional(),
})

/** What a direct reservation remembers for its usage event (stored with it as JSON). */
interface DirectCall {
  readonly attribution: Attribution
  readonly model: string
  readonly provider: string
  readonly requestHash: string
}

export async function reservationRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.post(
    '/v1/reservations',
    doc({
      summary: 'Reserve funds for a call made outside the gateway',
      auth: 'admin',
      body: ReserveBody,
      responses: { 201: 'The reservation.', 200: 'The reservation an Idempotency-Key already made.' },
      errors: [422, 429, 503],
    }),
    async (request, reply) => {
      const principal = principalOf(request)
      const body = parseBody(ReserveBody, request.body)
      const wallet = body.wallet
      // A team_admin reserves against its own team's wallets only; org wallets need an admin.
      const ownerTeam = wallet.scopeKind === 'team' ? wallet.scopeId : wallet.scopeKind === 'user' ? (body.team_id ?? principal.teamId) : undefined
      requireWrite(principal, ownerTeam)
      const now = deps.clock.nowMs()
      const call = directCall(principal, body, ownerTeam)
      const applicable = deps.budgets.applicableBudgets(call.attribution, call.model, call.provider, now)
      // The caller's Idempotency-Key names the reservation (per org and team, so teams never
      // collide): a retried POST reserves once, and the same key with another body is refused.
      const key = request.headers['idempotency-key']
      const reservationId = typeof key === 'string' && key.length > 0 ? idempotentId(principal, key) : newId('rsv', now)
      const cascade: CascadeStep[] = [wallet.scopeKind === 'user' && principal.role !== 'admin' ? { ...wallet, teamOf: principal.teamId ?? '' } : wallet]
      const result = await deps.stores.ledger.reserve({
        reservationId,
        orgId: principal.orgId,
        cascade,
        walletRequired: true,
        walletCapPercent: 100,
        amountMicros: body.estimate_usd,
        budgets: applicable.map(({ budget, period }) => counterRefOf(budget, period)),
        requestId: body.request_id,
        atMs: now,
        expiresAtMs: now + (body.ttl_ms ?? deps.config.reservations.ttlMs),
        context: JSON.stringify(call),
      })
      switch (result.kind) {
        case 'reserved':
          return reply.code(201).send({
            ...presentReservation(result.reservation),
            wallet_available_usd: result.walletAvailableMicros === undefined ? null : toUsd(result.walletAvailableMicros),
          })
        case 'already_exists': {
          const existing = directCallOf(result.reservation)
          if (existing?.requestHash !== call.requestHash || result.reservation.amountMicros !== body.estimate_usd) {
            throw new IdempotencyKeyReusedError()
          }
          return reply.code(200).send(presentReservation(result.reservation))
        }
        case 'insufficient_quota':
          return reply.code(429).send(
            errorEnvelope('insufficient_quota', `Wallet ${result.scope} cannot cover $${formatUsd(body.estimate_usd)}.`, newId('req'), {
              scope: result.scope,
              available_usd: toUsd(result.availableMicrosMax),
            }),
          )
        case 'budget_cap_exceeded': {
          const hit = applicable.find((a) => a.budget.id === result.budgetId)
          const scope = hit ? scopeLabel(hit.budget) : `budget:${result.budgetId}`
          const resetAt = hit ? new Date(hit.period.endMs).toISOString() : null
          void deps.budgets.onBlocked(result.budgetId, result.periodKey, ZERO, now)
          return reply
            .code(429)
            .header('retry-after', hit ? String(Math.max(1, Math.ceil((hit.period.endMs - now) / 1000))) : '60')
            .send(
              errorEnvelope('budget_cap_exceeded', `Spending limit reached for ${scope}${hit ? `: ${hit.budget.name}` : ''}.`, newId('req'), {
                scope,
                reset_at: resetAt,
                remaining_usd: toUsd(result.remainingMicros),
              }),
            )
        }
        case 'store_unavailable':
          return reply.code(503).send(errorEnvelope('store_unavailable', `Spend controls are unavailable: ${result.message}`, newId('req')))
      }
    },
  )

  app.post<{ Params: { id: string } }>(
    '/v1/reservations/:id/settle',
    doc({
      summary: 'Settle a reservation to the actual cost',
      auth: 'admin',
      body: SettleBody,
      responses: { 200: 'The settled reservation.' },
      errors: [404, 409],
    }),
    async (request) => {
      const principal = principalOf(request)
      const body = parseBody(SettleBody, request.body)
      const reservation = await reservationFor(deps, principal, request.params.id)
      requireWrite(principal, teamOfReservation(reservation))
      const usage = { ...emptyUsage(), inputTokens: body.input_tokens ?? 0, outputTokens: body.output_tokens ?? 0 }
      return resolve(deps, reservation, 'settled', body.actual_usd, usage)
    },
  )

  app.post<{ Params: { id: string } }>(
    '/v1/reservations/:id/void',
    doc({ summary: 'Void a reservation: nothing was spent', auth: 'admin', responses: { 200: 'The voided reservation.' }, errors: [404, 409] }),
    async (request) => {
      const principal = principalOf(request)
      const reservation = await reservationFor(deps, principal, request.params.id)
      requireWrite(principal, teamOfReservation(reservation))
      return resolve(deps, reservation, 'voided', ZERO, emptyUsage())
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/reservations/:id',
    doc({ summary: 'A reservation', auth: 'admin', responses: { 200: 'The reservation.' }, errors: [404] }),
    async (request) => {
      const principal = principalOf(request)
      return presentReservation(await reservationFor(deps, principal, request.params.id))
    },
  )
}

function directCall(principal: Principal, body: ReserveBody, ownerTeam: string | undefined): DirectCall {
  const attribution: Attribution = {
    orgId: principal.orgId,
    teamId: ownerTeam ?? principal.teamId,
    userId: body.wallet.scopeKind === 'user' ? body.wallet.scopeId : undefined,
    userFromKey: true,
    agentId: body.agent_id,
    keyName: `token:${principal.tokenId}`,
    endpointTag: body.endpoint_tag,
    promptVersion: body.prompt_version,
    environment: body.environment ?? 'prod',
  }
  const { ttl_ms: _ttl, ...identity } = body
  const requestHash = createHash('sha256').update(JSON.stringify(identity)).digest('hex')
  return { attribution, model: body.model ?? 'direct', provider: body.provider ?? 'direct', requestHash }
}

function directCallOf(reservation: Reservation): DirectCall | undefined {
  if (reservation.context === undefined) return undefined
  try {
    return JSON.parse(reservation.context) as DirectCall
  } catch {
    return undefined
  }
}

function idempotentId(principal: Principal, key: string): string {
  const digest = createHash('sha256')
    .update(`${principal.orgId}\u0000${principal.teamId ?? ''}\u0000${key}`)
    .digest('hex')
  return `rsv_idem_${digest.slice(0, 32)}`
}

/** The team whose wallet holds a reservation; undefined for org wallets (admin-only). */
function teamOfReservation(reservation: Reservation): string | undefined {
  const call = directCallOf(reservation)
  if (reservation.scope?.startsWith('team:') === true) return reservation.scope.slice('team:'.length)
  return call?.attribution.teamId
}

async function reservationFor(deps: AdminDeps, principal: Principal, id: string): Promise<Reservation> {
  const reservation = await deps.stores.ledger.getReservation(principal.orgId, id)
  if (!reservation || reservation.orgId !== principal.orgId || !canRead(principal, teamOfReservation(reservation))) throw new NotFoundError('reservation', id)
  return reservation
}

/** Settle or void in one commit with the call's usage event, then thresholds as for any call. */
async function resolve(deps: AdminDeps, reservation: Reservation, outcome: 'settled' | 'voided', actualMicros: Micros, usage: ReturnType<typeof emptyUsage>) {
  const now = deps.clock.nowMs()
  const call = directCallOf(reservation)
  const event: UsageEvent | undefined = call && {
    id: newId('evt', now),
    requestId: reservation.requestId ?? reservation.id,
    atMs: reservation.createdAtMs,
    attribution: call.attribution,
    provider: call.provider,
    targetId: undefined,
    modelRequested: call.model,
    modelServed: call.model,
    endpoint: 'direct',
    usage,
    usageSource: 'reported',
    usageNote: undefined,
    costBreakdown: undefined,
    costMicros: actualMicros,
    priceSource: 'reported:direct-reservation',
    latencyMs: now - reservation.createdAtMs,
    status: outcome === 'settled' ? 'ok' : 'upstream_error',
    httpStatus: outcome === 'settled' ? 200 : 0,
    isStream: false,
    decision: 'allowed',
    reservationId: reservation.id,
    walletId: reservation.walletId,
    dataMode: 'real',
    source: 'direct',
    externalRequestId: undefined,
  }
  // Budgets created (or changed to count the call) since the reservation count a settlement's
  // charge too, in the same commit, as a proxied call's do.
  const joined = call && outcome === 'settled' && actualMicros > 0 ? countersJoined(deps, reservation, call) : []
  const committed = await deps.stores.ledger.commit({
    orgId: reservation.orgId,
    atMs: now,
    event,
    resolve: { reservationId: reservation.id, outcome, actualMicros, ...(joined.length > 0 && { alsoCount: joined }) },
  })
  const result: ResolveResult = committed.kind === 'committed' && committed.resolution ? committed.resolution : { kind: 'not_found' }
  if (result.kind === 'settled' || result.kind === 'voided') {
    const crossings = committed.kind === 'committed' ? committed.budgetCrossings : []
    if (crossings.length > 0) void deps.budgets.onSpendSettled(crossings, { atMs: now })
    if (result.walletCrossing) void deps.budgets.onWalletSpendSettled([walletCrossingOf(result.walletCrossing, reservation.orgId)], { atMs: now })
  }
  return resolved(result, reservation.id)
}

/** The budgets counting the reserved call now that it was not reserved against, by counter. */
function countersJoined(deps: AdminDeps, reservation: Reservation, call: DirectCall) {
  const applicable = deps.budgets.applicableBudgets(call.attribution, call.model, call.provider, reservation.createdAtMs)
  return countersMissing(
    applicable.map(({ budget, period }) => counterRefOf(budget, period)),
    reservation.budgets,
  )
}

function resolved(result: ResolveResult, id: string) {
  if (result.kind === 'not_found') throw new NotFoundError('reservation', id)
  if (!('releasedMicros' in result)) {
    // Settling or voiding twice moves no money; the caller learns what happened the first time.
    throw new ConflictError(`reservation ${id} is ${result.kind.replace('_', ' ')}`, {
      result: result.kind,
      reservation: presentReservation(result.reservation),
    })
  }
  return { result: result.kind, released_usd: toUsd(result.releasedMicros), reservation: presentReservation(result.reservation) }
}
