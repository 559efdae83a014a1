/**
 * Child process for usage-rollups-processes.test.ts: opens the shared store (a SQLite file, or a
 * PostgreSQL schema), prints "ready", waits for the parent's "go" line, then writes its share of
 * the events in small batches as fast as it can and prints "done".
 */
import { createPool } from '../../src/store/postgres/db.js'
import { PostgresUsageStore } from '../../src/store/postgres/usage-store.js'
import { openSqlite } from '../../src/store/sqlite/db.js'
import { SqliteUsageStore, usageMigrations } from '../../src/store/sqlite/usage-store.js'
import { processEvents } from './usage-rollups-support.js'

const [backend, where, workerText, workersText] = process.argv.slice(2)
if (!backend || !where || !workerText || !workersText) throw new Error('usage: child sqlite|postgres PATH_OR_URL WORKER WORKERS')
const pool = backend === 'postgres' ? createPool(where) : undefined
const db = backend === 'sqlite' ? openSqlite(where, usageMigrations) : undefined
// SQLite: small fold chunks, folded between batches, so the processes' folds interleave with one
// another's inserts and folds.
const sqliteStore = db ? new SqliteUsageStore(db, { foldChunkEvents: 40 }) : undefined
const store = pool ? new PostgresUsageStore(pool) : sqliteStore!
const mine = processEvents().filter((_, i) => i % Number(workersText) === Number(workerText))
process.stdout.write('ready\n')
process.stdin.once('data', async () => {
  const batches: (typeof mine)[] = []
  for (let i = 0; i < mine.length; i += 25) batches.push(mine.slice(i, i + 25))
  // Two batches in flight per process on PostgreSQL (its pool has several connections).
  const lanes = pool ? 2 : 1
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let b = lane; b < batches.length; b += lanes) {
        await store.insertBatch(batches[b]!)
        if (b % 3 === 0) sqliteStore?.foldRollups(1)
      }
    }),
  )
  await pool?.end()
  sqliteStore?.close()
  db?.close()
  process.stdout.write('done\n')
  process.exit(0)
})
