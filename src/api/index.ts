/**
 * The admin REST API (SPEC §6), one file per resource. Every route here needs an admin token;
 * errors use one envelope (http-errors.ts).
 */
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/index.js'
import type { Stores } from '../app.js'
import type { AdminAuth, ConsumerDirectory } from '../auth/index.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../observability/logger.js'
import type { TicketService } from '../tickets/index.js'
import type { FundsSignal } from '../ledger/index.js'
import type { BudgetService } from '../budgets/index.js'
import type { ChangeFeed } from '../lib/change-feed.js'
import type { SharedTopic } from '../app.js'
import { adminErrorHandler } from './http-errors.js'
import { adminAuthHook } from './principal.js'
import { walletRoutes } from './wallets.js'
import { ticketRoutes } from './tickets.js'
import { reservationRoutes } from './reservations.js'
import { usageRoutes } from './usage.js'
import { keyRoutes } from './keys.js'
import { budgetRoutes } from './budgets.js'
import { notificationRoutes } from './notifications.js'

export interface AdminDeps {
  readonly config: Config
  readonly stores: Stores
  readonly adminAuth: AdminAuth
  readonly tickets: TicketService
  readonly consumers: ConsumerDirectory
  /** Makes committed usage readable by reports (the Redis backend drains its journal). */
  readonly usage: { flush(): Promise<void> }
  readonly funds: FundsSignal
  readonly budgets: BudgetService
  readonly clock: Clock
  readonly logger: Logger
  readonly changes: ChangeFeed<SharedTopic>
}

export async function adminRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.setErrorHandler(adminErrorHandler(deps.logger))
  app.addHook('preHandler', adminAuthHook(deps.adminAuth))
  await walletRoutes(app, deps)
  await ticketRoutes(app, deps)
  await reservationRoutes(app, deps)
  await usageRoutes(app, deps)
  await keyRoutes(app, deps)
  await budgetRoutes(app, deps)
  await notificationRoutes(app, deps)
}
