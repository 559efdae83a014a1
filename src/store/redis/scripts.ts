/** Runs the Lua scripts: EVALSHA, loading the script with EVAL when Redis does not know it yet. */
import type { Redis } from 'ioredis'
import type { LuaScript } from './lua.js'

export type Reply = unknown[]

export class ScriptRunner {
  /** Every command sent to Redis by the ledger is counted here (benchmarks report it per request). */
  roundTrips = 0

  constructor(private readonly redis: Redis) {}

  async eval(lua: LuaScript, keys: readonly string[], args: readonly string[]): Promise<Reply> {
    this.roundTrips++
    try {
      return (await this.redis.evalsha(lua.sha, keys.length, ...keys, ...args)) as Reply
    } catch (error) {
      // After a Redis restart the script cache is empty: send the source once.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      this.roundTrips++
      return (await this.redis.eval(lua.lua, keys.length, ...keys, ...args)) as Reply
    }
  }
}

/** A Redis connection or timeout error, as opposed to a script's own error reply. */
export function isUnavailable(error: unknown): boolean {
  return !(error instanceof Error && error.name === 'ReplyError')
}
