/**
 * Redis key layout. Every key of one org carries the org in a hash tag (`{org}`), so in a Redis
 * Cluster they share a slot and one Lua script may touch all of them:
 *
 *   tg:{org}:loaded                     "1" once the org's counters were rebuilt from PostgreSQL
 *   tg:{org}:lock                       rebuild/allocation lock (SET NX PX)
 *   tg:{org}:w:<scopeKind>:<scopeId>    wallet hash: id, allocated, reserved, spent, created
 *   tg:{org}:r:<reservationId>          reservation hash (see lua.ts); TTL well past its deadline
 *   tg:{org}:pending                    sorted set of pending reservation ids by expiresAt
 *   tg:{org}:b:<budgetId>:<periodKey>   budget counter hash: reserved, spent; expires after the period + a day
 *   tg:{org}:journal                    stream of money moves and usage events, drained into PostgreSQL
 *   tg:{org}:ext-team:<team>:<externalRequestId>
 *                                       an ingested event's id within its team, for 7 days (duplicates
 *                                       are dropped); <team> URI-encoded, empty for a key of no team
 *
 * and one key outside any org (not touched by scripts):
 *
 *   tg:orgs                             set of orgs loaded into Redis (what the sweeper, the drain and reconciliation scan)
 *
 * Everything is under the configured prefix (tests use one per run).
 */
import type { WalletRef } from '../../ledger/types.js'

export class RedisKeys {
  constructor(readonly prefix: string) {}

  private org(orgId: string): string {
    return `${this.prefix}tg:{${orgId}}`
  }

  loaded(orgId: string): string {
    return `${this.org(orgId)}:loaded`
  }

  lock(orgId: string): string {
    return `${this.org(orgId)}:lock`
  }

  wallet(orgId: string, ref: WalletRef): string {
    return `${this.org(orgId)}:w:${ref.scopeKind}:${ref.scopeId}`
  }

  reservation(orgId: string, reservationId: string): string {
    return `${this.org(orgId)}:r:${reservationId}`
  }

  pending(orgId: string): string {
    return `${this.org(orgId)}:pending`
  }

  counter(orgId: string, budgetId: string, periodKey: string): string {
    return `${this.org(orgId)}:b:${budgetId}:${periodKey}`
  }

  journal(orgId: string): string {
    return `${this.org(orgId)}:journal`
  }

  /**
   * Team ids are never empty and their encoding holds no `:`, so no two (team, id) pairs share a
   * key. Not the `ext:<id>` of older versions (one per org), which no longer decides anything.
   */
  externalId(orgId: string, teamId: string | undefined, externalRequestId: string): string {
    return `${this.org(orgId)}:ext-team:${teamId === undefined ? '' : encodeURIComponent(teamId)}:${externalRequestId}`
  }

  orgs(): string {
    return `${this.prefix}tg:orgs`
  }
}
