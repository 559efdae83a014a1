/**
 * A wallet alert notice is not lost when a process dies between a settle's commit and the
 * notice, and one a top-up jumped over is never sent. Each allocation records the wallet's spend
 * at it; every settle, and every start, fires the alerts reached since then whose mark is
 * missing (the mark is written with the notice, so one process writes it).
 * Method, on SQLite and on PostgreSQL + Redis: a child process funds nothing and spends from a
 * wallet the test funded, and SIGKILLs itself after its settle committed or while it computes
 * the notice's context; then restarted children (two at once) settle a little more, or only start
 * (the start-up pass), and the marks and notices left are counted.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { FakeClock } from '../../src/lib/clock.js'
import { newId } from '../../src/lib/ids.js'
import { micros } from '../../src/money/index.js'
import type { LedgerStore } from '../../src/ledger/ledger-store.js'
import { migratePostgres, openRedisLedger, type RedisLedgerHandle } from '../../src/store/postgres-redis.js'
import { describeWithBoth } from '../support/services.js'
import { openNotifyDb, tempDbPath, wire } from './notify-support.js'

const CHILD = fileURLToPath(new URL('./wallet-alert-kill-child.ts', import.meta.url))
const AT_MS = Date.UTC(2026, 10, 15, 12)
const WALLET = { scopeKind: 'team' as const, scopeId: 'team_wallet' }
const usd = (value: number) => Math.round(value * 1_000_000)

interface Backend {
  readonly name: 'sqlite' | 'postgres-redis'
  /** Where a child process opens the same store. */
  readonly location: string
  ledger(): Promise<LedgerStore>
  /** Firing marks and wallet notices of a wallet. */
  counts(walletId: string): Promise<{ marks: number; notices: number }>
}

interface ChildRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

function runChild(b: Backend, orgId: string, amountUsd: number, mode: string): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, b.name, b.location, orgId, String(usd(amountUsd)), String(AT_MS), mode], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    stdio: 'pipe',
  })
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

/** Two children at once; the dedupe keys they fired, together. */
async function twoAtOnce(b: Backend, orgId: string, amountUsd: number, mode: string): Promise<string[]> {
  const runs = await Promise.all([runChild(b, orgId, amountUsd, mode), runChild(b, orgId, amountUsd, mode)])
  for (const run of runs) expect(run.code, run.stderr).toBe(0)
  return runs.flatMap((run) => JSON.parse(run.stdout) as string[])
}

/** A fresh org whose team wallet holds `amountUsd`. */
async function funded(b: Backend, amountUsd: number): Promise<{ orgId: string; walletId: string }> {
  const orgId = `org_${newId('req').slice(4)}`
  const wallet = await (await b.ledger()).allocate({ orgId, wallet: WALLET, amountMicros: micros(usd(amountUsd)), description: undefined, atMs: AT_MS })
  return { orgId, walletId: wallet.id }
}

function kills(backend: () => Backend, modes: readonly string[]) {
  for (const mode of modes) {
    it(`a process SIGKILLed ${mode === 'die-after-settle' ? 'after its settle committed' : 'while computing the notice'} leaves no mark; the next settle, in one of two processes at once, writes exactly one notice`, async () => {
      const b = backend()
      const { orgId, walletId } = await funded(b, 1)

      const killed = await runChild(b, orgId, 0.6, mode)
      expect(killed.signal, killed.stderr).toBe('SIGKILL')
      expect(await b.counts(walletId)).toEqual({ marks: 0, notices: 0 })

      // Restart: two processes settle a little more at once. Neither crosses 50%; one writes it.
      expect(await twoAtOnce(b, orgId, 0.05, 'settle')).toEqual([`v1:${walletId}:alloc-1000000:50`])
      expect(await b.counts(walletId)).toEqual({ marks: 1, notices: 1 })
    }, 60_000)
  }
}

function recovers(backend: () => Backend) {
  it('a process SIGKILLed after its settle committed: with no more spend, two processes starting at once write exactly one notice', async () => {
    const b = backend()
    const { orgId, walletId } = await funded(b, 1)

    const killed = await runChild(b, orgId, 0.6, 'die-after-settle')
    expect(killed.signal, killed.stderr).toBe('SIGKILL')
    expect(await b.counts(walletId)).toEqual({ marks: 0, notices: 0 })

    expect(await twoAtOnce(b, orgId, 0, 'recover')).toEqual([`v1:${walletId}:alloc-1000000:50`])
    expect(await b.counts(walletId)).toEqual({ marks: 1, notices: 1 })
    // A later start finds the mark and writes nothing.
    const again = await runChild(b, orgId, 0, 'recover')
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toEqual([])
    expect(await b.counts(walletId)).toEqual({ marks: 1, notices: 1 })
  }, 60_000)

  it('a process SIGKILLed after a settle that followed a top-up: no start writes the alert the top-up jumped over', async () => {
    const b = backend()
    const { orgId, walletId } = await funded(b, 1)
    // $0.80 of $1: the 50% notice goes out.
    const first = await runChild(b, orgId, 0.8, 'settle')
    expect(JSON.parse(first.stdout), first.stderr).toEqual([`v1:${walletId}:alloc-1000000:50`])
    // Topped up to $1.50 at $0.80 spent: its 50% mark ($0.75) is already behind.
    await (await b.ledger()).allocate({ orgId, wallet: WALLET, amountMicros: micros(usd(0.5)), description: undefined, atMs: AT_MS })
    const killed = await runChild(b, orgId, 0.1, 'die-after-settle')
    expect(killed.signal, killed.stderr).toBe('SIGKILL')

    expect(await twoAtOnce(b, orgId, 0, 'recover')).toEqual([])
    expect(await twoAtOnce(b, orgId, 0.05, 'settle')).toEqual([])
    expect(await b.counts(walletId)).toEqual({ marks: 1, notices: 1 })
  }, 60_000)
}

describe('wallet alert notices survive kills (SQLite)', () => {
  const path = tempDbPath()
  const db = openNotifyDb(path)
  const ledger = wire(db, new FakeClock(AT_MS)).ledger
  afterAll(() => db.close())
  const backend = (): Backend => ({
    name: 'sqlite',
    location: path,
    ledger: async () => ledger,
    counts: async (walletId) => ({
      marks: (db.prepare('SELECT COUNT(*) AS n FROM fired_thresholds WHERE subject_id = ?').get(walletId) as { n: number }).n,
      notices: (
        db.prepare("SELECT COUNT(*) AS n FROM notifications WHERE type LIKE 'wallet.%' AND json_extract(data_json, '$.wallet_id') = ?").get(walletId) as {
          n: number
        }
      ).n,
    }),
  })
  kills(backend, ['die-after-settle', 'die-in-context'])
  recovers(backend)
})

describeWithBoth('wallet alert notices survive kills (PostgreSQL + Redis)', (ctx) => {
  let handle: Promise<RedisLedgerHandle> | undefined
  const opened = () => {
    handle ??= migratePostgres(ctx.postgres.url).then(() =>
      openRedisLedger({ postgresUrl: ctx.postgres.url, redisUrl: ctx.redis.url, keyPrefix: ctx.redis.prefix }),
    )
    return handle
  }
  afterAll(async () => {
    await (await handle)?.close()
  })
  const backend = (): Backend => ({
    name: 'postgres-redis',
    location: JSON.stringify({ postgres: ctx.postgres.url, redis: ctx.redis.url, prefix: ctx.redis.prefix }),
    ledger: async () => (await opened()).store,
    counts: async (walletId) => {
      const { rows } = await (await opened()).pool.query<{ marks: string; notices: string }>(
        `SELECT (SELECT COUNT(*) FROM fired_thresholds WHERE subject_id = $1) AS marks,
                (SELECT COUNT(*) FROM notifications WHERE type LIKE 'wallet.%' AND data_json::jsonb ->> 'wallet_id' = $1) AS notices`,
        [walletId],
      )
      return { marks: Number(rows[0]!.marks), notices: Number(rows[0]!.notices) }
    },
  })
  kills(backend, ['die-after-settle', 'die-in-context'])
  recovers(backend)
})
