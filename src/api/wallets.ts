/** Wallets (SPEC §6): allocate funds, list balances, read a wallet's ledger. */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { currency, usdAmount } from './contract/money.js'
import { walletRefOf, walletScopeFields } from './scope.js'
import { principalOf, requireWrite, teamFilter } from './principal.js'
import { ForbiddenError, InvalidRequestError, NotFoundError } from './errors.js'
import { presentEntry, presentWallet } from './present.js'

const AllocateBody = z
  .strictObject({
    ...walletScopeFields,
    amount: usdAmount,
    currency,
    description: z.string().max(500).optional(),
  })
  .transform((body, ctx) => ({ wallet: walletRefOf(body, ctx)!, amountMicros: body.amount, description: body.description }))

const LEDGER_PAGE_MAX = 1000

export async function walletRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.post('/v1/wallets/allocate', async (request, reply) => {
    const principal = principalOf(request)
    const body = parseBody(AllocateBody, request.body)
    const orgId = principal.orgId
    if (body.wallet.scopeKind === 'org' && body.wallet.scopeId !== orgId) {
      throw new ForbiddenError(`org_id ${body.wallet.scopeId} is not your org (${orgId})`)
    }
    requireWrite(principal, body.wallet.scopeKind === 'team' ? body.wallet.scopeId : undefined)
    const wallet = await deps.stores.ledger.allocate({
      orgId,
      wallet: body.wallet,
      amountMicros: body.amountMicros,
      description: body.description,
      atMs: deps.clock.nowMs(),
    })
    return reply.code(201).send(presentWallet(wallet))
  })

  app.get('/v1/wallets', async (request) => {
    const principal = principalOf(request)
    const team = teamFilter(principal)
    const wallets = (await deps.stores.ledger.listWallets(principal.orgId)).filter(
      (w) => team === undefined || (w.scopeKind === 'team' && w.scopeId === team),
    )
    return { data: wallets.map(presentWallet) }
  })

  app.get<{ Params: { id: string }; Querystring: { limit?: string } }>('/v1/wallets/:id/ledger', async (request) => {
    const principal = principalOf(request)
    const wallet = await deps.stores.ledger.getWallet(request.params.id)
    const team = teamFilter(principal)
    if (!wallet || wallet.orgId !== principal.orgId || (team !== undefined && !(wallet.scopeKind === 'team' && wallet.scopeId === team))) {
      throw new NotFoundError('wallet', request.params.id)
    }
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit)
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > LEDGER_PAGE_MAX) {
      throw new InvalidRequestError(`limit: expected an integer from 1 to ${LEDGER_PAGE_MAX}`, [{ path: 'limit', message: 'out of range' }])
    }
    const entries = await deps.stores.ledger.ledgerEntries(wallet.id, limit)
    return { wallet: presentWallet(wallet), data: entries.map(presentEntry) }
  })
}
