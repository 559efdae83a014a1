/**
 * The hard cap for applications that call a provider directly (SPEC §6): reserve an estimate
 * against a wallet, then settle to the actual cost or void. Same ledger, same guarantees as the
 * proxy; the reservation expires (settled at the estimate) if the caller never comes back.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { newId } from '../lib/ids.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { usdAmount, usdAmountOrZero } from './contract/money.js'
import { walletRefOf, walletScopeFields } from './scope.js'
import { principalOf, requireWrite, teamFilter } from './principal.js'
import { ConflictError, NotFoundError } from './errors.js'
import { presentReservation } from './present.js'
import { errorEnvelope } from './http-errors.js'
import { formatUsd, toUsd } from '../money/index.js'
import type { ResolveResult } from '../ledger/index.js'

const TTL_MS_MAX = 24 * 3_600_000

const ReserveBody = z
  .strictObject({
    ...walletScopeFields,
    estimate_usd: usdAmount,
    ttl_ms: z.number().int().min(1_000).max(TTL_MS_MAX).optional(),
    request_id: z.string().max(200).optional(),
  })
  .transform((body, ctx) => ({ wallet: walletRefOf(body, ctx)!, estimateMicros: body.estimate_usd, ttlMs: body.ttl_ms, requestId: body.request_id }))

const SettleBody = z.strictObject({ actual_usd: usdAmountOrZero })

export async function reservationRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.post('/v1/reservations', async (request, reply) => {
    const principal = principalOf(request)
    const body = parseBody(ReserveBody, request.body)
    // A team_admin reserves against its own team's wallet only; user and org wallets need an admin.
    requireWrite(principal, body.wallet.scopeKind === 'team' ? body.wallet.scopeId : undefined)
    const now = deps.clock.nowMs()
    // The caller's Idempotency-Key names the reservation, so a retried POST reserves once.
    const key = request.headers['idempotency-key']
    const reservationId = typeof key === 'string' && key.length > 0 ? `rsv_${principal.orgId}_${key}`.slice(0, 200) : newId('rsv', now)
    const result = await deps.stores.ledger.reserve({
      reservationId,
      orgId: principal.orgId,
      cascade: [body.wallet],
      walletRequired: true,
      walletCapPercent: 100,
      amountMicros: body.estimateMicros,
      budgets: [],
      requestId: body.requestId,
      atMs: now,
      expiresAtMs: now + (body.ttlMs ?? deps.config.reservations.ttlMs),
    })
    switch (result.kind) {
      case 'reserved':
        return reply.code(201).send({ ...presentReservation(result.reservation), wallet_available_usd: result.walletAvailableMicros === undefined ? null : toUsd(result.walletAvailableMicros) })
      case 'already_exists':
        return reply.code(200).send(presentReservation(result.reservation))
      case 'insufficient_quota':
        return reply.code(429).send(
          errorEnvelope('insufficient_quota', `Wallet ${result.scope} cannot cover $${formatUsd(body.estimateMicros)}.`, newId('req'), {
            scope: result.scope,
            available_usd: toUsd(result.availableMicrosMax),
          }),
        )
      case 'store_unavailable':
        return reply.code(503).send(errorEnvelope('internal_error', `Spend controls are unavailable: ${result.message}`, newId('req')))
      case 'budget_cap_exceeded':
        throw new ConflictError('unexpected budget refusal')
    }
  })

  app.post<{ Params: { id: string } }>('/v1/reservations/:id/settle', async (request) => {
    const principal = principalOf(request)
    const body = parseBody(SettleBody, request.body)
    const reservation = await reservationFor(deps, principal.orgId, request.params.id)
    requireWrite(principal, teamOfScope(reservation.scope))
    return resolved(await deps.stores.ledger.settle(request.params.id, body.actual_usd, deps.clock.nowMs()), request.params.id)
  })

  app.post<{ Params: { id: string } }>('/v1/reservations/:id/void', async (request) => {
    const principal = principalOf(request)
    const reservation = await reservationFor(deps, principal.orgId, request.params.id)
    requireWrite(principal, teamOfScope(reservation.scope))
    return resolved(await deps.stores.ledger.void(request.params.id, deps.clock.nowMs()), request.params.id)
  })

  app.get<{ Params: { id: string } }>('/v1/reservations/:id', async (request) => {
    const principal = principalOf(request)
    const reservation = await reservationFor(deps, principal.orgId, request.params.id)
    const team = teamFilter(principal)
    if (team !== undefined && teamOfScope(reservation.scope) !== team) throw new NotFoundError('reservation', request.params.id)
    return presentReservation(reservation)
  })
}

/** The team whose wallet holds a reservation; undefined for user/org wallets (admin-only). */
function teamOfScope(scope: string | undefined): string | undefined {
  return scope?.startsWith('team:') === true ? scope.slice('team:'.length) : undefined
}

async function reservationFor(deps: AdminDeps, orgId: string, id: string) {
  const reservation = await deps.stores.ledger.getReservation(id)
  if (!reservation || reservation.orgId !== orgId) throw new NotFoundError('reservation', id)
  return reservation
}

function resolved(result: ResolveResult, id: string) {
  if (result.kind === 'not_found') throw new NotFoundError('reservation', id)
  if (result.kind === 'already_settled' || result.kind === 'already_voided' || result.kind === 'already_expired') {
    // Settling or voiding twice moves no money; the caller learns what happened the first time.
    throw new ConflictError(`reservation ${id} is ${result.kind.replace('_', ' ')}`, { result: result.kind, reservation: presentReservation(result.reservation) })
  }
  const released = 'releasedMicros' in result ? result.releasedMicros : undefined
  return { result: result.kind, released_usd: released === undefined ? null : toUsd(released), reservation: presentReservation(result.reservation) }
}
