/**
 * Redis and PostgreSQL for tests, isolated per use: every redisService() call gets its own key
 * prefix, every postgresService() call its own schema, so parallel files and repeated runs
 * against a shared server never collide.
 *
 * Where the server comes from (decided once per run by global-setup.ts and read here via
 * `inject`): REDIS_URL / DATABASE_URL when set; otherwise a throw-away server started from local
 * binaries and shared by the whole run; otherwise the service reports a Skip with the reason.
 * If this module is used without the global setup, it falls back to the same rules inside the
 * worker (a throw-away server per worker, killed when the worker exits).
 *
 *   const pg = await postgresService()
 *   if ('skip' in pg) { it.skip(pg.reason, () => {}); return }
 *
 *   describeWithRedis('reservations', (ctx) => {
 *     it('reserves', async () => { const r = new Redis(ctx.redis.url, { keyPrefix: ctx.redis.prefix }) ... })
 *   })
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, describe, inject } from 'vitest'
import {
  pingPostgres,
  pingRedis,
  planPostgres,
  planRedis,
  startPostgresServer,
  startRedisServer,
  type Endpoint,
  type PostgresBinaries,
  type ThrowawayServer,
} from './servers.js'

export interface Skip {
  readonly skip: true
  readonly reason: string
}

export type ServiceSource = 'env' | 'throwaway'

export interface RedisService {
  /** redis:// URL of the server. */
  readonly url: string
  /** Unique key prefix for this service handle, e.g. `tg_test_3f9a1c07b2:`. Use it for every key. */
  readonly prefix: string
  /** `env`: REDIS_URL (or an explicit url); `throwaway`: started from redis-server for this run. */
  readonly source: ServiceSource
  /** Deletes every key under `prefix`. Idempotent. */
  stop(): Promise<void>
}

export interface PostgresService {
  /** postgres:// URL whose `options` set `search_path` to `schema`: unqualified tables land there. */
  readonly url: string
  /** The server's URL without the search_path option (e.g. for admin connections). */
  readonly baseUrl: string
  /** Same form as RedisService.prefix, for anything else that needs a unique name. */
  readonly prefix: string
  /** The fresh schema, `tg_<random>`, created by postgresService(). */
  readonly schema: string
  readonly source: ServiceSource
  /** DROP SCHEMA ... CASCADE. Idempotent. Close your own pools first or the drop waits on locks. */
  stop(): Promise<void>
}

export interface ServiceOptions {
  /** Use this server instead of the one the run resolved (REDIS_URL/DATABASE_URL/throw-away). */
  readonly url?: string
}

// ---------------------------------------------------------------------------------------------
// Resolving the endpoint

type Resolved = Endpoint | { kind: 'lazy-redis'; binary: string } | { kind: 'lazy-postgres'; binaries: PostgresBinaries }

function provided(key: 'tollgateRedis' | 'tollgatePostgres'): Endpoint | undefined {
  try {
    return inject(key) as Endpoint | undefined
  } catch {
    return undefined
  }
}

function resolveRedis(): Resolved {
  const fromSetup = provided('tollgateRedis')
  if (fromSetup !== undefined) return fromSetup
  const plan = planRedis()
  if (plan.kind === 'env') return { kind: 'url', url: plan.url, source: 'env' }
  if (plan.kind === 'start') return { kind: 'lazy-redis', binary: plan.binary }
  return plan
}

function resolvePostgres(): Resolved {
  const fromSetup = provided('tollgatePostgres')
  if (fromSetup !== undefined) return fromSetup
  const plan = planPostgres()
  if (plan.kind === 'env') return { kind: 'url', url: plan.url, source: 'env' }
  if (plan.kind === 'start') return { kind: 'lazy-postgres', binaries: plan.binaries }
  return plan
}

// Throw-away servers started here, only when no global setup provided an endpoint. Vitest
// re-evaluates this module for each test file (isolate), so they live for one file: the afterAll
// below (registered on the importing file's suite) stops them. Vitest may end its workers with a
// signal, so a process 'exit' hook alone would leak them.
let lazyRedis: Promise<ThrowawayServer> | undefined
let lazyPostgres: Promise<ThrowawayServer> | undefined

try {
  afterAll(async () => {
    const servers = [lazyRedis, lazyPostgres]
    lazyRedis = lazyPostgres = undefined
    await Promise.allSettled(servers.map(async (s) => (await s)?.stop()))
  })
} catch {
  // imported outside a test file's collection
}

async function endpointUrl(resolved: Resolved, service: string): Promise<{ url: string; source: ServiceSource } | Skip> {
  switch (resolved.kind) {
    case 'url':
      return { url: resolved.url, source: resolved.source }
    case 'skip':
      return { skip: true, reason: resolved.reason }
    case 'error':
      throw new Error(`${service} is unavailable: ${resolved.reason}`)
    case 'lazy-redis':
      lazyRedis ??= startRedisServer({ binary: resolved.binary })
      return { url: (await lazyRedis).url, source: 'throwaway' }
    case 'lazy-postgres':
      lazyPostgres ??= startPostgresServer({ binaries: resolved.binaries })
      return { url: (await lazyPostgres).url, source: 'throwaway' }
  }
}

/** Synchronous: will redisService() skip, and why? (Errors don't skip: they fail the test.) */
export function redisSkipReason(): string | undefined {
  const r = resolveRedis()
  return r.kind === 'skip' ? r.reason : undefined
}

/** Synchronous: will postgresService() skip, and why? */
export function postgresSkipReason(): string | undefined {
  const r = resolvePostgres()
  return r.kind === 'skip' ? r.reason : undefined
}

function token(): string {
  return randomBytes(5).toString('hex')
}

/** The URL with any password masked, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return '<unparseable url>'
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

// ---------------------------------------------------------------------------------------------
// Redis

export async function redisService(options: ServiceOptions = {}): Promise<RedisService | Skip> {
  const endpoint = options.url !== undefined ? { url: options.url, source: 'env' as const } : await endpointUrl(resolveRedis(), 'Redis')
  if ('skip' in endpoint) return endpoint
  const { url, source } = endpoint
  try {
    await pingRedis(url, 3000)
  } catch (err) {
    throw new Error(`Redis at ${redactUrl(url)} (${source}) does not answer PING: ${message(err)}`)
  }
  const prefix = `tg_test_${token()}:`
  let stopping: Promise<void> | undefined
  return {
    url,
    prefix,
    source,
    stop: () => (stopping ??= deleteKeys(url, prefix)),
  }
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** Adds `-c search_path=<schema>` to the URL's libpq `options` (percent-encoded, kept if present). */
export function withSearchPath(url: string, schema: string): string {
  const u = new URL(url)
  const existing = u.searchParams.get('options')
  const option = `-c search_path=${schema}`
  u.searchParams.set('options', existing !== null && existing !== '' ? `${existing} ${option}` : option)
  // URLSearchParams writes spaces as '+'; libpq only understands %20 (a literal '+' is %2B).
  u.search = u.searchParams.toString().replace(/\+/g, '%20')
  return u.toString()
}

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  client.on('error', () => {})
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => {})
  }
}

export async function postgresService(options: ServiceOptions = {}): Promise<PostgresService | Skip> {
  const endpoint = options.url !== undefined ? { url: options.url, source: 'env' as const } : await endpointUrl(resolvePostgres(), 'PostgreSQL')
  if ('skip' in endpoint) return endpoint
  const { url: baseUrl, source } = endpoint
  try {
    await pingPostgres(baseUrl, 5000)
  } catch (err) {
    throw new Error(`PostgreSQL at ${redactUrl(baseUrl)} (${source}) does not answer: ${message(err)}`)
  }
  const id = token()
  const schema = `tg_${id}`
  await withClient(baseUrl, (c) => c.query(`CREATE SCHEMA ${quoteIdent(schema)}`))
  let stopping: Promise<void> | undefined
  return {
    url: withSearchPath(baseUrl, schema),
    baseUrl,
    prefix: `tg_test_${id}:`,
    schema,
    source,
    stop: () =>
      (stopping ??= withClient(baseUrl, async (c) => {
        await c.query(`SET lock_timeout = '10s'`)
        await c.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`)
      })),
  }
}

// ---------------------------------------------------------------------------------------------
// describe helpers: skip the whole block (reason in the title) when the service is missing;
// otherwise acquire it in beforeAll and stop it in afterAll.

export interface RedisContext {
  readonly redis: RedisService
}
export interface PostgresContext {
  readonly postgres: PostgresService
}

export function describeWithRedis(name: string, fn: (ctx: RedisContext) => void): void {
  describeWith(name, { redis: true, postgres: false }, fn)
}

export function describeWithPostgres(name: string, fn: (ctx: PostgresContext) => void): void {
  describeWith(name, { redis: false, postgres: true }, fn)
}

export function describeWithBoth(name: string, fn: (ctx: RedisContext & PostgresContext) => void): void {
  describeWith(name, { redis: true, postgres: true }, fn)
}

function describeWith(name: string, needs: { redis: boolean; postgres: boolean }, fn: (ctx: RedisContext & PostgresContext) => void): void {
  const reasons = [needs.redis ? redisSkipReason() : undefined, needs.postgres ? postgresSkipReason() : undefined].filter((r): r is string => r !== undefined)
  const skip = reasons.length > 0
  const title = skip ? `${name} (skipped: ${reasons.join('; ')})` : name

  let redis: RedisService | undefined
  let postgres: PostgresService | undefined
  const ctx: RedisContext & PostgresContext = {
    get redis(): RedisService {
      if (redis === undefined)
        throw new Error(needs.redis ? 'ctx.redis is only available inside tests/hooks (after beforeAll)' : 'this block did not ask for Redis')
      return redis
    },
    get postgres(): PostgresService {
      if (postgres === undefined)
        throw new Error(needs.postgres ? 'ctx.postgres is only available inside tests/hooks (after beforeAll)' : 'this block did not ask for PostgreSQL')
      return postgres
    },
  }

  describe.skipIf(skip)(title, () => {
    beforeAll(async () => {
      const [r, p] = await Promise.allSettled([needs.redis ? redisService() : undefined, needs.postgres ? postgresService() : undefined])
      // Keep whatever was acquired so afterAll stops it even if the other one failed.
      if (r.status === 'fulfilled' && r.value !== undefined && !('skip' in r.value)) redis = r.value
      if (p.status === 'fulfilled' && p.value !== undefined && !('skip' in p.value)) postgres = p.value
      for (const result of [r, p]) {
        if (result.status === 'rejected') throw result.reason
        if (result.value !== undefined && 'skip' in result.value) throw new Error(result.value.reason)
      }
    })
    afterAll(async () => {
      await Promise.all([redis?.stop(), postgres?.stop()])
    })
    fn(ctx)
  })
}
