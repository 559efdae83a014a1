/**
 * Ingestion dedupe across processes: three `tollgate serve` processes share one store (one SQLite
 * file; or one Redis + PostgreSQL), and the same events are posted to all of them at once, as a
 * retrying shipper behind a load balancer would, by the shippers of two teams using the same ids.
 * Each external id ends up as one stored event and one charge per team: each team's budget spend
 * is exactly the catalogue cost of the distinct events, and its 50% notice went out once.
 *
 * How: spawnGateway (built `dist/`), a declared budget per team sized so the distinct events
 * cross 50% and stay under 80%; 30 rounds, each posting a batch of the same 20 events with each
 * team's key to every process concurrently (6 requests at a time, 3,600 event posts for 20
 * events per team).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'
import { postgresSkipReason, postgresService, redisService, redisSkipReason, type PostgresService, type RedisService } from '../support/services.js'
import { PriceBook, costOfUsage } from '../../src/pricing/index.js'
import { emptyUsage } from '../../src/providers/index.js'

const PROCESSES = 3
const ROUNDS = 30
const EVENTS = 20
const KEY = 'tg_ingest_processes_key_0123456789abcdef'
const KEY_B = 'tg_ingest_processes_key_b_0123456789abcd'
const ADMIN_TOKEN = 'tg_admin_ingest_processes_0123456789ab'
const TEAM = 'team_shipper'
const TEAM_B = 'team_shipper_b'
const SHIPPERS = [
  { key: KEY, team: TEAM, budget: 'bud_shipper' },
  { key: KEY_B, team: TEAM_B, budget: 'bud_shipper_b' },
]

const unitMicros = costOfUsage({ ...emptyUsage(), inputTokens: 1_000, outputTokens: 500 }, new PriceBook().lookup('openai', 'gpt-4o-mini', 1_000)!).totalMicros
const dir = mkdtempSync(join(tmpdir(), 'tollgate-ingest-processes-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function configYaml(storage: Record<string, string>): string {
  return stringify({
    version: '1',
    storage,
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: SHIPPERS.map((s) => ({ name: s.team, api_key: s.key, team_id: s.team })),
    cost_tracking: { enabled: true, wallet_enforcement: false },
    // The distinct events of a team cost 20 units: 50% is crossed, 80% is not.
    budgets: SHIPPERS.map((s) => ({
      id: s.budget,
      name: `${s.team} monthly`,
      scope: { kind: 'team', id: s.team },
      period: 'monthly',
      amount_usd: (unitMicros * 32) / 1e6,
      alert_thresholds: [50, 80],
    })),
  })
}

const events = Array.from({ length: EVENTS }, (_, i) => ({
  externalRequestId: `ship-${i}`,
  provider: 'openai',
  model: 'gpt-4o-mini',
  inputTokens: 1_000,
  outputTokens: 500,
}))

async function admin(gw: GatewayHandle, path: string): Promise<any> {
  const response = await fetch(`${gw.baseUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  return response.json()
}

async function runAgainst(storage: Record<string, string>, env: NodeJS.ProcessEnv): Promise<void> {
  const config = join(dir, `tollgate-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(config, configYaml(storage))
  const gatewayEnv = { ...process.env, ...env, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, TOLLGATE_LOG_LEVEL: 'error' }
  const gateways: GatewayHandle[] = []
  // One first, so the schema and the declared budget exist before the others race to start.
  gateways.push(await spawnGateway({ config, env: gatewayEnv }))
  gateways.push(...(await Promise.all(Array.from({ length: PROCESSES - 1 }, () => spawnGateway({ config, env: gatewayEnv })))))
  try {
    const created = new Map(SHIPPERS.map((s) => [s.team, 0]))
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        SHIPPERS.flatMap((shipper) =>
          gateways.map(async (gw) => {
            const response = await fetch(`${gw.baseUrl}/v1/events`, {
              method: 'POST',
              headers: { authorization: `Bearer ${shipper.key}`, 'content-type': 'application/json' },
              body: JSON.stringify({ events }),
            })
            expect(response.status).toBe(200)
            const answer = (await response.json()) as { created: number; duplicates: number; rejected: number }
            expect(answer.created + answer.duplicates).toBe(EVENTS)
            created.set(shipper.team, created.get(shipper.team)! + answer.created)
          }),
        ),
      )
    }
    expect([...created.values()]).toEqual([EVENTS, EVENTS])
    for (const gw of gateways) {
      const listed = (await admin(gw, '/v1/usage/events?source=ingest&limit=1000')).data as Array<{ external_request_id: string; team_id: string }>
      for (const { team, budget } of SHIPPERS) {
        expect(
          listed
            .filter((e) => e.team_id === team)
            .map((e) => e.external_request_id)
            .sort(),
        ).toEqual(events.map((e) => e.externalRequestId).sort())
        const posture = (await admin(gw, `/v1/billing/budgets/${budget}`)).posture
        expect(Math.round(posture.spend_usd * 1e6)).toBe(EVENTS * unitMicros)
      }
      expect(listed).toHaveLength(SHIPPERS.length * EVENTS)
    }
    type Notice = { type: string; data: { budget_id: string; threshold_percent: number } }
    const thresholdNotices = async () =>
      ((await admin(gateways[0]!, '/v1/notifications?limit=50')).data as Notice[]).filter((n) => n.type === 'budget.threshold')
    for (let i = 0; i < 50 && (await thresholdNotices()).length < SHIPPERS.length; i++) await new Promise((resolve) => setTimeout(resolve, 100))
    await new Promise((resolve) => setTimeout(resolve, 500))
    const notices = await thresholdNotices()
    expect(notices.map((n) => [n.data.budget_id, n.data.threshold_percent]).sort()).toEqual(SHIPPERS.map((s) => [s.budget, 50]).sort())
  } finally {
    await Promise.all(gateways.map((gw) => gw.kill('SIGTERM')))
  }
}

describe('concurrent identical ingestion across processes', () => {
  it(`SQLite: ${PROCESSES} processes, one file`, { timeout: 120_000 }, async () => {
    await runAgainst({ sqlite: join(dir, 'shared.sqlite') }, {})
  })

  const skip = redisSkipReason() ?? postgresSkipReason()
  it.skipIf(skip !== undefined)(`Redis + PostgreSQL: ${PROCESSES} processes${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 120_000 }, async () => {
    const redis = (await redisService()) as RedisService
    const postgres = (await postgresService()) as PostgresService
    try {
      await runAgainst({ postgres: postgres.url, redis: redis.url }, { TOLLGATE_REDIS_PREFIX: redis.prefix })
    } finally {
      await Promise.all([redis.stop(), postgres.stop()])
    }
  })
})
