/**
 * The ioredis client for the shared counters. Its options decide what a Redis outage looks like
 * to a request, so each is set here on purpose:
 *
 * - `enableOfflineQueue: false`: while disconnected, a command fails at once instead of waiting
 *   in a queue for a reconnect that may never come — the consumer's fail mode (closed → 503,
 *   open → emergency allowance) then decides, within the request's latency budget.
 * - `maxRetriesPerRequest: 1`: a command interrupted by a dropped connection is retried once, not
 *   twenty times (the default), so a flapping Redis cannot hold a request for seconds.
 * - `connectTimeout` / `commandTimeout`: bound how long a half-open socket or a stuck server can
 *   hold a request. A Lua script that timed out client-side may still have run; the reservation
 *   it made then expires and is settled by the sweeper (never under-charged).
 * - `enableAutoPipelining: true`: commands issued in the same event-loop turn (reservations of
 *   concurrent requests, the reservation → org key) go out in one write; each is still one
 *   atomic script, and results arrive in order.
 * - `retryStrategy`: keep reconnecting in the background with a capped back-off, so service
 *   resumes (and emergency spend is reconciled) as soon as Redis is back.
 */
import { Redis, type RedisOptions } from 'ioredis'

export const REDIS_CLIENT_OPTIONS = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
  commandTimeout: 2_000,
  /** Reconnect back-off cap. */
  reconnectDelayMaxMs: 1_000,
} as const

export function createRedis(url: string, overrides: Partial<RedisOptions> = {}): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: REDIS_CLIENT_OPTIONS.enableOfflineQueue,
    maxRetriesPerRequest: REDIS_CLIENT_OPTIONS.maxRetriesPerRequest,
    connectTimeout: REDIS_CLIENT_OPTIONS.connectTimeout,
    commandTimeout: REDIS_CLIENT_OPTIONS.commandTimeout,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(50 * times, REDIS_CLIENT_OPTIONS.reconnectDelayMaxMs),
    // Scripts are loaded explicitly (EVALSHA with an EVAL fallback); nothing to do on ready.
    lazyConnect: false,
    ...overrides,
  })
  // Connection errors surface on the commands that fail; an unhandled 'error' event would crash
  // the process.
  client.on('error', () => {})
  return client
}

/** Waits until the client is connected, up to `timeoutMs`. */
export async function redisReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady)
      resolve(client.status === 'ready')
    }, timeoutMs)
    const onReady = (): void => {
      clearTimeout(timer)
      resolve(true)
    }
    client.once('ready', onReady)
  })
}
