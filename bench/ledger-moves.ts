/**
 * `npx tsx bench/ledger-moves.ts [--batch=28] [--rounds=3000]`: what the SQLite ledger itself costs
 * per enforced call, without HTTP around it. Each round reserves `batch` calls against a team wallet
 * and a budget (one group commit), then settles them with their usage events (a second one), as an
 * enforced gateway does under load (c=64 shares a commit between about 28 moves; --batch=1 is a
 * lone call). Prints the process's CPU per call and the round times.
 * Run it pinned (`taskset -c 0`) and compare runs alternated on one machine: a bench, not a test.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { newId } from '../src/lib/ids.js'
import { micros } from '../src/money/index.js'
import { openSqlite } from '../src/store/sqlite/db.js'
import { sqliteMigrations } from '../src/store/sqlite/index.js'
import { SqliteLedgerStore } from '../src/store/sqlite/ledger-store.js'
import { SqliteUsageStore } from '../src/store/sqlite/usage-store.js'
import { aTeamChatEvent } from '../test/support/usage-data.js'
import { wholeOption } from './args.js'

const batch = wholeOption(process.argv, 'batch', 28, 1)
const rounds = wholeOption(process.argv, 'rounds', 3_000, 1)
const warmUpRounds = Math.ceil(rounds / 10)

const dir = mkdtempSync(join(tmpdir(), 'tollgate-ledger-moves-'))
const db = openSqlite(join(dir, 'tollgate.db'), sqliteMigrations)
const usage = new SqliteUsageStore(db)
const ledger = new SqliteLedgerStore(db, usage)
const team = { scopeKind: 'team', scopeId: 'bench' } as const
await ledger.allocate({ orgId: 'default', wallet: team, amountMicros: micros(1e15), description: undefined, atMs: Date.now() })
const budgets = [{ budgetId: 'bud_bench', periodKey: '2026-12', limitMicros: micros(1e15), periodEndMs: Date.now() + 86_400_000 }]

async function round(): Promise<void> {
  const atMs = Date.now()
  const ids = Array.from({ length: batch }, () => newId('rsv', atMs))
  await Promise.all(
    ids.map((id) =>
      ledger.reserve({
        reservationId: id,
        orgId: 'default',
        cascade: [team],
        walletRequired: true,
        walletCapPercent: 100,
        amountMicros: micros(5_000),
        budgets,
        requestId: id,
        atMs,
        expiresAtMs: atMs + 600_000,
      }),
    ),
  )
  await Promise.all(
    ids.map((id) =>
      ledger.commit({
        orgId: 'default',
        atMs,
        resolve: { reservationId: id, outcome: 'settled', actualMicros: micros(1_234) },
        event: { ...aTeamChatEvent({ id: newId('evt', atMs), requestId: id, atMs, teamId: 'bench', costMicros: 1_234 }), reservationId: id },
      }),
    ),
  )
}

for (let i = 0; i < warmUpRounds; i++) await round()
const cpuBefore = process.cpuUsage()
const times: number[] = []
for (let i = 0; i < rounds; i++) {
  const start = performance.now()
  await round()
  times.push(performance.now() - start)
}
const cpu = process.cpuUsage(cpuBefore)
const calls = rounds * batch
times.sort((a, b) => a - b)
const at = (q: number) => times[Math.min(times.length - 1, Math.floor(times.length * q))]!.toFixed(2)
console.log(
  `${calls} calls in batches of ${batch}: CPU ${((cpu.user + cpu.system) / calls).toFixed(1)} µs per call (user ${(cpu.user / calls).toFixed(1)}, system ${(cpu.system / calls).toFixed(1)})`,
)
console.log(`round ms: p50 ${at(0.5)}, p99 ${at(0.99)}, max ${at(1)}`)
usage.close()
db.close()
rmSync(dir, { recursive: true, force: true })
