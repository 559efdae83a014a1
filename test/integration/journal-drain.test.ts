/**
 * The journal drain reads its entries from Redis as bytes and hands them to PostgreSQL as they
 * are. What a user would notice if that went wrong: usage text that is not what the call carried,
 * or entries of a gateway that died before acknowledging them never reaching PostgreSQL.
 */
import type { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { newId } from '../../src/lib/ids.js'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import { createRedis, redisReady } from '../../src/store/redis/client.js'
import { JOURNAL_DRAIN_DEFAULTS, JournalDrain, type JournalDrainOptions } from '../../src/store/redis/journal-drain.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { JOURNAL_GROUP } from '../../src/store/redis/lua.js'
import { usageRowJson } from '../../src/store/sqlite/usage-store.js'
import type { UsageEvent } from '../../src/usage/types.js'
import { describeWithBoth } from '../support/services.js'
import { startTcpProxy, hostPort, viaPort } from './scale-support.js'
import { aTeamChatEvent } from '../support/usage-data.js'

const ORG = 'default'

describeWithBoth('journal drain', (ctx) => {
  let pool: pg.Pool
  let redis: Redis

  beforeAll(async () => {
    pool = createPool(ctx.postgres.url)
    await migrate(pool)
    redis = createRedis(ctx.redis.url)
    await redisReady(redis, 5_000)
  })

  afterAll(async () => {
    redis.disconnect()
    await pool.end()
  })

  /** A drain of ORG on its own Redis connection, made with the gateway's options (auto-pipelining included). */
  async function aDrain(to: pg.Pool, keys: RedisKeys, options: Partial<JournalDrainOptions>): Promise<JournalDrain> {
    const usage = new PostgresUsageStore(to)
    const drainRedis = createRedis(ctx.redis.url)
    await redisReady(drainRedis, 5_000)
    return new JournalDrain(
      drainRedis,
      to,
      keys,
      (rows) => usage.insertRowBytes(rows),
      async () => [ORG],
      { ...JOURNAL_DRAIN_DEFAULTS, ...options },
    )
  }

  /** Events with text a byte-for-byte copy must keep: accents, a character outside the BMP, quotes. */
  function events(n: number): UsageEvent[] {
    const atMs = Date.UTC(2026, 11, 3, 12)
    return Array.from({ length: n }, (_, i) => {
      const event = aTeamChatEvent({ id: newId('evt', atMs), requestId: newId('req', atMs), atMs: atMs + i, teamId: 'drain', costMicros: 1_000 + i })
      return Object.assign(event, { attribution: Object.assign({}, event.attribution, { endpointTag: `résumé "${i}" 🧾 naïve` }) })
    })
  }

  async function stored(ids: readonly string[]): Promise<Map<string, string>> {
    const { rows } = await pool.query<{ id: string; endpoint_tag: string }>('SELECT id, endpoint_tag FROM usage_events WHERE id = ANY($1)', [ids])
    return new Map(rows.map((r) => [r.id, r.endpoint_tag]))
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const value = await probe()
      if (value !== undefined) return value
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  it('applies the entries a dead reader left unacknowledged, byte for byte, and acknowledges them', async () => {
    const keys = new RedisKeys(`${ctx.redis.prefix}drain-claim:`)
    const stream = keys.journal(ORG)
    const written = events(40)
    await redis.xgroup('CREATE', stream, JOURNAL_GROUP, '0', 'MKSTREAM')
    for (const event of written) await redis.xadd(stream, '*', 'u', usageRowJson(event))
    // A gateway read them all and was killed before it applied any.
    const read = (await redis.xreadgroup('GROUP', JOURNAL_GROUP, 'vm:dead', 'COUNT', 100, 'STREAMS', stream, '>')) as [string, unknown[]][]
    expect(read[0]![1]).toHaveLength(written.length)

    const drain = await aDrain(pool, keys, { intervalMs: 10, claimIdleMs: 200 })
    try {
      drain.start()
      const ids = written.map((e) => e.id)
      const tags = await until('the abandoned entries in PostgreSQL', async () => {
        const found = await stored(ids)
        return found.size === ids.length ? found : undefined
      })
      for (const event of written) expect(tags.get(event.id)).toBe(event.attribution.endpointTag)
      await until('the entries acknowledged', async () => ((await redis.xlen(stream)) === 0 ? true : undefined))
      const [pending] = (await redis.xpending(stream, JOURNAL_GROUP)) as [number]
      expect(pending).toBe(0)
    } finally {
      await drain.close()
    }
  })

  it('entries it failed to apply while PostgreSQL was down are applied once it is back, not left for the claim', async () => {
    const keys = new RedisKeys(`${ctx.redis.prefix}drain-outage:`)
    const stream = keys.journal(ORG)
    const target = hostPort(ctx.postgres.url)
    const proxy = await startTcpProxy(target.host, target.port)
    const viaProxy = createPool(viaPort(ctx.postgres.url, proxy.port))
    // A claim only after a minute: whatever reaches PostgreSQL sooner, this drain applied itself.
    const drain = await aDrain(viaProxy, keys, { intervalMs: 10, claimIdleMs: 60_000, retryDelayMaxMs: 50 })
    try {
      await proxy.cut()
      const written = events(10)
      for (const event of written) await redis.xadd(stream, '*', 'u', usageRowJson(event))
      drain.start()
      // Many failed attempts, each reading the same entries: more than its own retries allow.
      await until('the drain to fail', async () => (drain.healthy() ? undefined : true))
      await new Promise((r) => setTimeout(r, 1_000))
      expect(await stored(written.map((e) => e.id))).toEqual(new Map())

      await proxy.restore()
      const ids = written.map((e) => e.id)
      await until('the entries in PostgreSQL', async () => ((await stored(ids)).size === ids.length ? true : undefined), 5_000)
      await until('the entries acknowledged', async () => ((await redis.xlen(stream)) === 0 ? true : undefined), 5_000)
    } finally {
      await drain.close()
      await viaProxy.end()
      await proxy.close()
    }
  })

  // The drain holds the Buffers of a batch across PostgreSQL round trips while its connection
  // reads more replies: they must not be views into memory the parser reuses.
  it('Buffer replies held across later megabyte replies keep their bytes', async () => {
    const keys = new RedisKeys(`${ctx.redis.prefix}drain-bytes:`)
    const first = keys.journal('first')
    const second = keys.journal('second')
    const add = redis.pipeline()
    for (let i = 0; i < 1_000; i++) {
      add.xadd(first, '*', 'u', JSON.stringify({ i, text: 'é'.repeat(400 + (i % 97)) }))
      add.xadd(second, '*', 'u', JSON.stringify({ other: i, text: 'x'.repeat(1_000) }))
    }
    await add.exec()
    const asBytes = redis as unknown as { xrangeBuffer(...args: Array<string | number>): Promise<[Buffer, Buffer[]][]> }
    const held = (await asBytes.xrangeBuffer(first, '-', '+')).map(([, fields]) => fields[1]!)
    const copies = held.map((b) => Buffer.from(b))
    for (let round = 0; round < 3; round++) await asBytes.xrangeBuffer(second, '-', '+')
    expect(held).toHaveLength(1_000)
    expect(held.filter((b, i) => !b.equals(copies[i]!))).toEqual([])
    await redis.del(first, second)
  })
})
