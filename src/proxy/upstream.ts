/**
 * One undici Pool per provider target, created on first use and kept for the process. Timeouts are
 * explicit: LLM calls legitimately wait long for the first byte, so headersTimeout and
 * bodyTimeout follow the target's `timeout_ms` rather than undici's 300 s defaults.
 *
 * A stream holds its connection for its whole length, so the pool's connection limit is the
 * number of concurrent calls a target can carry before calls queue inside the gateway; it is the
 * target's `connections_max`. What waits for a connection is visible as a gauge (`stats()`).
 */
import type { Pool } from 'undici'
import type { ProviderTarget } from '../config/index.js'
import { undici } from '../lib/undici.js'

/** What the pools need to know of a target. */
export type PoolTarget = Pick<ProviderTarget, 'id' | 'timeoutMs' | 'connectionsMax'>

/** One pool's state, as undici counts it. */
export interface UpstreamPoolStats {
  readonly target: string
  /** Calls waiting for a free connection (the limit is reached). */
  readonly queued: number
  /** Calls on a connection, sent or being answered. */
  readonly running: number
  readonly connected: number
}

export class UpstreamPools {
  private readonly pools = new Map<string, { target: string; pool: Pool }>()

  /** The pool for `target` at `origin` (a target has one origin; keyed by both so a test may point one id elsewhere). */
  get(target: PoolTarget, origin: string): Pool {
    const key = `${target.id}\n${origin}`
    let entry = this.pools.get(key)
    if (!entry) {
      entry = {
        target: target.id,
        pool: new (undici.get().Pool)(origin, {
          connections: target.connectionsMax,
          pipelining: 1,
          keepAliveTimeout: 30_000,
          headersTimeout: target.timeoutMs,
          bodyTimeout: target.timeoutMs,
          connectTimeout: 10_000,
        }),
      }
      this.pools.set(key, entry)
    }
    return entry.pool
  }

  /** Per target (pools of one target summed); read on a metrics scrape, never on the request path. */
  stats(): UpstreamPoolStats[] {
    const byTarget = new Map<string, { target: string; queued: number; running: number; connected: number }>()
    for (const { target, pool } of this.pools.values()) {
      const s = pool.stats
      const sum = byTarget.get(target) ?? { target, queued: 0, running: 0, connected: 0 }
      sum.queued += s.queued
      sum.running += s.running
      sum.connected += s.connected
      byTarget.set(target, sum)
    }
    return [...byTarget.values()]
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map(({ pool }) => pool.close()))
    this.pools.clear()
  }
}
