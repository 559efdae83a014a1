/**
 * A threshold notice is delivered at least once and fired exactly once per period, whatever
 * fails and whenever a process dies. The firing mark and the notice are written in one
 * transaction, and every settle looks at the thresholds the spend has reached (not only the ones
 * it crossed), so a notice lost before that commit goes out with the budget's next spend.
 * Method, on SQLite and on PostgreSQL: make writing the notice fail, make its context fail, and
 * SIGKILL a child process after its spend moved the counter and while it computes the notice's
 * context; then check the marks and notices left, and that later settles (two processes at once
 * after a kill) write exactly one notice.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../../src/lib/clock.js'
import { micros } from '../../src/money/index.js'
import { budgetCreateBodySchema, type BudgetService, type BudgetServiceDeps, type BudgetUsageReader } from '../../src/budgets/index.js'
import type { InboxStore, NotificationSink } from '../../src/notify/index.js'
import { createPool, migrate } from '../../src/store/postgres/db.js'
import { describeWithPostgres } from '../support/services.js'
import { openNotifyDb, tempDbPath, wire, wirePostgres } from './notify-support.js'

const CHILD = fileURLToPath(new URL('./threshold-kill-child.ts', import.meta.url))
const ORG = 'org_acme'
const AT_MS = Date.UTC(2026, 10, 15, 12)
const PERIOD = '2026-11-15'
const usd = (value: number) => micros(Math.round(value * 1_000_000))

interface Backend {
  readonly name: 'sqlite' | 'postgres'
  /** Where a child process opens the same store. */
  readonly location: string
  wire(deps?: Partial<BudgetServiceDeps>): { service: BudgetService; notifier: NotificationSink; usage: BudgetUsageReader; inbox: InboxStore }
  /** Marks and notices of a budget: `fired_thresholds` rows and budget.threshold notifications. */
  counts(budgetId: string): Promise<{ marks: number; notices: number }>
}

/** The reviewer's budget: $1 a day, notify at 50%. */
async function aDailyBudget(service: BudgetService, name: string) {
  return service.create(
    ORG,
    budgetCreateBodySchema.parse({
      name,
      scope: { kind: 'team', id: 'team_marketing' },
      period: 'daily',
      timezone: 'UTC',
      amount_usd: 1,
      alert_thresholds: [50],
    }),
  )
}

const crossing = (budgetId: string, before: number, after: number) => ({
  budgetId,
  periodKey: PERIOD,
  spentBeforeMicros: usd(before),
  spentAfterMicros: usd(after),
})

function thresholdKeys(fired: readonly { dedupeKey: string; type: string }[]): string[] {
  return fired.filter((f) => f.type === 'budget.threshold').map((f) => f.dedupeKey)
}

function failures(backend: () => Backend) {
  it('a notice that cannot be written leaves no mark, and the next settle fires it once', async () => {
    const b = backend()
    const errors: unknown[] = []
    let failNext = true
    const base = b.wire()
    const flaky: NotificationSink = {
      emit: (n, c) => base.notifier.emit(n, c),
      emitOnce: async (n, c, mark) => {
        if (failNext) {
          failNext = false
          throw new Error('notify store unavailable')
        }
        return base.notifier.emitOnce(n, c, mark)
      },
    }
    const { service } = b.wire({ notifications: flaky, onError: (error) => errors.push(error) })
    const budget = await aDailyBudget(service, 'flaky notify')

    expect(thresholdKeys(await service.onSpendSettled([crossing(budget.id, 0, 1.5)], { atMs: AT_MS }))).toEqual([])
    expect(String(errors[0])).toMatch(/notify store unavailable/)
    expect(await b.counts(budget.id)).toEqual({ marks: 0, notices: 0 })

    // The next spend crosses nothing, but the 50% mark is reached and unmarked: it fires now.
    expect(thresholdKeys(await service.onSpendSettled([crossing(budget.id, 1.5, 1.6)], { atMs: AT_MS }))).toEqual([`v1:${budget.id}:${PERIOD}:50`])
    expect(await service.onSpendSettled([crossing(budget.id, 1.6, 1.7)], { atMs: AT_MS })).toEqual([])
    // Another process, which has not seen it fire, reads the mark and fires nothing.
    const other = b.wire()
    await other.service.refresh()
    expect(await other.service.onSpendSettled([crossing(budget.id, 1.7, 1.8)], { atMs: AT_MS })).toEqual([])
    expect(await b.counts(budget.id)).toEqual({ marks: 1, notices: 1 })
  })

  it('a notice whose context cannot be computed goes out without it', async () => {
    const b = backend()
    const errors: unknown[] = []
    const usage = b.wire().usage
    const broken: BudgetUsageReader = {
      spendBetween: (...args) => usage.spendBetween(...args),
      // What the reviewer hit: a usage sum too large for the forecast's safe-integer check.
      spendBuckets: async () => {
        throw new Error('assertion failed: forecast bucket: 9007199254740994')
      },
      topSpenders: async () => {
        throw new Error('usage query failed')
      },
    }
    const { service } = b.wire({ usage: broken, onError: (error) => errors.push(error) })
    const budget = await aDailyBudget(service, 'broken context')

    const fired = await service.onSpendSettled([crossing(budget.id, 0.4, 1.5)], { atMs: AT_MS })
    expect(thresholdKeys(fired)).toEqual([`v1:${budget.id}:${PERIOD}:50`])
    expect(errors.map(String).join('\n')).toMatch(/forecast bucket/)
    const notice = fired.find((f) => f.type === 'budget.threshold')!
    const inbox = await b.wire().inbox.listInbox(ORG, { unreadOnly: false, limit: 10, beforeId: undefined, teamId: undefined })
    const data = inbox.find((e) => e.notification.id === notice.notificationId)!.notification.data
    expect(data).toMatchObject({
      threshold_percent: 50,
      spend_usd: 1.5,
      amount_usd: 1,
      forecast_exhaustion_at: null,
      top: { endpoints: [], users: [], models: [] },
    })
    expect(data['period_start']).toBe('2026-11-15T00:00:00.000Z')
    expect(await b.counts(budget.id)).toEqual({ marks: 1, notices: 1 })
  })
}

interface ChildRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

function runChild(b: Backend, budgetId: string, before: number, after: number, mode: string): Promise<ChildRun> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CHILD, b.name, b.location, ORG, budgetId, String(AT_MS), String(usd(before)), String(usd(after)), mode],
    { cwd: fileURLToPath(new URL('../../', import.meta.url)), stdio: 'pipe' },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })))
}

function kills(backend: () => Backend, modes: readonly string[]) {
  for (const mode of modes) {
    it(`a process SIGKILLed ${mode === 'die-after-spend' ? 'after its spend moved the counter' : 'while computing the notice'} leaves no mark; after restart exactly one notice goes out`, async () => {
      const b = backend()
      const { service } = b.wire()
      const budget = await aDailyBudget(service, `killed ${mode}`)

      const killed = await runChild(b, budget.id, 0, 1.5, mode)
      expect(killed.signal, killed.stderr).toBe('SIGKILL')
      expect(await b.counts(budget.id)).toEqual({ marks: 0, notices: 0 })

      // Restart: two processes spend a little more at once. The first to look fires the notice.
      const restarted = await Promise.all([runChild(b, budget.id, 1.5, 1.6, 'settle'), runChild(b, budget.id, 1.5, 1.6, 'settle')])
      for (const run of restarted) expect(run.code, run.stderr).toBe(0)
      const keys = restarted.flatMap((run) => JSON.parse(run.stdout) as string[]).filter((key) => /:\d+$/.test(key))
      expect(keys).toEqual([`v1:${budget.id}:${PERIOD}:50`])
      expect(await b.counts(budget.id)).toEqual({ marks: 1, notices: 1 })
    }, 60_000)
  }
}

function recovers(backend: () => Backend) {
  it('a process SIGKILLed after its spend moved the counter: with no more spend, the next start writes exactly one notice', async () => {
    const b = backend()
    const { service } = b.wire()
    const budget = await aDailyBudget(service, 'killed, then quiet')

    const killed = await runChild(b, budget.id, 0, 1.5, 'die-after-spend')
    expect(killed.signal, killed.stderr).toBe('SIGKILL')
    expect(await b.counts(budget.id)).toEqual({ marks: 0, notices: 0 })

    // Nobody spends on the budget again. Two processes start at once; one of them writes the notice.
    const started = await Promise.all([runChild(b, budget.id, 0, 0, 'recover'), runChild(b, budget.id, 0, 0, 'recover')])
    for (const run of started) expect(run.code, run.stderr).toBe(0)
    const keys = started.flatMap((run) => JSON.parse(run.stdout) as string[]).filter((key) => /:\d+$/.test(key))
    expect(keys).toEqual([`v1:${budget.id}:${PERIOD}:50`])
    expect(await b.counts(budget.id)).toEqual({ marks: 1, notices: 1 })
    // A later start finds the mark and writes nothing.
    const again = await runChild(b, budget.id, 0, 0, 'recover')
    expect(JSON.parse(again.stdout)).toEqual([])
    expect(await b.counts(budget.id)).toEqual({ marks: 1, notices: 1 })
  }, 60_000)
}

describe('threshold notices survive failures and kills (SQLite)', () => {
  const path = tempDbPath()
  const db = openNotifyDb(path)
  const clock = new FakeClock(AT_MS)
  const backend = (): Backend => ({
    name: 'sqlite',
    location: path,
    wire: (deps = {}) => {
      const w = wire(db, clock, [], {}, deps)
      return { service: w.service, notifier: w.notifier, usage: w.budgetStore, inbox: w.notifyStore }
    },
    counts: async (budgetId) => ({
      marks: (db.prepare('SELECT COUNT(*) AS n FROM fired_thresholds WHERE subject_id = ?').get(budgetId) as { n: number }).n,
      notices: (
        db.prepare("SELECT COUNT(*) AS n FROM notifications WHERE type = 'budget.threshold' AND json_extract(data_json, '$.budget_id') = ?").get(budgetId) as {
          n: number
        }
      ).n,
    }),
  })
  failures(backend)
  // On SQLite the child's spend moves the ledger's counter, so a restart sees a real counter past the mark.
  kills(backend, ['die-after-spend', 'die-in-context'])
  recovers(backend)
})

describeWithPostgres('threshold notices survive failures and kills (PostgreSQL)', (ctx) => {
  const clock = new FakeClock(AT_MS)
  let pool: ReturnType<typeof createPool> | undefined
  const poolOf = () => {
    pool ??= createPool(ctx.postgres.url)
    return pool
  }
  const backend = (): Backend => ({
    name: 'postgres',
    location: ctx.postgres.url,
    wire: (deps = {}) => {
      const w = wirePostgres(poolOf(), clock, [], deps)
      return { service: w.service, notifier: w.notifier, usage: w.budgetStore, inbox: w.notifyStore }
    },
    counts: async (budgetId) => {
      const { rows } = await poolOf().query<{ marks: string; notices: string }>(
        `SELECT (SELECT COUNT(*) FROM fired_thresholds WHERE subject_id = $1) AS marks,
                (SELECT COUNT(*) FROM notifications WHERE type = 'budget.threshold' AND data_json::jsonb ->> 'budget_id' = $1) AS notices`,
        [budgetId],
      )
      return { marks: Number(rows[0]!.marks), notices: Number(rows[0]!.notices) }
    },
  })
  it('migrates', async () => {
    await migrate(poolOf())
  })
  failures(backend)
  kills(backend, ['die-in-context'])
  it('closes', async () => {
    await pool?.end()
  })
})
