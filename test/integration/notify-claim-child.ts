/**
 * Child process for notify-claim-processes.test.ts: opens the shared SQLite file, wires a
 * BudgetService, waits for the parent's "go" line, then settles the same crossings many times
 * concurrently and prints what this process fired as one JSON line.
 */
import { FakeClock } from '../../src/lib/clock.js'
import { micros } from '../../src/money/index.js'
import { openNotifyDb, wire } from './notify-support.js'

const [path, budgetId, atMsText, roundsText] = process.argv.slice(2)
if (!path || !budgetId || !atMsText || !roundsText) throw new Error('usage: child PATH BUDGET_ID AT_MS ROUNDS')
const clock = new FakeClock(Number(atMsText))
const db = openNotifyDb(path)
const { service } = wire(db, clock, [{ id: 'ops-webhook', type: 'webhook', url: 'http://127.0.0.1:9/', secret: 's' }])
await service.refresh()
process.stdout.write('ready\n')
process.stdin.once('data', async () => {
  const rounds = Number(roundsText)
  const settles = Array.from({ length: rounds }, () =>
    service.onSpendSettled([{ budgetId, periodKey: '2026-11', spentBeforeMicros: micros(10_000_000), spentAfterMicros: micros(100_000_000) }], {
      atMs: clock.nowMs(),
    }),
  )
  const fired = (await Promise.all(settles)).flat().map((f) => f.dedupeKey)
  process.stdout.write(`${JSON.stringify(fired)}\n`)
  db.close()
  process.exit(0)
})
