import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Redis } from 'ioredis'
import { redisService, redisSkipReason, type RedisService } from '../../../test/support/services.js'
import { createRedis, redisReady } from './client.js'
import type { LuaScript } from './lua.js'
import { ScriptRunner } from './scripts.js'
import { createHash } from 'node:crypto'

const skip = redisSkipReason()

/** Answers what it was given: its keys, then its arguments. */
const lua = 'local out = {} for i, k in ipairs(KEYS) do out[#out + 1] = k end for i, a in ipairs(ARGV) do out[#out + 1] = a end return out'
const echo: LuaScript = { name: 'echo', lua, sha: createHash('sha1').update(lua).digest('hex') }

describe.skipIf(skip !== undefined)(`ScriptRunner (Redis)${skip ? ` — skipped: ${skip}` : ''}`, () => {
  let service: RedisService
  let redis: Redis

  beforeAll(async () => {
    const started = await redisService()
    if ('skip' in started) throw new Error(started.reason)
    service = started
    redis = createRedis(service.url)
    expect(await redisReady(redis, 5_000)).toBe(true)
  })

  afterAll(async () => {
    redis?.disconnect()
    await service?.stop()
  })

  it('sends every key and argument byte for byte, whatever its characters and length, and loads an unknown script', async () => {
    await redis.script('FLUSH')
    const runner = new ScriptRunner(redis)
    const keys = [`${service.prefix}{org}:a`, `${service.prefix}{org}:Zürich ☕`]
    const args = ['', '0', 'plain', 'naïve — “quoted” 😀', 'x'.repeat(20_000), 'line\r\nbreak', '$3\r\nfoo', '1234567890']
    // The first call finds the script cache empty (NOSCRIPT) and sends the source.
    expect(await runner.eval(echo, keys, args)).toEqual([...keys, ...args])
    expect(runner.roundTrips).toBe(2)
    expect(await runner.eval(echo, keys, args)).toEqual([...keys, ...args])
    expect(runner.roundTrips).toBe(3)
  })

  it('answers calls made in one turn each with its own reply, in order', async () => {
    const runner = new ScriptRunner(redis)
    await runner.eval(echo, [], ['warm'])
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => runner.eval(echo, [`${service.prefix}k${i}`], [String(i), 'é'.repeat(i)])))
    expect(replies).toEqual(replies.map((_, i) => [`${service.prefix}k${i}`, String(i), 'é'.repeat(i)]))
  })

  it('fails a call at once while Redis is unreachable (no queue to wait in)', async () => {
    const unreachable = createRedis('redis://127.0.0.1:1', { retryStrategy: () => null, connectTimeout: 200 })
    try {
      const runner = new ScriptRunner(unreachable)
      await expect(runner.eval(echo, [], ['x'])).rejects.toThrow()
    } finally {
      unreachable.disconnect()
    }
  })
})
