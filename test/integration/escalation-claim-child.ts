/**
 * Child process for escalation-processes.test.ts: opens the shared store (a SQLite file or a
 * PostgreSQL schema), waits for the parent's "go" line, runs many escalator ticks at once and
 * prints the ids of the notices this process escalated as one JSON line.
 */
import { FakeClock } from '../../src/lib/clock.js'
import { Escalator, Notifier, type EscalationStore, type OutboxStore, type PreferenceStore } from '../../src/notify/index.js'
import { SqliteNotifyStore } from '../../src/store/sqlite/notify-store.js'
import { PostgresNotifyStore } from '../../src/store/postgres/notify-store.js'
import { createPool } from '../../src/store/postgres/db.js'
import { openNotifyDb } from './notify-support.js'

const [backend, location, atMsText, roundsText] = process.argv.slice(2)
if (!backend || !location || !atMsText || !roundsText) throw new Error('usage: child sqlite|postgres PATH_OR_URL AT_MS ROUNDS')
const clock = new FakeClock(Number(atMsText))
let close: () => Promise<void>
let store: OutboxStore & PreferenceStore & EscalationStore
if (backend === 'sqlite') {
  const db = openNotifyDb(location)
  store = new SqliteNotifyStore(db)
  close = async () => {
    db.close()
  }
} else {
  const pool = createPool(location)
  store = new PostgresNotifyStore(pool)
  close = () => pool.end()
}
const escalator = new Escalator({ store, sink: new Notifier({ outbox: store, preferences: store, channels: [], clock }), clock })
process.stdout.write('ready\n')
process.stdin.once('data', async () => {
  const ticks = Array.from({ length: Number(roundsText) }, () => escalator.tick())
  const escalated = (await Promise.all(ticks)).flat().map((n) => n.data['escalates'])
  process.stdout.write(`${JSON.stringify(escalated)}\n`)
  await close()
  process.exit(0)
})
