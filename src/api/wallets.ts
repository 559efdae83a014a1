/**
 * Wallets: allocate funds, list balances, read a wallet's ledger. A team_admin funds and reads
 * only its own team's wallets (the team wallet and user wallets of the team).
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { currency, usdAmount } from './contract/money.js'
import { userTeamOf, walletRefOf, walletScopeFields } from './scope.js'
import { canRead, principalOf, requireWrite } from './principal.js'
import { ForbiddenError, NotFoundError } from './errors.js'
import { presentEntry, presentWallet } from './present.js'
import { teamOfWallet } from '../ledger/index.js'
import { doc } from './openapi.js'
import { printable } from '../lib/text.js'

const AllocateBody = z
  .strictObject({
    ...walletScopeFields,
    amount: usdAmount,
    currency,
    description: printable(z.string().max(500), 'free').optional(),
  })
  .transform((body, ctx) => ({ wallet: walletRefOf(body, ctx)!, userTeamId: userTeamOf(body), amountMicros: body.amount, description: body.description }))

const LEDGER_PAGE_MAX = 1000
const LedgerQuery = z.object({ limit: z.coerce.number().int().min(1).max(LEDGER_PAGE_MAX).default(100) })

export async function walletRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.post(
    '/v1/wallets/allocate',
    doc({
      summary: 'Add funds to an org, team or user wallet (created on first use)',
      auth: 'admin',
      body: AllocateBody,
      responses: { 201: 'The wallet after the allocation.' },
      errors: [409],
    }),
    async (request, reply) => {
      const principal = principalOf(request)
      const body = parseBody(AllocateBody, request.body)
      const orgId = principal.orgId
      if (body.wallet.scopeKind === 'org' && body.wallet.scopeId !== orgId) {
        throw new ForbiddenError(`org_id ${body.wallet.scopeId} is not your org (${orgId})`)
      }
      const existing = await deps.stores.ledger.findWallet(orgId, body.wallet)
      // A user wallet belongs to the team it was first funded for: a team_admin funds only its team's.
      const team =
        body.wallet.scopeKind === 'team'
          ? body.wallet.scopeId
          : body.wallet.scopeKind === 'user'
            ? (body.userTeamId ?? existing?.teamId ?? (principal.role === 'team_admin' ? principal.teamId : undefined))
            : undefined
      requireWrite(principal, team)
      if (existing && body.wallet.scopeKind === 'user' && existing.teamId !== undefined && team !== existing.teamId) {
        requireWrite(principal, existing.teamId)
      }
      const wallet = await deps.stores.ledger.allocate({
        orgId,
        wallet: body.wallet,
        teamId: body.wallet.scopeKind === 'user' ? team : undefined,
        amountMicros: body.amountMicros,
        description: body.description,
        atMs: deps.clock.nowMs(),
      })
      // Held requests of this org try again at once: a top-up releases them like an approval.
      deps.funds.added(orgId)
      return reply.code(201).send(presentWallet(wallet))
    },
  )

  app.get(
    '/v1/wallets',
    doc({ summary: 'List wallets with their balances', auth: 'admin', responses: { 200: '`data`: wallets the token may read.' } }),
    async (request) => {
      const principal = principalOf(request)
      const wallets = (await deps.stores.ledger.listWallets(principal.orgId)).filter((w) => canRead(principal, teamOfWallet(w)))
      return { data: wallets.map(presentWallet) }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/wallets/:id/ledger',
    doc({
      summary: 'A wallet’s ledger entries, newest first',
      auth: 'admin',
      query: LedgerQuery,
      responses: { 200: 'The wallet and `data`: its entries.' },
      errors: [404],
    }),
    async (request) => {
      const principal = principalOf(request)
      const wallet = await deps.stores.ledger.getWallet(request.params.id)
      if (!wallet || wallet.orgId !== principal.orgId || !canRead(principal, teamOfWallet(wallet))) {
        throw new NotFoundError('wallet', request.params.id)
      }
      const { limit } = parseBody(LedgerQuery, request.query, 'query')
      const entries = await deps.stores.ledger.ledgerEntries(wallet.id, limit)
      return { wallet: presentWallet(wallet), data: entries.map(presentEntry) }
    },
  )
}
