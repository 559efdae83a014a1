/**
 * Child process for wallet-alert-durability.test.ts: wires a BudgetService with wallet alerts
 * (50% notify, 100% block) on the shared store — a SQLite file, or PostgreSQL + Redis — and
 * spends AMOUNT micros from the team wallet the test funded, through the ledger as a settle
 * does. Modes:
 *   die-after-settle  SIGKILL itself once the settle committed, before any notice work
 *   die-in-context    SIGKILL itself while the notice's context reads usage (the top spenders)
 *   settle            evaluate the settle, print the dedupe keys this process fired, exit 0
 *   recover           spend nothing: run the start-up pass for wallet alerts, print what it fired, exit 0
 */
import { FakeClock } from '../../src/lib/clock.js'
import { micros } from '../../src/money/index.js'
import type { BudgetService, BudgetServiceDeps, BudgetUsageReader, WalletCrossing } from '../../src/budgets/index.js'
import type { LedgerStore } from '../../src/ledger/ledger-store.js'
import { openRedisLedger } from '../../src/store/postgres-redis.js'
import { openNotifyDb, wire, wirePostgres } from './notify-support.js'

const [backend, location, orgId, amountText, atMsText, mode] = process.argv.slice(2)
if (!backend || !location || !orgId || !amountText || !atMsText || !mode) {
  throw new Error('usage: child sqlite|postgres-redis PATH_OR_JSON ORG AMOUNT AT_MS die-after-settle|die-in-context|settle|recover')
}
const clock = new FakeClock(Number(atMsText))
const wallet = { scopeKind: 'team' as const, scopeId: 'team_wallet' }
const walletAlerts = [
  { thresholdPercent: 50, action: 'notify' as const },
  { thresholdPercent: 100, action: 'block' as const },
]

function dieReading(usage: BudgetUsageReader): BudgetUsageReader {
  const die = (): never => {
    process.kill(process.pid, 'SIGKILL')
    throw new Error('unreachable')
  }
  void usage
  return { spendBuckets: die, spendBetween: die, topSpenders: die }
}

const deps = (usage: BudgetUsageReader): Partial<BudgetServiceDeps> => ({
  walletAlerts,
  ...(mode === 'die-in-context' && { usage: dieReading(usage) }),
})

let service: BudgetService
let ledger: LedgerStore
let close: () => Promise<void>
if (backend === 'sqlite') {
  const db = openNotifyDb(location)
  const base = wire(db, clock)
  const wired = wire(db, clock, [], {}, deps(base.budgetStore))
  service = wired.service
  ledger = wired.ledger
  close = async () => {
    db.close()
  }
} else {
  const where = JSON.parse(location) as { postgres: string; redis: string; prefix: string }
  const handle = await openRedisLedger({ postgresUrl: where.postgres, redisUrl: where.redis, keyPrefix: where.prefix })
  const base = wirePostgres(handle.pool, clock)
  service = wirePostgres(handle.pool, clock, [], { ...deps(base.budgetStore), wallets: handle.store }).service
  ledger = handle.store
  close = () => handle.close()
}

/** The settle of a call that spent AMOUNT: what the ledger hands the wallet alerts. */
async function settle(): Promise<WalletCrossing> {
  const amount = micros(Number(amountText))
  const reservationId = `res_${process.pid}_${Date.now()}`
  const reserved = await ledger.reserve({
    reservationId,
    orgId: orgId!,
    cascade: [wallet],
    walletRequired: true,
    walletCapPercent: 100,
    amountMicros: amount,
    budgets: [],
    requestId: undefined,
    atMs: clock.nowMs(),
    expiresAtMs: clock.nowMs() + 60_000,
  })
  if (reserved.kind !== 'reserved') throw new Error(`not reserved: ${reserved.kind}`)
  const settled = await ledger.settle(orgId!, reservationId, amount, clock.nowMs())
  if (settled.kind !== 'settled' || !settled.walletCrossing) throw new Error(`not settled: ${settled.kind}`)
  // As the proxy hands it over: the ledger's report (the spend at the allocation included), with the org.
  return { ...settled.walletCrossing, orgId: orgId!, scope: { kind: wallet.scopeKind, id: wallet.scopeId } }
}

let fired: string[]
if (mode === 'recover') {
  fired = (await service.recoverWalletAlerts()).map((f) => f.dedupeKey)
} else {
  const crossing = await settle()
  if (mode === 'die-after-settle') process.kill(process.pid, 'SIGKILL')
  fired = (await service.onWalletSpendSettled([crossing], { atMs: clock.nowMs() })).map((f) => f.dedupeKey)
}
process.stdout.write(`${JSON.stringify(fired)}\n`)
await close()
process.exit(0)
