/**
 * A budget threshold or wallet alert notice lost by a crash is written when a gateway starts,
 * even if the budget or wallet sees no more spend. What a process killed between its settle's
 * commit and the notice leaves behind is a counter (or a wallet) past the mark with no firing
 * mark and no notice: here one gateway moves it through its ledger (as that settle did) and
 * closes without evaluating it, then the next gateway on the same store starts. A wallet alert a
 * top-up jumped over (spend past its mark at the new total before any settle crossed it) is not
 * one of them, and no start writes it. On SQLite and on Redis + PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../../src/app.js'
import { counterRefOf } from '../../src/budgets/budget.js'
import { periodOf } from '../../src/budgets/index.js'
import { parseConfig } from '../../src/config/index.js'
import { micros } from '../../src/money/index.js'
import type { WalletRef } from '../../src/ledger/types.js'
import { createLogger } from '../../src/observability/logger.js'
import { describeWithBoth } from '../support/services.js'

const ADMIN = 'tg_admin_threshold_recovery_0123456789'
const ORG = 'default'
const WAIT_MS = 10_000

function yamlOf(storage: Record<string, unknown>): string {
  return stringify({
    version: '1',
    storage,
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    budgets: [{ name: 'quiet team daily', scope: { kind: 'team', id: 'team_quiet' }, period: 'daily', amount_usd: 1, alert_thresholds: [50, 80] }],
    cost_tracking: {
      budget_alerts: [
        { threshold_percent: 50, action: 'notify' },
        { threshold_percent: 100, action: 'block' },
      ],
    },
  })
}

async function started(yaml: string, env: Record<string, string>): Promise<App> {
  const all = { ...env, TOLLGATE_ADMIN_TOKEN: ADMIN }
  const app = await buildApp(parseConfig(yaml, '<threshold-recovery>', { env: all }), { env: all, logger: createLogger({ level: 'silent' }) })
  await app.start()
  return app
}

async function notices(app: App, type: string): Promise<Array<{ data: Record<string, unknown> }>> {
  const response = await app.fastify.inject({ method: 'GET', url: '/v1/notifications?limit=100', headers: { authorization: `Bearer ${ADMIN}` } })
  expect(response.statusCode).toBe(200)
  return (response.json().data as Array<{ type: string; data: Record<string, unknown> }>).filter((n) => n.type === type)
}

const thresholdNotices = (app: App) => notices(app, 'budget.threshold')

/** The wallet's notices of one type. */
const walletNotices = async (app: App, type: string, walletId: string) => (await notices(app, type)).filter((n) => n.data['wallet_id'] === walletId)

/** Each test's own wallet (the tests of a backend share its store). */
const teamWallet = (scopeId: string) => ({ scopeKind: 'team' as const, scopeId })

/** Spends `amountMicros` from the wallet through the gateway's ledger, as a settle does; nothing evaluates it. */
async function spendUnannounced(app: App, wallet: WalletRef, amountMicros: number): Promise<void> {
  const atMs = Date.now()
  const reservationId = `res_recovery_${atMs}_${Math.random().toString(36).slice(2)}`
  const reserved = await app.stores.ledger.reserve({
    reservationId,
    orgId: ORG,
    cascade: [wallet],
    walletRequired: true,
    walletCapPercent: 100,
    amountMicros: micros(amountMicros),
    budgets: [],
    requestId: undefined,
    atMs,
    expiresAtMs: atMs + 60_000,
  })
  expect(reserved.kind).toBe('reserved')
  expect((await app.stores.ledger.settle(ORG, reservationId, micros(amountMicros), atMs)).kind).toBe('settled')
}

async function allocate(app: App, wallet: WalletRef, amountMicros: number) {
  return app.stores.ledger.allocate({ orgId: ORG, wallet, amountMicros: micros(amountMicros), description: undefined, atMs: Date.now() })
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const value = await read()
    if (done(value) || Date.now() > deadline) return value
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function recovery(storage: () => Record<string, unknown>, env: () => Record<string, string>) {
  it('the next start writes the notice of a threshold whose spend committed but whose notice was lost, once', async () => {
    const yaml = yamlOf(storage())
    // The process that "died": its settle moved the counter to $0.60 of $1, no notice followed.
    const first = await started(yaml, env())
    const [budget] = await first.budgets.list(ORG)
    const counter = counterRefOf(budget!, periodOf(budget!.period, budget!.timezone, Date.now()))
    await first.stores.ledger.recordSpend(ORG, [counter], micros(600_000))
    expect(await thresholdNotices(first)).toEqual([])
    await first.close()

    const second = await started(yaml, env())
    try {
      const notices = await eventually(
        () => thresholdNotices(second),
        (n) => n.length > 0,
      )
      expect(notices.map((n) => n.data)).toEqual([expect.objectContaining({ budget_name: 'quiet team daily', threshold_percent: 50, spend_usd: 0.6 })])
    } finally {
      await second.close()
    }

    // Every later start finds the mark: still one notice.
    const third = await started(yaml, env())
    try {
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await thresholdNotices(third)).toHaveLength(1)
    } finally {
      await third.close()
    }
  }, 60_000)

  it('the next start writes the wallet alert of a settle that committed without its notice, once, with two gateways starting at once', async () => {
    const yaml = yamlOf(storage())
    // The process that "died": its settle took the wallet to $0.70 of $1, no notice followed.
    const first = await started(yaml, env())
    const wallet = teamWallet('team_lost_alert')
    const { id } = await allocate(first, wallet, 1_000_000)
    await spendUnannounced(first, wallet, 700_000)
    expect(await walletNotices(first, 'wallet.threshold', id)).toEqual([])
    await first.close()

    const [second, third] = await Promise.all([started(yaml, env()), started(yaml, env())])
    try {
      const written = await eventually(
        () => walletNotices(second, 'wallet.threshold', id),
        (n) => n.length > 0,
      )
      expect(written.map((n) => n.data)).toEqual([expect.objectContaining({ threshold_percent: 50, spend_usd: 0.7, amount_usd: 1 })])
      // Not exhausted: no block notice. And the other start wrote nothing more.
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await walletNotices(third, 'wallet.threshold', id)).toHaveLength(1)
      expect(await walletNotices(third, 'wallet.exhausted', id)).toEqual([])
    } finally {
      await Promise.all([second.close(), third.close()])
    }
    const fourth = await started(yaml, env())
    try {
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await walletNotices(fourth, 'wallet.threshold', id)).toHaveLength(1)
    } finally {
      await fourth.close()
    }
  }, 60_000)

  it('a start writes no wallet alert that a top-up jumped over, and still writes one crossed after it', async () => {
    const yaml = yamlOf(storage())
    const first = await started(yaml, env())
    const wallet = teamWallet('team_topped_up')
    // $0.80 of $1, and its 50% notice lost: the next start writes it.
    const { id } = await allocate(first, wallet, 1_000_000)
    await spendUnannounced(first, wallet, 800_000)
    await first.close()
    const second = await started(yaml, env())
    try {
      await eventually(
        () => walletNotices(second, 'wallet.threshold', id),
        (n) => n.length > 0,
      )
      // Topped up to $1.50 at $0.80 spent: its 50% ($0.75) was passed before, by no settle since.
      expect(await allocate(second, wallet, 500_000)).toMatchObject({ allocatedMicros: 1_500_000, spentAtAllocationMicros: 800_000 })
      await spendUnannounced(second, wallet, 50_000)
    } finally {
      await second.close()
    }
    const third = await started(yaml, env())
    try {
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect((await walletNotices(third, 'wallet.threshold', id)).map((n) => n.data)).toEqual([
        expect.objectContaining({ threshold_percent: 50, amount_usd: 1 }),
      ])
      // $0.85 → $1.50 crosses the block alert (100%) of the new total; that notice is lost too.
      await spendUnannounced(third, wallet, 650_000)
    } finally {
      await third.close()
    }
    const fourth = await started(yaml, env())
    try {
      const exhausted = await eventually(
        () => walletNotices(fourth, 'wallet.exhausted', id),
        (n) => n.length > 0,
      )
      expect(exhausted.map((n) => n.data)).toEqual([expect.objectContaining({ threshold_percent: 100, spend_usd: 1.5, amount_usd: 1.5 })])
      expect(await walletNotices(fourth, 'wallet.threshold', id)).toHaveLength(1)
    } finally {
      await fourth.close()
    }
  }, 60_000)
}

describe('threshold notices lost by a crash are written at the next start (SQLite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-threshold-recovery-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  recovery(
    () => ({ sqlite: join(dir, 'tollgate.sqlite') }),
    () => ({}),
  )
})

describeWithBoth('threshold notices lost by a crash are written at the next start (Redis + PostgreSQL)', (ctx) => {
  recovery(
    () => ({ postgres: ctx.postgres.url, redis: ctx.redis.url }),
    () => ({ TOLLGATE_REDIS_PREFIX: ctx.redis.prefix }),
  )
})
