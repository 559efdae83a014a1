/**
 * Child process for threshold-notice-durability.test.ts: wires a BudgetService on the shared
 * store (a SQLite file or a PostgreSQL schema) and spends on a budget from BEFORE to AFTER micros.
 * On SQLite the spend goes through the ledger's period counter (as a settle does), on PostgreSQL
 * the crossing is handed over as given (its counters live in Redis). Modes:
 *   die-after-spend  SIGKILL itself once the counter moved, before any notice work (SQLite only)
 *   die-in-context   SIGKILL itself while the notice's context reads usage (the forecast query)
 *   settle           evaluate the spend, print the dedupe keys this process fired, exit 0
 *   recover          spend nothing: run the start-up recovery pass, print what it fired, exit 0
 */
import { FakeClock } from '../../src/lib/clock.js'
import { micros, type Micros } from '../../src/money/index.js'
import { counterRefOf } from '../../src/budgets/budget.js'
import { periodOf, type BudgetCrossing, type BudgetServiceDeps, type BudgetUsageReader } from '../../src/budgets/index.js'
import { createPool } from '../../src/store/postgres/db.js'
import { openNotifyDb, wire, wirePostgres } from './notify-support.js'

const [backend, location, orgId, budgetId, atMsText, beforeText, afterText, mode] = process.argv.slice(2)
if (!backend || !location || !orgId || !budgetId || !atMsText || !beforeText || !afterText || !mode) {
  throw new Error('usage: child sqlite|postgres PATH_OR_URL ORG BUDGET_ID AT_MS BEFORE AFTER die-after-spend|die-in-context|settle')
}
const clock = new FakeClock(Number(atMsText))
const before = micros(Number(beforeText))
const after = micros(Number(afterText))

function dieReading(usage: BudgetUsageReader): BudgetUsageReader {
  const die = (): never => {
    process.kill(process.pid, 'SIGKILL')
    throw new Error('unreachable')
  }
  void usage
  return { spendBuckets: die, spendBetween: die, topSpenders: die }
}

const deps = (usage: BudgetUsageReader): Partial<BudgetServiceDeps> => (mode === 'die-in-context' ? { usage: dieReading(usage) } : {})

let crossings: readonly BudgetCrossing[]
let evaluate: (crossings: readonly BudgetCrossing[]) => Promise<string[]>
let close: () => Promise<void>
if (backend === 'sqlite') {
  const db = openNotifyDb(location)
  const base = wire(db, clock)
  const { service, ledger, budgetStore } = wire(db, clock, [], {}, deps(base.budgetStore))
  await service.refresh()
  const budget = await budgetStore.getBudget(orgId, budgetId)
  if (!budget) throw new Error(`no budget ${budgetId}`)
  crossings =
    mode === 'recover'
      ? []
      : await ledger.recordSpend(orgId, [counterRefOf(budget, periodOf(budget.period, budget.timezone, clock.nowMs()))], micros(after - before) as Micros)
  // Restarted processes spend at once: only the first one's counter starts at BEFORE.
  if (mode !== 'settle' && mode !== 'recover' && crossings[0]?.spentBeforeMicros !== before)
    throw new Error(`counter was at ${crossings[0]?.spentBeforeMicros}, expected ${before}`)
  evaluate = async (c) =>
    (mode === 'recover' ? await service.recoverThresholds() : await service.onSpendSettled(c, { atMs: clock.nowMs() })).map((f) => f.dedupeKey)
  close = async () => {
    db.close()
  }
} else {
  const pool = createPool(location)
  const base = wirePostgres(pool, clock)
  const { service } = wirePostgres(pool, clock, [], deps(base.budgetStore))
  await service.refresh()
  const budget = await base.budgetStore.getBudget(orgId, budgetId)
  if (!budget) throw new Error(`no budget ${budgetId}`)
  const periodKey = periodOf(budget.period, budget.timezone, clock.nowMs()).key
  crossings = [{ budgetId, periodKey, spentBeforeMicros: before, spentAfterMicros: after }]
  evaluate = async (c) => (await service.onSpendSettled(c, { atMs: clock.nowMs() })).map((f) => f.dedupeKey)
  close = () => pool.end()
}

if (mode === 'die-after-spend') process.kill(process.pid, 'SIGKILL')
const fired = await evaluate(crossings)
process.stdout.write(`${JSON.stringify(fired)}\n`)
await close()
process.exit(0)
