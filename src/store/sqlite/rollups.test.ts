/**
 * SQLite rollups are folded from the stored events after they commit (SqliteUsageStore.foldRollups,
 * summed in JS by rows/rollup-accumulator.ts). The property: after any sequence of writes —
 * batches, single ingested events, the ledger's group commits, repeated events (same id, or same
 * external id: `INSERT OR IGNORE` keeps the first, and a duplicate must add nothing), a whole
 * transaction that rolls back and a savepoint that rolls back inside one that commits — with
 * folds of a few events at a time between them, the rollup table after a last fold equals a
 * rebuild from the stored events, every row and column, and the stored events are exactly the
 * ones that committed.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { micros } from '../../money/index.js'
import type { UsageEvent } from '../../usage/types.js'
import { eventsArbitrary, storedEvents } from '../../../test/support/usage-events.js'
import { rollupDriftSqlite } from '../../../test/integration/usage-rollups-support.js'
import { openSqlite, type SqliteDatabase } from './db.js'
import { sqliteMigrations } from './index.js'
import { SqliteLedgerStore } from './ledger-store.js'
import { SqliteUsageStore } from './usage-store.js'

type Op = 'batch' | 'single' | 'ledger' | 'rolled_back' | 'savepoint' | 'fold'
const OPS: readonly Op[] = ['batch', 'single', 'ledger', 'rolled_back', 'savepoint', 'fold']

class Boom extends Error {}

describe('SQLite rollups folded from the stored events', () => {
  let db: SqliteDatabase
  let usage: SqliteUsageStore
  let ledger: SqliteLedgerStore

  beforeAll(() => {
    db = openSqlite(':memory:', sqliteMigrations)
    // Folds of 5 events: a fold stops anywhere in what is waiting, rolled-back rowids included.
    usage = new SqliteUsageStore(db, { foldChunkEvents: 5 })
    ledger = new SqliteLedgerStore(db, usage)
  })
  afterAll(() => db.close())

  it('has no per-row trigger left (the migration dropped it)', () => {
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()).toEqual([])
  })

  let run = 0
  it('rollups equal a rebuild from the events after random batches, duplicates and rollbacks', async () => {
    await fc.assert(
      fc.asyncProperty(
        eventsArbitrary('ev', 60),
        fc.array(fc.record({ op: fc.constantFrom(...OPS), size: fc.integer({ min: 1, max: 12 }) }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (generated, plan, repeats) => {
          const org = `org_r${run++}`
          // Gateway errors too (the generator has upstream errors and refusals): both count as errors, refusals do not.
          const fresh = generated.map(
            (e, i): UsageEvent => ({ ...e, id: `${org}_${e.id}`, attribution: { ...e.attribution, orgId: org }, status: i % 4 === 3 ? 'error' : e.status }),
          )
          // Some events sent again later under the same id: stored once, summed once.
          const events = [...fresh, ...repeats.map((i) => fresh[i % fresh.length]!)]
          const committed: UsageEvent[] = []
          let next = 0
          for (const { op, size } of plan) {
            if (next >= events.length) break
            const chunk = events.slice(next, next + size)
            next += chunk.length
            committed.push(...(await write(op, chunk)))
          }
          usage.foldRollups()
          expect(rollupDriftSqlite(db)).toBe(0)
          const stored = db.prepare<[string], { id: string }>('SELECT id FROM usage_events WHERE org_id = ? ORDER BY id').all(org)
          expect(stored.map((r) => r.id)).toEqual(
            storedEvents(committed)
              .map((e) => e.id)
              .sort(),
          )
        },
      ),
      { numRuns: 80 },
    )
  })

  /** Writes `chunk` one way; the events that committed (a store keeps the first of each id / external id among them). */
  async function write(op: Op, chunk: readonly UsageEvent[]): Promise<readonly UsageEvent[]> {
    switch (op) {
      case 'batch':
        await usage.insertBatch(chunk)
        return chunk
      case 'single':
        for (const e of chunk) await usage.insertIngested(e)
        return chunk
      case 'ledger': {
        // One group commit, a savepoint per move. A repeated event without an external id makes
        // its move throw (an event stored twice is a bug there): that move alone rolls back.
        const results = await Promise.allSettled(
          chunk.map((event) =>
            ledger.commit({
              orgId: event.attribution.orgId,
              atMs: event.atMs,
              event,
              spend: { budgets: [], amountMicros: micros(event.costMicros) },
              dedupeExternalId: true,
            }),
          ),
        )
        return chunk.filter((_, i) => results[i]!.status === 'fulfilled')
      }
      case 'fold':
        usage.foldRollups(1)
        return []
      case 'rolled_back':
        expect(() =>
          usage.transaction(() => {
            for (const e of chunk) usage.insertSync(e)
            throw new Boom()
          })(),
        ).toThrow(Boom)
        return []
      case 'savepoint': {
        // The first half commits; the second half is inserted in a savepoint that rolls back.
        const half = Math.ceil(chunk.length / 2)
        const inner = usage.transaction(() => {
          for (const e of chunk.slice(half)) usage.insertSync(e)
          throw new Boom()
        })
        usage.transaction(() => {
          for (const e of chunk.slice(0, half)) usage.insertSync(e)
          expect(() => inner()).toThrow(Boom)
        })()
        return chunk.slice(0, half)
      }
    }
  }
})
