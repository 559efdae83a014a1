/**
 * The admin REST API, one file per resource. Every route here needs an admin token (Bearer) or a
 * console session cookie (session.ts); errors use one envelope (http-errors.ts).
 */
import type { FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import type { Config } from '../config/index.js'
import type { Stores } from '../app.js'
import type { AdminAuth, ConsumerDirectory, Sessions } from '../auth/index.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../observability/logger.js'
import type { TicketService } from '../tickets/index.js'
import type { FundsSignal } from '../ledger/index.js'
import type { BudgetService } from '../budgets/index.js'
import type { ChangeFeed } from '../lib/change-feed.js'
import type { SharedTopic } from '../app.js'
import type { ExportRunner } from '../exports/index.js'
import { adminErrorHandler } from './http-errors.js'
import { adminAuthHook } from './principal.js'
import { walletRoutes } from './wallets.js'
import { ticketRoutes } from './tickets.js'
import { reservationRoutes } from './reservations.js'
import { usageRoutes } from './usage.js'
import { keyRoutes } from './keys.js'
import { budgetRoutes } from './budgets.js'
import { notificationRoutes } from './notifications.js'
import { sessionRoutes } from './session.js'
import { exportJobRoutes } from './export-jobs.js'

export interface AdminDeps {
  readonly config: Config
  readonly stores: Stores
  readonly adminAuth: AdminAuth
  readonly sessions: Sessions
  readonly tickets: TicketService
  readonly consumers: ConsumerDirectory
  /** Makes committed usage readable by reports (the Redis backend drains its journal). */
  readonly usage: { flush(): Promise<void> }
  readonly funds: FundsSignal
  readonly budgets: BudgetService
  readonly clock: Clock
  readonly logger: Logger
  readonly changes: ChangeFeed<SharedTopic>
  /** Started jobs are handed to it at once; downloads read its folder. */
  readonly exports: ExportRunner
}

export async function adminRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.setErrorHandler(adminErrorHandler(deps.logger))
  // Cookies are parsed in this scope only: the proxy's hot path never reads them.
  await app.register(fastifyCookie)
  app.addHook('preHandler', adminAuthHook(deps.adminAuth, deps.sessions))
  await sessionRoutes(app, deps)
  await walletRoutes(app, deps)
  await ticketRoutes(app, deps)
  await reservationRoutes(app, deps)
  await usageRoutes(app, deps)
  await keyRoutes(app, deps)
  await budgetRoutes(app, deps)
  await notificationRoutes(app, deps)
  await exportJobRoutes(app, deps)
}
