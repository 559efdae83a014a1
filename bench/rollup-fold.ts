/**
 * `npx tsx bench/rollup-fold.ts [--events=N]`: what a call's usage commit costs on a SQLite store
 * with history, with its rollups folded later (what the store does) against folded in the same
 * transaction (what it did before usage-0007). The store gets N events (default 200,000) spread
 * over 30 days, 5 teams, 200 users, 20 agents, 30 endpoints, 10 prompt versions and 12 models; then
 * one-event transactions are timed both ways, alternated in rounds. "Later" includes the fold's
 * own cost, one fold per 1,000 events (a busy second). A bench, not a test: figures on a shared
 * machine are not assertions.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openSqlite } from '../src/store/sqlite/db.js'
import { SqliteUsageStore, usageMigrations } from '../src/store/sqlite/usage-store.js'
import type { UsageEvent } from '../src/usage/types.js'
import { usageEvent } from '../test/support/usage-events.js'
import { wholeOption } from './args.js'
import { median } from './report.js'

const DAY_MS = 86_400_000
const ROUNDS = 7
const PER_ROUND = 1_000

const history = wholeOption(process.argv, 'events', 200_000, 1)
const dir = mkdtempSync(join(tmpdir(), 'tollgate-rollup-fold-'))
const db = openSqlite(join(dir, 'usage.sqlite'), usageMigrations)
// Folded by hand below: no background fold in the middle of a timing.
const store = new SqliteUsageStore(db, { foldDelayMs: 3_600_000 })

let seq = 0
const pick = (n: number) => Math.floor(Math.random() * n)
function event(atMs: number): UsageEvent {
  return usageEvent({
    id: `evt_fold_${seq++}`,
    atMs,
    teamId: `team_${pick(5)}`,
    userId: `user_${pick(200)}`,
    agentId: `agent_${pick(20)}`,
    endpointTag: `/endpoint/${pick(30)}`,
    promptVersion: `v${pick(10)}`,
    model: `model-${pick(12)}`,
  })
}

const nowMs = Date.now()
process.stderr.write(`rollup-fold: writing ${history.toLocaleString('en')} events of history … `)
for (let written = 0; written < history; written += 1_000) {
  await store.insertBatch(Array.from({ length: Math.min(1_000, history - written) }, () => event(nowMs - pick(30 * DAY_MS))))
}
store.foldRollups()
process.stderr.write('done\n')

const insertOne = store.transaction((e: UsageEvent) => store.insertSync(e))
// The former way: the event's rollups written in its own transaction (a nested fold is a savepoint).
const insertAndFold = store.transaction((e: UsageEvent) => {
  store.insertSync(e)
  store.foldRollups()
})

/** µs per event over PER_ROUND one-event transactions. */
function timed(run: () => void): number {
  const start = process.hrtime.bigint()
  run()
  return Number(process.hrtime.bigint() - start) / 1_000 / PER_ROUND
}
const later = (): void => {
  for (let i = 0; i < PER_ROUND; i++) insertOne.immediate(event(Date.now()))
  store.foldRollups()
}
const inCommit = (): void => {
  for (let i = 0; i < PER_ROUND; i++) insertAndFold.immediate(event(Date.now()))
}

timed(later)
timed(inCommit)
const results = { later: [] as number[], inCommit: [] as number[] }
for (let round = 0; round < ROUNDS; round++) {
  // The order flips every round, so drift falls on both alike.
  if (round % 2 === 0) {
    results.later.push(timed(later))
    results.inCommit.push(timed(inCommit))
  } else {
    results.inCommit.push(timed(inCommit))
    results.later.push(timed(later))
  }
}
const pages = db.pragma('page_count', { simple: true }) as number
process.stdout.write(
  `### One-event usage commit on a SQLite store of ${history.toLocaleString('en')} events (${pages.toLocaleString('en')} pages), median of ${ROUNDS} rounds of ${PER_ROUND}

| rollups | µs per event | each round |
| --- | --: | --- |
| folded later (now; the fold's cost included) | ${median(results.later).toFixed(0)} | ${results.later.map((v) => v.toFixed(0)).join(' ')} |
| folded in the event's own transaction (before) | ${median(results.inCommit).toFixed(0)} | ${results.inCommit.map((v) => v.toFixed(0)).join(' ')} |
`,
)
store.close()
db.close()
rmSync(dir, { recursive: true, force: true })
