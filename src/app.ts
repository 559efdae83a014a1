/**
 * The composition root: the only place store adapters meet domains. `buildApp` wires
 * a Config into a Fastify instance with every service it needs and returns them, without
 * listening; `server.ts` listens and handles signals.
 */
import { dirname, join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { DEFAULTS, type Config, type ConsumerGroup, type ProviderTarget } from './config/index.js'
import { systemClock, type Clock } from './lib/clock.js'
import { newId } from './lib/ids.js'
import { createLogger, type Logger } from './observability/logger.js'
import { createMetrics, registerStoreCounters, registerUpstreamPoolGauges, type Metrics, type StoreCounters } from './observability/metrics.js'
import { AdminAuth, ConsumerDirectory, DEFAULT_ORG, Sessions, generateKey, hashKey, keyPrefix, type AuthStore, type SessionStore } from './auth/index.js'
import { PriceBook } from './pricing/index.js'
import { ExpirySweeper, FundsSignal, type IdempotencyStore, type LedgerStore } from './ledger/index.js'
import { TICKET_DEFAULTS, TicketService, type CostTicket, type TicketEvent, type TicketStore } from './tickets/index.js'
import type { UsageStore } from './usage/index.js'
import { BudgetPolicy, proxyRoutes, UpstreamPools, WALLET_DEGRADE_OUTPUT_TOKENS_MAX } from './proxy/index.js'
import { BudgetService, type BudgetStore, type BudgetUsageReader } from './budgets/index.js'
import {
  Dispatcher,
  Escalator,
  Notifier,
  createChannelSender,
  newNotification,
  type EscalationStore,
  type InboxStore,
  type OutboxStore,
  type PreferenceStore,
} from './notify/index.js'
import { startMockUpstream, type MockUpstream } from './providers/index.js'
import { openSqliteStores } from './store/sqlite/index.js'
import { adminRoutes } from './api/index.js'
import { Ingestor, ingestRoutes } from './ingest/index.js'
import { discoveryRoutes, notFoundHandler } from './api/discovery.js'
import { OpenApiRegistry } from './api/openapi.js'
import { healthRoutes } from './observability/health.js'
import { consoleSite } from './web/serve.js'
import { micros, toUsd } from './money/index.js'
import { ChangeFeed, type ChangeVersionStore } from './lib/change-feed.js'
import { EXPORT_RUNNER_DEFAULTS, ExportRunner, type ExportJobStore, type ExportRowSource } from './exports/index.js'

/** What one process changes and the others reload (lib/change-feed.ts). */
export type SharedTopic = 'budgets' | 'consumer_keys'

export interface AppOptions {
  readonly clock?: Clock
  readonly logger?: Logger
  readonly env?: NodeJS.ProcessEnv
  /** Where the built console is (default dist/console); tests point it at a fixture. */
  readonly consoleDir?: string
}

export interface Stores {
  readonly ledger: LedgerStore
  readonly usage: UsageStore
  readonly tickets: TicketStore
  readonly idempotency: IdempotencyStore
  readonly auth: AuthStore
  readonly budgets: BudgetStore & BudgetUsageReader
  readonly notify: OutboxStore & InboxStore & PreferenceStore & EscalationStore
  readonly sessions: SessionStore
  readonly changes: ChangeVersionStore
  /** Export jobs, and the rows they read. */
  readonly exports: ExportJobStore & ExportRowSource
  /**
   * Makes every committed money move and usage event readable through the SQL stores: the Redis
   * backend drains its journal into PostgreSQL; SQLite has nothing to do.
   */
  drain(): Promise<void>
  /** Redis counters, when the backend has them (for /metrics). */
  readonly counters?: StoreCounters
  close(): Promise<void>
  ready(): Promise<boolean>
}

/** How often tickets are expired and their digests sent. */
const TICKET_HOUSEKEEPING_MS = 5_000
/** How often due escalations are looked for: well under the shortest useful `escalate_after`. */
const ESCALATION_TICK_MS = 10_000
/** While shutting down, how often connections that went idle after close() began are closed. */
const IDLE_SWEEP_MS = 50
const HOUR_MS = 3_600_000

export interface App {
  readonly fastify: FastifyInstance
  /** The routes as documented (GET /v1/openapi.json). */
  readonly openApi: OpenApiRegistry
  /** The config as served: a `mock` target without a base URL points at the in-process mock. */
  readonly config: Config
  readonly stores: Stores
  readonly adminAuth: AdminAuth
  readonly consumers: ConsumerDirectory
  readonly tickets: TicketService
  /** `flush()` makes every committed usage event readable by reports. */
  readonly usage: { flush(): Promise<void> }
  readonly funds: FundsSignal
  readonly sweeper: ExpirySweeper
  readonly metrics: Metrics
  readonly logger: Logger
  readonly clock: Clock
  readonly priceBook: PriceBook
  readonly budgets: BudgetService
  readonly dispatcher: Dispatcher
  /** Writes export jobs' files in the background (any process may take a job). */
  readonly exports: ExportRunner
  /** Sends due escalations of unacknowledged notices (ticks with the background loops). */
  readonly escalator: Escalator
  /** Budgets and consumer keys changed by any process reach this one through it. */
  readonly changes: ChangeFeed<SharedTopic>
  /** Starts the background loops: expiry sweeper, notification dispatcher, change feed. */
  start(): Promise<void>
  /** Re-reads what other processes may have written: budgets and API-created consumer keys (the change feed does it once started). */
  refreshSharedState(): Promise<void>
  /** Secrets created on first start, to be printed once by the caller; never logged. */
  readonly firstStart: { adminToken: string | undefined; consumerKey: string | undefined }
  close(): Promise<void>
}

export async function buildApp(configIn: Config, options: AppOptions = {}): Promise<App> {
  const clock = options.clock ?? systemClock
  const env = options.env ?? process.env
  const logger = options.logger ?? createLogger()
  const metrics = createMetrics()
  const mocks: MockUpstream[] = []
  const config = await withMockTargets(configIn, mocks)

  // A store that cannot be opened ends the start: the mock upstreams already listening would
  // otherwise keep the process alive after its error is reported.
  const stores = await openStores(config, logger, clock, env, metrics).catch(async (error: unknown) => {
    await Promise.all(mocks.map((m) => m.close()))
    throw error
  })
  const adminAuth = new AdminAuth(stores.auth, env.TOLLGATE_ADMIN_TOKEN)
  const adminToken = await adminAuth.bootstrap(clock.nowMs())
  const sessions = new Sessions(stores.sessions, clock, adminAuth.envSessionTokenId)
  const apiKeys = await stores.auth.listConsumerKeys()
  let consumerKey: string | undefined
  if (config.consumerGroups.length === 0 && apiKeys.length === 0) {
    // Nothing configured: a newcomer still gets a working key, shown once.
    consumerKey = generateKey('key')
    const consumer = defaultConsumer(hashKey(consumerKey))
    await stores.auth.createConsumerKey(newId('ck', clock.nowMs()), consumer, keyPrefix(consumerKey), clock.nowMs())
    apiKeys.push(consumer)
  }
  const consumers = new ConsumerDirectory(config.consumerGroups, apiKeys)

  const priceBook = new PriceBook({ routes: config.models, clock })
  const usage = { flush: () => stores.drain() }
  const funds = new FundsSignal()
  if (stores.counters) registerStoreCounters(metrics, stores.counters)
  const sweeper = new ExpirySweeper(
    stores.ledger,
    clock,
    logger,
    { intervalMs: config.reservations.sweepIntervalMs, batchSizeMax: 500 },
    (expired) => metrics.reservationsExpired.inc(expired.length),
    () => metrics.sweepFailures.inc(),
  )
  const notifier = new Notifier({ outbox: stores.notify, preferences: stores.notify, channels: config.notificationChannels, clock })
  const senders = config.notificationChannels.map((channel) => createChannelSender(channel))
  const delivery = config.notificationDelivery
  const dispatcher = new Dispatcher({
    outbox: stores.notify,
    senders,
    clock,
    options: {
      retry: { outboxAttemptsMax: delivery.attemptsMax, backoffBaseMs: delivery.backoffBaseMs, backoffCapMs: delivery.backoffCapMs },
      pollIntervalMs: delivery.pollIntervalMs,
    },
    onDelivery: (report) =>
      logger.info({ notificationId: report.notificationId, channel: report.channelId, outcome: report.outcome }, 'notify: delivery attempt'),
    onError: (error) => logger.error({ err: error }, 'notify: dispatcher tick failed'),
  })
  const escalator = new Escalator({
    store: stores.notify,
    sink: notifier,
    clock,
    onError: (error, notificationId) => logger.error({ err: error, notificationId }, 'notify: escalation failed'),
  })
  const tickets = new TicketService(stores.tickets, clock, TICKET_DEFAULTS, (type: TicketEvent, ticket, detail) => {
    const notification = newNotification(type, ticket.orgId, ticket.teamId, ticketNotificationData(ticket, detail?.newRefusals), clock.nowMs())
    notifier.emit(notification, undefined).catch((error: unknown) => logger.error({ err: error, ticketId: ticket.id }, 'notify: ticket notification failed'))
  })
  const budgets = new BudgetService({
    store: stores.budgets,
    usage: stores.budgets,
    counters: stores.ledger,
    notifications: notifier,
    clock,
    channelIds: config.notificationChannels.map((c) => c.id),
    endpointTiers: config.endpointTiers,
    escalationChannels: config.escalationChannels,
    walletAlerts: config.costTracking.budgetAlerts,
    wallets: stores.ledger,
    degradeTargetFor: (model) => config.models.find((m) => m.name === model)?.degradeTo,
    onError: (error, what) => logger.error({ err: error, what }, 'budgets: evaluation failed'),
    // Top spenders in a notification must include the call that crossed the threshold.
    flushUsage: () => usage.flush(),
  })
  await budgets.syncDeclared(config.budgets, DEFAULT_ORG)
  const degradeAlerts = config.costTracking.budgetAlerts.filter((alert) => alert.action === 'degrade')
  const walletDegrade =
    config.costTracking.walletEnforcement && degradeAlerts.length > 0
      ? {
          alerts: degradeAlerts,
          degradeTargetFor: (model: string) => config.models.find((m) => m.name === model)?.degradeTo,
          outputTokensMax: WALLET_DEGRADE_OUTPUT_TOKENS_MAX,
        }
      : undefined
  const policy = new BudgetPolicy(budgets, stores.ledger, logger, walletDegrade)
  const ticketHousekeeping = async (): Promise<void> => {
    await tickets.expireOverdue(500)
    await tickets.sendDigests(100)
  }
  const pools = new UpstreamPools()
  registerUpstreamPoolGauges(metrics, pools)
  const exports = new ExportRunner({
    store: stores.exports,
    source: stores.exports,
    budgets: { listBudgets: (orgId) => stores.budgets.listBudgets(orgId), budgetSpend: (orgId, refs) => stores.ledger.budgetSpend(orgId, refs) },
    flush: () => stores.drain(),
    clock,
    logger,
    options: {
      ...EXPORT_RUNNER_DEFAULTS,
      dir: exportsDir(config),
      leaseMs: config.exports.leaseMs,
      retentionMs: config.exports.retentionHours * HOUR_MS,
      teamBytesKeptMax: config.exports.teamBytesKeptMax,
      diskFreeMinBytes: config.exports.diskFreeMinBytes,
    },
  })

  const fastify = Fastify({
    logger: false,
    bodyLimit: config.server.bodyLimitBytes,
    // Keep-alive sockets from SDK clients outlive a request; close them promptly on shutdown.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  })
  // Other gateway processes create budgets and consumer keys too: pick them up.
  const reloadConsumerKeys = async (): Promise<void> => consumers.replaceApiKeys(await stores.auth.listConsumerKeys())
  const changes = new ChangeFeed<SharedTopic>(stores.changes, { budgets: () => budgets.refresh(), consumer_keys: reloadConsumerKeys }, (error, topic) =>
    logger.error({ err: error, topic }, 'shared state: reload failed'),
  )
  const refreshSharedState = async (): Promise<void> => {
    await Promise.all([budgets.refresh(), reloadConsumerKeys()])
  }

  const proxyDeps = {
    config,
    priceBook,
    ledger: stores.ledger,
    tickets,
    policy,
    funds,
    idempotency: stores.idempotency,
    pools,
    metrics,
    logger,
    clock,
    consumers,
  }
  // Every route is described as it is registered (api/openapi.ts): the hook must come first.
  const openApi = new OpenApiRegistry()
  fastify.addHook('onRoute', openApi.onRoute)
  // One not-found handler for the server: a browser navigating to a console page gets the console
  // (web/serve.ts); anything else, /v1/… included, the API's not_found envelope.
  const site = consoleSite(options.consoleDir === undefined ? {} : { dir: options.consoleDir })
  const apiNotFound = notFoundHandler(openApi)
  fastify.setNotFoundHandler((request, reply) => (site.fallback(request, reply) ? reply : apiNotFound(request, reply)))
  await fastify.register(async (scope) => discoveryRoutes(scope, openApi))
  await fastify.register(async (scope) => proxyRoutes(scope, proxyDeps))
  const ingestor = new Ingestor({ priceBook, ledger: stores.ledger, budgets, clock, logger })
  await fastify.register(async (scope) => ingestRoutes(scope, { ingestor, consumers, adminAuth, logger, metrics }))
  await fastify.register(async (scope) =>
    adminRoutes(scope, { config, stores, adminAuth, sessions, tickets, consumers, clock, logger, usage, budgets, changes, funds, exports, priceBook }),
  )
  await fastify.register(async (scope) => healthRoutes(scope, { stores, metrics, access: config.server.metrics }))
  await fastify.register(async (scope) => site.routes(scope))

  let closed = false
  let housekeeping: NodeJS.Timeout | undefined
  let escalations: NodeJS.Timeout | undefined
  let recovering: Promise<unknown> | undefined
  return {
    fastify,
    config,
    stores,
    adminAuth,
    consumers,
    tickets,
    usage,
    funds,
    sweeper,
    metrics,
    logger,
    clock,
    priceBook,
    budgets,
    dispatcher,
    exports,
    escalator,
    changes,
    firstStart: { adminToken, consumerKey },
    openApi,
    refreshSharedState,
    async start() {
      sweeper.start()
      dispatcher.start()
      await exports.start()
      await changes.start()
      // Notices a crash lost are written now, off the start-up path: budget thresholds first, then
      // the forecast and spike; wallet alerts beside them (recoverThresholds, recoverTrends,
      // recoverWalletAlerts; none throws).
      recovering = Promise.all([budgets.recoverThresholds().then(() => budgets.recoverTrends()), budgets.recoverWalletAlerts()])
      housekeeping = setInterval(() => {
        ticketHousekeeping().catch((error: unknown) => logger.error({ err: error }, 'tickets: housekeeping failed'))
      }, TICKET_HOUSEKEEPING_MS)
      housekeeping.unref()
      escalations = setInterval(() => {
        escalator.tick().catch((error: unknown) => logger.error({ err: error }, 'notify: escalation tick failed'))
      }, ESCALATION_TICK_MS)
      escalations.unref()
    },
    async close() {
      if (closed) return
      closed = true
      // Held requests are answered first: fastify.close() waits for every open request.
      funds.close()
      if (housekeeping) clearInterval(housekeeping)
      if (escalations) clearInterval(escalations)
      await changes.stop()
      await recovering
      // Fastify closes the connections idle when close() starts; a keep-alive connection whose
      // request finishes later (a held request refused above, a stream ending) would keep it open.
      const idleSweep = setInterval(() => fastify.server.closeIdleConnections(), IDLE_SWEEP_MS)
      await fastify.close().finally(() => clearInterval(idleSweep))
      await exports.stop()
      await sweeper.stop()
      await dispatcher.stop()
      await Promise.all(senders.map((sender) => sender.close?.()))
      await pools.close()
      await Promise.all(mocks.map((m) => m.close()))
      await stores.close()
    },
  }
}

async function openStores(config: Config, logger: Logger, clock: Clock, env: NodeJS.ProcessEnv, metrics: Metrics): Promise<Stores> {
  switch (config.storage.kind) {
    case 'sqlite':
      return openSqliteStores(config.storage.path)
    case 'postgres': {
      // Loaded only for this store: the SQLite gateway never loads ioredis and pg (start-up time).
      const { openPostgresRedisStores } = await import('./store/postgres-redis.js')
      return openPostgresRedisStores(
        { postgresUrl: config.storage.postgresUrl, redisUrl: config.storage.redisUrl, keyPrefix: env.TOLLGATE_REDIS_PREFIX ?? '' },
        {
          logger,
          clock,
          onDrift: (drift) => {
            metrics.ledgerDriftWallets.set(drift.length)
            metrics.ledgerDriftMicros.set(drift.reduce((sum, d) => sum + Math.abs(d.redisMicros - d.postgresMicros), 0))
            if (drift.length > 0) logger.warn({ drift }, 'ledger: Redis and PostgreSQL disagree (reconciliation)')
          },
        },
      )
    }
  }
}

/** `exports.dir`, or `exports/` beside the SQLite file, or `./data/exports` (docs/exports.md). */
function exportsDir(config: Config): string {
  if (config.exports.dir !== undefined) return config.exports.dir
  if (config.storage.kind === 'sqlite' && config.storage.path !== ':memory:') return join(dirname(config.storage.path), 'exports')
  return join('data', 'exports')
}

/** A `mock` target without a base URL is served by a mock upstream started in this process. */
async function withMockTargets(config: Config, mocks: MockUpstream[]): Promise<Config> {
  if (!config.targets.some((t) => t.provider === 'mock' && t.baseUrl === undefined)) return config
  const targets: ProviderTarget[] = []
  for (const target of config.targets) {
    if (target.provider !== 'mock' || target.baseUrl !== undefined) {
      targets.push(target)
      continue
    }
    const mock = await startMockUpstream({ latencyMs: 20, streamChunkDelayMs: 15 })
    mocks.push(mock)
    targets.push({ ...target, baseUrl: `${mock.url}/v1`, apiKey: target.apiKey ?? 'mock' })
  }
  return Object.freeze({ ...config, targets: Object.freeze(targets) })
}

/** The consumer created on first start when nothing is configured: the config's group defaults, team "default". */
function defaultConsumer(apiKeyHash: string): ConsumerGroup {
  const defaults = DEFAULTS.consumerGroup
  return {
    name: 'default',
    apiKeyHash,
    orgId: DEFAULT_ORG,
    teamId: 'default',
    userId: undefined,
    agentId: undefined,
    environment: defaults.environment,
    endpointTag: undefined,
    onInsufficientFunds: defaults.onInsufficientFunds,
    holdTimeoutMs: defaults.holdTimeoutMs,
    failMode: defaults.failMode,
    emergencyAllowanceMicros: micros(0),
    allowNamedUsers: defaults.allowNamedUsers,
    defaultOutputTokens: undefined,
  }
}

/**
 * What an owner needs to act on a ticket: which scope, which request, how much, where it stands,
 * and how many refusals joined it (a digest names the ones since the last notice).
 */
function ticketNotificationData(ticket: CostTicket, newRefusals: number | undefined) {
  return {
    ticket_id: ticket.id,
    status: ticket.status,
    scope: ticket.scope,
    reason: ticket.reason,
    consumer: ticket.consumerName,
    model: ticket.model,
    request_id: ticket.requestId,
    estimate_usd: toUsd(ticket.estimateMicros),
    grant_usd: ticket.grantMicros === undefined ? null : toUsd(ticket.grantMicros),
    refused_count: ticket.refusedCount,
    first_seen_at: new Date(ticket.createdAtMs).toISOString(),
    last_seen_at: new Date(ticket.lastSeenAtMs).toISOString(),
    ...(newRefusals !== undefined && { new_refusals: newRefusals }),
    expires_at: new Date(ticket.expiresAtMs).toISOString(),
  }
}
