/**
 * Rebuilding an org's counters in Redis from PostgreSQL (Redis holds nothing that cannot be
 * rebuilt). Every script checks the org's `loaded` marker first; on NEEDS_LOAD, `evalLoaded`
 * rebuilds under the org lock and runs the script again. See README.md, "Rebuild".
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { WalletRef } from '../../ledger/types.js'
import type { Journal } from '../postgres/journal.js'
import type { PostgresLedgerRows } from '../postgres/ledger-rows.js'
import type { RedisKeys } from './keys.js'
import { JOURNAL_GROUP, LOAD, UNLOCK, type LuaScript } from './lua.js'
import type { Reply, ScriptRunner } from './scripts.js'

export interface OrgLoaderOptions {
  readonly pendingRetentionMs: number
  readonly counterGraceMs: number
  readonly lockTtlMs: number
  readonly loadWaitMs: number
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export class OrgLoader {
  constructor(
    private readonly redis: Redis,
    private readonly runner: ScriptRunner,
    private readonly keys: RedisKeys,
    private readonly rows: PostgresLedgerRows,
    private readonly journal: Journal,
    private readonly options: OrgLoaderOptions,
  ) {}

  /** Orgs Redis currently holds (the set is rebuilt with each org). */
  async loadedOrgs(): Promise<string[]> {
    this.runner.roundTrips++
    return this.redis.smembers(this.keys.orgs())
  }

  /** Runs a script; on NEEDS_LOAD rebuilds the org (once per process at a time) and runs it again. */
  async evalLoaded(orgId: string, lua: LuaScript, keys: string[], args: string[]): Promise<Reply> {
    for (let attempt = 0; ; attempt++) {
      const reply = await this.runner.eval(lua, keys, args)
      if (reply[0] !== 'NEEDS_LOAD') return reply
      if (attempt >= 3) throw new Error(`org ${orgId}: Redis keeps losing its counters (rebuilt ${attempt} times)`)
      await this.load(orgId)
    }
  }

  private readonly loading = new Map<string, Promise<void>>()

  load(orgId: string): Promise<void> {
    let pending = this.loading.get(orgId)
    if (!pending) {
      pending = this.withOrgLock(orgId, async () => {
        this.runner.roundTrips++
        if ((await this.redis.exists(this.keys.loaded(orgId))) === 0) await this.rebuild(orgId)
      }).finally(() => this.loading.delete(orgId))
      this.loading.set(orgId, pending)
    }
    return pending
  }

  /** Called before a rebuild reads PostgreSQL: what the journals still hold reaches it first. */
  beforeRebuild: (orgId: string) => Promise<unknown> = async () => {}

  /** Rebuilds one org's counters from PostgreSQL. Call with the org lock held. */
  async rebuild(orgId: string): Promise<void> {
    await this.beforeRebuild(orgId)
    await this.journal.flush()
    const [wallets, pending, counters] = await Promise.all([this.rows.walletsOfOrg(orgId), this.rows.pendingOfOrg(orgId), this.rows.countersOfOrg(orgId)])
    const now = Date.now()
    const data = {
      wallets: wallets.map((w) => ({
        key: this.keys.wallet(orgId, { scopeKind: w.scope_kind, scopeId: w.scope_id }),
        id: w.id,
        allocated: String(w.allocated_micros),
        reserved: String(Math.max(0, w.reserved_micros)),
        spent: String(Math.max(0, w.spent_micros)),
        created: String(w.created_at_ms),
        team: w.team_id ?? '',
        // The spend at the last allocation, as PostgreSQL recorded it ('' when not recorded).
        aspent: w.spent_at_allocation_micros === null || w.allocation_total_micros === null ? '' : String(w.spent_at_allocation_micros),
        atotal: w.allocation_total_micros === null ? '' : String(w.allocation_total_micros),
      })),
      reservations: pending.map((r) => {
        const ref = r.scope ? parseScope(r.scope) : undefined
        const fields = {
          id: r.id,
          org: r.org_id,
          amount: String(r.amount_micros),
          wallet: r.wallet_id ?? '',
          wkey: ref && r.wallet_id ? this.keys.wallet(orgId, ref) : '',
          scope: r.scope ?? '',
          budgets: JSON.stringify(r.budgets_json),
          bkeys: r.budgets_json.map((b) => this.keys.counter(orgId, b.budgetId, b.periodKey)).join('\n'),
          req: r.request_id ?? '',
          created: String(r.created_at_ms),
          expires: String(r.expires_at_ms),
          status: 'pending',
          settled: '',
          unbilled: '0',
          resolved: '',
          ctx: r.context_json ?? '',
        }
        return {
          key: this.keys.reservation(orgId, r.id),
          id: r.id,
          expires: String(r.expires_at_ms),
          ttl: String(Math.max(0, r.expires_at_ms - now) + this.options.pendingRetentionMs),
          fields: Object.entries(fields).flat(),
        }
      }),
      counters: counters.map((c) => ({
        key: this.keys.counter(orgId, c.budget_id, c.period_key),
        reserved: String(c.reserved_micros),
        spent: String(c.spent_micros),
        ttl: String(Math.max(0, c.period_end_ms - now) + this.options.counterGraceMs),
      })),
    }
    await this.runner.eval(
      LOAD,
      [this.keys.loaded(orgId), this.keys.pending(orgId), this.keys.journal(orgId)],
      [JSON.stringify(data), JOURNAL_GROUP, randomUUID()],
    )
    this.runner.roundTrips++
    await this.redis.sadd(this.keys.orgs(), orgId)
  }

  async withOrgLock<T>(orgId: string, fn: () => Promise<T>): Promise<T> {
    const lockKey = this.keys.lock(orgId)
    const token = randomUUID()
    const deadline = Date.now() + this.options.loadWaitMs
    for (;;) {
      this.runner.roundTrips++
      if ((await this.redis.set(lockKey, token, 'PX', this.options.lockTtlMs, 'NX')) === 'OK') break
      if (Date.now() > deadline) throw new Error(`org ${orgId}: timed out waiting for another process's rebuild`)
      await sleep(20)
    }
    try {
      return await fn()
    } finally {
      await this.runner.eval(UNLOCK, [lockKey], [token]).catch(() => {})
    }
  }
}

/** `team:marketing` → its wallet ref (undefined for anything else). */
export function parseScope(scope: string): WalletRef | undefined {
  const i = scope.indexOf(':')
  const kind = scope.slice(0, i)
  if (i < 0 || (kind !== 'user' && kind !== 'team' && kind !== 'org')) return undefined
  return { scopeKind: kind, scopeId: scope.slice(i + 1) }
}
