/**
 * One undici Pool per upstream origin, created on first use and kept for the process. Timeouts are
 * explicit: LLM calls legitimately wait long for the first byte, so headersTimeout and
 * bodyTimeout follow the target's `timeout_ms` rather than undici's 300 s defaults.
 */
import { Pool } from 'undici'

export interface UpstreamPoolOptions {
  readonly connectionsMax: number
  readonly timeoutMs: number
}

export class UpstreamPools {
  private readonly pools = new Map<string, Pool>()

  constructor(private readonly options: UpstreamPoolOptions = { connectionsMax: 256, timeoutMs: 600_000 }) {}

  get(origin: string, timeoutMs = this.options.timeoutMs): Pool {
    let pool = this.pools.get(origin)
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.options.connectionsMax,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        connectTimeout: 10_000,
      })
      this.pools.set(origin, pool)
    }
    return pool
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.close()))
    this.pools.clear()
  }
}
