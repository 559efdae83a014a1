import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import pg from 'pg'
import { describe, expect, inject, it } from 'vitest'
import { freePort } from './free-port.js'
import { requiredInCi } from './global-setup.js'
import { findPostgresBinaries, findRedisServer, pingPostgres, pingRedis, planPostgres, planRedis, startPostgresServer, startRedisServer } from './servers.js'
import {
  describeWithBoth,
  describeWithPostgres,
  describeWithRedis,
  postgresService,
  redisService,
  withSearchPath,
  type PostgresService,
  type RedisService,
} from './services.js'

// This machine's standing servers (CI machines have them too, a fresh machine may not).
const LOCAL_REDIS = 'redis://127.0.0.1:6379'
const LOCAL_PG = 'postgres://postgres@127.0.0.1:5432/postgres'
const localRedis = await pingRedis(LOCAL_REDIS, 1000).then(
  () => true,
  () => false,
)
const localPg = await pingPostgres(LOCAL_PG, 1000).then(
  () => true,
  () => false,
)
const redisBinary = findRedisServer()
const pgBinaries = findPostgresBinaries()

/** SET/GET under the prefix; stop() removes only the prefixed keys. */
async function exerciseRedis(svc: RedisService): Promise<void> {
  expect(svc.prefix).toMatch(/^tg_test_[0-9a-f]{10}:$/)
  const client = new Redis(svc.url)
  const outsider = `tg_outsider_${svc.prefix}`
  try {
    await client.set(`${svc.prefix}greeting`, 'hello')
    await client.set(outsider, 'keep me')
    expect(await client.get(`${svc.prefix}greeting`)).toBe('hello')
    // ioredis keyPrefix works with it too
    const prefixed = new Redis(svc.url, { keyPrefix: svc.prefix })
    try {
      expect(await prefixed.get('greeting')).toBe('hello')
    } finally {
      prefixed.disconnect()
    }
    await svc.stop()
    await svc.stop() // idempotent
    expect(await client.exists(`${svc.prefix}greeting`)).toBe(0)
    expect(await client.get(outsider)).toBe('keep me')
  } finally {
    await client.del(outsider)
    client.disconnect()
  }
}

/** CREATE TABLE through svc.url lands in svc.schema, not public; stop() drops the schema. */
async function exercisePostgres(svc: PostgresService): Promise<void> {
  expect(svc.schema).toMatch(/^tg_[0-9a-f]{10}$/)
  const table = `probe_${svc.schema}`
  const client = new pg.Client({ connectionString: svc.url })
  await client.connect()
  try {
    const current = await client.query<{ s: string }>('SELECT current_schema() AS s')
    expect(current.rows[0]?.s).toBe(svc.schema)
    await client.query(`CREATE TABLE ${table} (id int PRIMARY KEY, note text)`)
    await client.query(`INSERT INTO ${table} VALUES (1, 'x')`)
    const where = await client.query<{ table_schema: string }>('SELECT table_schema FROM information_schema.tables WHERE table_name = $1', [table])
    expect(where.rows.map((r) => r.table_schema)).toEqual([svc.schema])
  } finally {
    await client.end()
  }
  await svc.stop()
  await svc.stop() // idempotent
  const admin = new pg.Client({ connectionString: svc.baseUrl })
  await admin.connect()
  try {
    const ns = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [svc.schema])
    expect(ns.rowCount).toBe(0)
  } finally {
    await admin.end()
  }
}

async function portIsClosed(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer()
    s.once('error', () => res(false))
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)))
  })
}

function uidOf(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Uid:'))
    return line === undefined ? undefined : Number(line.split(/\s+/)[1])
  } catch {
    return undefined
  }
}

describe('freePort', () => {
  it('returns a port on 127.0.0.1 that can be bound', async () => {
    const port = await freePort()
    expect(port).toBeGreaterThan(0)
    expect(await portIsClosed(port)).toBe(true)
  })
})

describe('planning', () => {
  it('uses the env var when set, starts from binaries otherwise, skips with a reason without either', () => {
    expect(planRedis({ REDIS_URL: 'redis://h:1' }, [])).toEqual({ kind: 'env', url: 'redis://h:1' })
    expect(planPostgres({ DATABASE_URL: 'postgres://h/db' }, [])).toEqual({ kind: 'env', url: 'postgres://h/db' })
    const r = planRedis({}, [])
    expect(r.kind).toBe('skip')
    expect(r.kind === 'skip' && r.reason).toMatch(/REDIS_URL is unset.*redis-server/)
    const p = planPostgres({ DATABASE_URL: '  ' }, [])
    expect(p.kind === 'skip' && p.reason).toMatch(/DATABASE_URL is unset.*initdb/)
    if (redisBinary !== undefined) expect(planRedis({}).kind).toBe('start')
    if (pgBinaries !== undefined) expect(planPostgres({}).kind).toBe('start')
  })

  it('under CI=true a missing service fails the tests that need it instead of skipping them', () => {
    const skip = { kind: 'skip' as const, reason: 'needs Redis: REDIS_URL is unset' }
    expect(requiredInCi(skip, {})).toEqual(skip)
    expect(requiredInCi(skip, { CI: 'false' })).toEqual(skip)
    const inCi = requiredInCi(skip, { CI: 'true' })
    expect(inCi.kind).toBe('error')
    expect(inCi.kind === 'error' && inCi.reason).toMatch(/needs Redis.*CI=true.*fail instead of skipping/)
  })

  it('withSearchPath percent-encodes the option and keeps existing ones', () => {
    expect(withSearchPath('postgres://u@h:5432/db', 'tg_x')).toBe('postgres://u@h:5432/db?options=-c%20search_path%3Dtg_x')
    const merged = new URL(withSearchPath('postgres://u@h/db?options=-c%20statement_timeout%3D5s&sslmode=disable', 'tg_y'))
    expect(merged.searchParams.get('options')).toBe('-c statement_timeout=5s -c search_path=tg_y')
    expect(merged.searchParams.get('sslmode')).toBe('disable')
  })
})

describe("the run's services (env vars if set, else the global setup's throw-away servers)", () => {
  it('redisService(): prefixed SET/GET, stop() clears the prefix', async ({ skip }) => {
    const svc = await redisService()
    if ('skip' in svc) return skip(svc.reason)
    expect(svc.source).toBe(process.env['REDIS_URL'] ? 'env' : 'throwaway')
    const provided = inject('tollgateRedis')
    expect(provided.kind === 'url' && provided.url).toBe(svc.url)
    // Two handles never share a prefix.
    const other = await redisService()
    expect('skip' in other || other.prefix !== svc.prefix).toBe(true)
    if (!('skip' in other)) await other.stop()
    await exerciseRedis(svc)
  })

  it('postgresService(): tables land in the per-run schema, stop() drops it', async ({ skip }) => {
    const svc = await postgresService()
    if ('skip' in svc) return skip(svc.reason)
    expect(svc.source).toBe(process.env['DATABASE_URL'] ? 'env' : 'throwaway')
    expect(svc.url).toContain(`options=-c%20search_path%3D${svc.schema}`)
    await exercisePostgres(svc)
  })
})

describe('env path: this machine’s standing servers', () => {
  it.skipIf(!localRedis)(`Redis at ${LOCAL_REDIS}${localRedis ? '' : ' (skipped: not answering)'}`, async () => {
    const svc = await redisService({ url: LOCAL_REDIS })
    if ('skip' in svc) throw new Error(svc.reason)
    expect(svc.source).toBe('env')
    await exerciseRedis(svc)
  })

  it.skipIf(!localPg)(`PostgreSQL at ${LOCAL_PG}${localPg ? '' : ' (skipped: not answering)'}`, async () => {
    const svc = await postgresService({ url: LOCAL_PG })
    if ('skip' in svc) throw new Error(svc.reason)
    await exercisePostgres(svc)
  })

  it('an unreachable URL fails loudly instead of skipping', async () => {
    const port = await freePort()
    await expect(redisService({ url: `redis://127.0.0.1:${port}` })).rejects.toThrow(/does not answer PING/)
    await expect(postgresService({ url: `postgres://postgres@127.0.0.1:${port}/postgres` })).rejects.toThrow(/does not answer/)
  })
})

describe('throw-away path: servers started from local binaries', () => {
  it.skipIf(redisBinary === undefined)(
    `redis-server on a free port${redisBinary === undefined ? ' (skipped: no redis-server binary)' : ''}`,
    async () => {
      const server = await startRedisServer()
      try {
        expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
        expect(existsSync(server.dir)).toBe(true)
        const svc = await redisService({ url: server.url })
        if ('skip' in svc) throw new Error(svc.reason)
        await exerciseRedis(svc)
      } finally {
        await server.stop()
      }
      expect(existsSync(server.dir)).toBe(false)
      expect(await portIsClosed(server.port)).toBe(true)
    },
    15_000,
  )

  it.skipIf(pgBinaries === undefined)(
    `initdb + postgres on a free port${pgBinaries === undefined ? ' (skipped: no initdb/postgres binaries)' : ''}`,
    async () => {
      const server = await startPostgresServer()
      try {
        expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`)
        if (process.getuid?.() === 0 && server.pid !== undefined) {
          // PostgreSQL refuses root: the helper drops to an unprivileged account.
          expect(uidOf(server.pid)).not.toBe(0)
        }
        const svc = await postgresService({ url: server.url })
        if ('skip' in svc) throw new Error(svc.reason)
        await exercisePostgres(svc)
      } finally {
        await server.stop()
      }
      expect(existsSync(server.dir)).toBe(false)
      expect(await portIsClosed(server.port)).toBe(true)
    },
    15_000,
  )
})

describeWithRedis('describeWithRedis', (ctx) => {
  it('hands a ready service to the tests', async () => {
    const client = new Redis(ctx.redis.url, { keyPrefix: ctx.redis.prefix })
    try {
      await client.set('k', 'v')
      expect(await client.get('k')).toBe('v')
    } finally {
      client.disconnect()
    }
  })
})

describeWithPostgres('describeWithPostgres', (ctx) => {
  it('hands a ready schema to the tests', async () => {
    const pool = new pg.Pool({ connectionString: ctx.postgres.url, max: 2 })
    try {
      await pool.query('CREATE TABLE t (id int)')
      const r = await pool.query<{ s: string }>(`SELECT table_schema AS s FROM information_schema.tables WHERE table_name = 't' AND table_schema = $1`, [
        ctx.postgres.schema,
      ])
      expect(r.rows).toEqual([{ s: ctx.postgres.schema }])
    } finally {
      await pool.end()
    }
  })
})

describeWithBoth('describeWithBoth', (ctx) => {
  it('has both', () => {
    expect(ctx.redis.prefix).toMatch(/^tg_test_/)
    expect(ctx.postgres.schema).toMatch(/^tg_/)
  })
})
