/**
 * What a cost ticket shows of its request comes from the gateway's own record of that request,
 * on SQLite and on PostgreSQL: an ingested event (whose request id is its caller's external id)
 * or any event before the ticket's window cannot change it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import { openSqlite } from '../../src/store/sqlite/db.js'
import { SqliteUsageStore, usageMigrations } from '../../src/store/sqlite/usage-store.js'
import type { UsageEvent } from '../../src/usage/types.js'
import type { RequestOutcome } from '../../src/usage/usage-store.js'
import { describeWithPostgres } from '../support/services.js'
import { usageEvent } from '../support/usage-events.js'

interface OutcomeStore {
  insertBatch(events: readonly UsageEvent[]): Promise<void>
  insertIngested(event: UsageEvent): Promise<boolean>
  requestOutcomes(orgId: string, requestIds: readonly string[], sinceMs: number): Promise<Map<string, RequestOutcome>>
}

const AT_MS = Date.UTC(2026, 11, 2, 12)

function outcomes(store: () => OutcomeStore) {
  it("answers from the gateway's events of the ticket's window, not from an ingested event that reuses the request id", async () => {
    const org = `org_outcomes_${process.pid}_${Math.random().toString(36).slice(2)}`
    // The refused call, as the gateway records it.
    const refused = { ...usageEvent({ id: 'refused', orgId: org, teamId: 'ops', atMs: AT_MS, costMicros: 0 }), status: 'error' as const, httpStatus: 429 }
    // An older gateway event with the same id, before the ticket's window.
    const older = { ...usageEvent({ id: 'older', orgId: org, teamId: 'ops', atMs: AT_MS - 86_400_000 }), requestId: refused.requestId }
    await store().insertBatch([older, refused])
    // Another team ingests a "success" under the refused request's id, later.
    const claimed = usageEvent({ id: 'claimed', orgId: org, teamId: 'growth', atMs: AT_MS + 1_000, externalRequestId: refused.requestId })
    expect(await store().insertIngested({ ...claimed, requestId: refused.requestId })).toBe(true)

    const seen = await store().requestOutcomes(org, [refused.requestId, 'req_unknown'], AT_MS - 60_000)
    expect([...seen.entries()]).toEqual([[refused.requestId, { status: 'error', httpStatus: 429, costMicros: 0, atMs: AT_MS }]])
  })
}

describe('request outcomes on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-outcomes-'))
  const db = openSqlite(join(dir, 'usage.db'), usageMigrations)
  const store = new SqliteUsageStore(db)
  afterAll(() => {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  })
  outcomes(() => store)
})

describeWithPostgres('request outcomes on PostgreSQL', (ctx) => {
  let pool: pg.Pool
  let store: PostgresUsageStore
  beforeAll(async () => {
    pool = createPool(ctx.postgres.url)
    await migrate(pool)
    store = new PostgresUsageStore(pool)
  })
  afterAll(async () => {
    await pool.end()
  })
  outcomes(() => store)
})
