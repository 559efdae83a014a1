/**
 * Every store port on PostgreSQL + Redis, for `storage: {postgres, redis}`: the ledger's hot
 * counters in Redis (Lua scripts, one round trip to reserve and one to commit a call) with a
 * journal stream per org drained into PostgreSQL; usage (written through that journal), tickets,
 * idempotency, auth, budgets and notifications in PostgreSQL. Any number of gateway processes on
 * one Redis and one PostgreSQL behave as one gateway.
 *
 * Background work started here, all bounded and stopped by close():
 * - the journal drain (Redis streams → PostgreSQL, every ~20 ms while there is work),
 * - the emergency journal writer (events made while Redis was unreachable),
 * - charging emergency (fail-open) spend into Redis once it answers again (every second),
 * - reconciliation of Redis against PostgreSQL (every `reconcileIntervalMs`), reported via onDrift.
 */
import type pg from 'pg'
import type { Stores } from '../app.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../observability/logger.js'
import { createPool, migrate } from './postgres/db.js'
import { Journal, JOURNAL_DEFAULTS, type JournalOptions } from './postgres/journal.js'
import { PostgresUsageStore } from './postgres/usage-store.js'
import { PostgresTicketStore } from './postgres/ticket-store.js'
import { PostgresIdempotencyStore } from './postgres/idempotency-store.js'
import { PostgresAuthStore } from './postgres/auth-store.js'
import { PostgresBudgetStore } from './postgres/budget-store.js'
import { PostgresNotifyStore } from './postgres/notify-store.js'
import { PostgresChangeStore } from './postgres/change-store.js'
import { PostgresSessionStore } from './postgres/session-store.js'
import { PostgresExportStore } from './postgres/export-store.js'
import { createRedis, redisReady } from './redis/client.js'
import { RedisLedgerStore, type LedgerDrift, type RedisLedgerOptions } from './redis/ledger-store.js'

export { migratePostgres } from './postgres/db.js'
export type { LedgerDrift } from './redis/ledger-store.js'

export interface PostgresRedisConfig {
  readonly postgresUrl: string
  readonly redisUrl: string
  /** Prefix of every Redis key (tests use one per run). */
  readonly keyPrefix?: string
  /** PostgreSQL schema (search_path); the URL's `options` work too. */
  readonly schema?: string
  /** Interval of the Redis ↔ PostgreSQL comparison. Default 60 s; 0 turns it off. */
  readonly reconcileIntervalMs?: number
  readonly ledger?: Partial<RedisLedgerOptions>
  readonly journal?: Partial<JournalOptions>
}

export interface PostgresRedisDeps {
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>
  readonly clock: Clock
  /** Differences between Redis and PostgreSQL found by a reconciliation pass (the app makes a metric + log line of them). */
  readonly onDrift?: (drift: readonly LedgerDrift[]) => void
}

export interface PostgresRedisStores extends Stores {
  readonly ledger: RedisLedgerStore
  /** Redis round trips made by the ledger so far (benchmarks divide by requests). */
  redisRoundTrips(): number
  /** One reconciliation pass now (also run periodically). */
  reconcile(): Promise<readonly LedgerDrift[]>
}

const EMERGENCY_CHARGE_INTERVAL_MS = 1_000
const PING_TIMEOUT_MS = 1_000
const REDIS_STARTUP_WAIT_MS = 5_000

export interface RedisLedgerHandle {
  readonly store: RedisLedgerStore
  readonly journal: Journal
  readonly pool: pg.Pool
  close(): Promise<void>
}

/**
 * Connects PostgreSQL (migrated first) and Redis and builds the ledger over them. Commands fail
 * fast while Redis is disconnected (no offline queue): the first connection gets a moment so the
 * first requests are not refused; a Redis that stays down does not stop the start — the fail
 * modes apply and /readyz says not ready.
 */
async function openLedger(config: PostgresRedisConfig, logger: PostgresRedisDeps['logger'] | undefined) {
  const pool = createPool(config.postgresUrl, config.schema !== undefined ? { schema: config.schema } : {})
  const redis = createRedis(config.redisUrl)
  try {
    await migrate(pool)
  } catch (error) {
    redis.disconnect()
    await pool.end()
    throw error
  }
  const journal = new Journal(pool, { ...JOURNAL_DEFAULTS, ...config.journal }, (error, queued) =>
    logger?.warn({ err: error, queued }, 'ledger journal: PostgreSQL write failed; retrying (events kept in memory)'),
  )
  const usage = new PostgresUsageStore(pool)
  const ledger = new RedisLedgerStore(redis, pool, journal, usage, { ...config.ledger, keyPrefix: config.keyPrefix ?? '' }, (error) =>
    logger?.warn({ err: error }, 'ledger journal: applying Redis journal entries to PostgreSQL failed; retrying (entries stay in Redis)'),
  )
  await redisReady(redis, REDIS_STARTUP_WAIT_MS)
  ledger.startBackground()
  return { pool, redis, journal, ledger, usage }
}

/** The ledger alone (the contract test uses it). */
export async function openRedisLedger(config: PostgresRedisConfig, logger?: PostgresRedisDeps['logger']): Promise<RedisLedgerHandle> {
  const { pool, redis, journal, ledger } = await openLedger(config, logger)
  return {
    store: ledger,
    journal,
    pool,
    async close() {
      await ledger.stopBackground()
      await journal.close()
      redis.disconnect()
      await pool.end()
    },
  }
}

export async function openPostgresRedisStores(config: PostgresRedisConfig, deps: PostgresRedisDeps): Promise<PostgresRedisStores> {
  const { pool, redis, journal, ledger, usage } = await openLedger(config, deps.logger)
  const timers: NodeJS.Timeout[] = []
  let charging = false
  timers.push(
    setInterval(() => {
      if (charging || redis.status !== 'ready') return
      if (ledger.emergency.toCharge.length === 0 && ledger.deferredCount === 0) return
      charging = true
      ledger
        .retryDeferred()
        .then(() => ledger.chargeEmergencySpend())
        .then((left) => {
          if (left === 0) deps.logger.info({}, 'ledger: emergency (fail-open) spend and deferred settlements applied to Redis')
        })
        .catch((error: unknown) => deps.logger.error({ err: error }, 'ledger: charging emergency spend failed'))
        .finally(() => {
          charging = false
        })
    }, EMERGENCY_CHARGE_INTERVAL_MS),
  )
  const reconcile = async (): Promise<readonly LedgerDrift[]> => {
    const drift = await ledger.reconcile()
    // Reported on every pass, empty included, so a drift gauge goes back to zero once healed.
    deps.onDrift?.(drift)
    return drift
  }
  const reconcileIntervalMs = config.reconcileIntervalMs ?? 60_000
  if (reconcileIntervalMs > 0) {
    timers.push(
      setInterval(() => {
        reconcile().catch((error: unknown) => deps.logger.warn({ err: error }, 'ledger: reconciliation skipped'))
      }, reconcileIntervalMs),
    )
  }
  for (const t of timers) t.unref()

  let closed = false
  return {
    ledger,
    usage,
    tickets: new PostgresTicketStore(pool),
    idempotency: new PostgresIdempotencyStore(pool),
    auth: new PostgresAuthStore(pool),
    budgets: new PostgresBudgetStore(pool),
    notify: new PostgresNotifyStore(pool),
    changes: new PostgresChangeStore(pool),
    sessions: new PostgresSessionStore(pool),
    exports: new PostgresExportStore(pool),
    redisRoundTrips: () => ledger.redisRoundTrips,
    counters: {
      redisRoundTrips: () => ledger.redisRoundTrips,
      redisCommands: () => ledger.redisCommands,
      journalBacklog: () => ledger.drain.backlog(),
    },
    reconcile,
    async drain() {
      await ledger.drain.flush()
      await journal.flush()
    },
    async ready() {
      if (closed || redis.status !== 'ready' || !journal.healthy() || !ledger.drain.healthy()) return false
      try {
        await Promise.race([pool.query('SELECT 1'), new Promise((_, reject) => setTimeout(() => reject(new Error('ping timeout')), PING_TIMEOUT_MS).unref())])
        return true
      } catch {
        return false
      }
    },
    async close() {
      if (closed) return
      closed = true
      for (const t of timers) clearInterval(t)
      await ledger.stopBackground()
      await journal.close()
      redis.disconnect()
      await pool.end()
    },
  }
}
