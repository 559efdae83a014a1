import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { createInterface } from 'node:readline'
/**
 * Shared fixtures for the budget/notify integration tests and their child processes: one SQLite
 * file with the usage, budget and notify tables, the real adapters, and a BudgetService wired to
 * a real Notifier.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Clock } from '../../src/lib/clock.js'
import type { NotificationChannel } from '../../src/config/types.js'
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite/db.js'
import { usageMigrations } from '../../src/store/sqlite/usage-schema.js'
import { budgetMigrations, SqliteBudgetStore } from '../../src/store/sqlite/budget-store.js'
import { notifyMigrations, SqliteNotifyStore } from '../../src/store/sqlite/notify-store.js'
import { ledgerMigrations, SqliteLedgerStore } from '../../src/store/sqlite/ledger-store.js'
import { SqliteUsageStore } from '../../src/store/sqlite/usage-store.js'
import { BudgetService, type BudgetServiceDeps, type BudgetServiceOptions } from '../../src/budgets/index.js'
import { Notifier } from '../../src/notify/index.js'
import type pg from 'pg'
import { PostgresBudgetStore } from '../../src/store/postgres/budget-store.js'
import { PostgresNotifyStore } from '../../src/store/postgres/notify-store.js'

export function tempDbPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'tollgate-notify-')), 'tollgate.sqlite')
}

export function openNotifyDb(path: string): SqliteDatabase {
  return openSqlite(path, [...ledgerMigrations, ...usageMigrations, ...budgetMigrations, ...notifyMigrations])
}

/** `deps` adds to (or replaces) the BudgetService's dependencies: endpoint tiers, escalation channels. */
export function wire(
  db: SqliteDatabase,
  clock: Clock,
  channels: readonly NotificationChannel[] = [],
  options: Partial<BudgetServiceOptions> = {},
  deps: Partial<BudgetServiceDeps> = {},
) {
  const budgetStore = new SqliteBudgetStore(db)
  const notifyStore = new SqliteNotifyStore(db)
  const notifier = new Notifier({ outbox: notifyStore, preferences: notifyStore, channels, clock })
  const usageStore = new SqliteUsageStore(db)
  const ledger = new SqliteLedgerStore(db, usageStore)
  const service = new BudgetService({
    store: budgetStore,
    usage: budgetStore,
    counters: ledger,
    notifications: notifier,
    clock,
    channelIds: channels.map((c) => c.id),
    wallets: ledger,
    options,
    ...deps,
  })
  return { budgetStore, notifyStore, notifier, service, ledger }
}

/**
 * The same wiring on PostgreSQL (a migrated pool). Period counters live in Redis there, so
 * `counters` records nothing: callers pass crossings to `onSpendSettled` themselves.
 */
export function wirePostgres(pool: pg.Pool, clock: Clock, channels: readonly NotificationChannel[] = [], deps: Partial<BudgetServiceDeps> = {}) {
  const budgetStore = new PostgresBudgetStore(pool)
  const notifyStore = new PostgresNotifyStore(pool)
  const notifier = new Notifier({ outbox: notifyStore, preferences: notifyStore, channels, clock })
  const service = new BudgetService({
    store: budgetStore,
    usage: budgetStore,
    counters: { recordSpend: async () => [], budgetSpend: async () => new Map() },
    notifications: notifier,
    clock,
    channelIds: channels.map((c) => c.id),
    ...deps,
  })
  return { budgetStore, notifyStore, notifier, service }
}

export interface SpendRow {
  atMs: number
  costMicros: number
  orgId?: string
  teamId?: string
  userId?: string
  endpointTag?: string
  model?: string
}

let counter = 0
export function insertSpend(db: SqliteDatabase, row: SpendRow): void {
  counter++
  db.prepare(
    `INSERT INTO usage_events (id, request_id, at_ms, org_id, team_id, user_id, agent_id, key_name, endpoint_tag,
       prompt_version, environment, provider, target_id, model_requested, model_served, endpoint, input_tokens,
       cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, audio_input_tokens, audio_output_tokens,
       usage_source, cost_micros, price_source, latency_ms, status, http_status, is_stream, decision, reservation_id,
       wallet_id, data_mode, source, external_request_id)
     VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?, NULL, 'prod', 'openai', NULL, ?, ?, 'chat_completions', 10, 0, 0, 10, 0, 0, 0,
       'reported', ?, 'test', 5, 'ok', 200, 0, 'allowed', NULL, NULL, 'real', 'gateway', NULL)`,
  ).run(
    `evt_${process.pid}_${counter}`,
    `req_${counter}`,
    row.atMs,
    row.orgId ?? 'org_acme',
    row.teamId ?? 'team_marketing',
    row.userId ?? null,
    row.endpointTag ?? null,
    row.model ?? 'gpt-4o',
    row.model ?? 'gpt-4o',
    row.costMicros,
  )
}

/** A child's stdout line by line: each call resolves with the next line (lines that came early wait). */
export function lineReader(child: ChildProcessWithoutNullStreams): () => Promise<string> {
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return async () => {
    const { value, done } = await lines.next()
    if (done) throw new Error('the child closed its output before the line the test waited for')
    return value
  }
}
