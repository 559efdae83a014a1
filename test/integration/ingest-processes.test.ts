/**
 * Ingestion dedupe across processes: three `tollgate serve` processes share one store (one SQLite
 * file; or one Redis + PostgreSQL), and the same events are posted to all of them at once, as a
 * retrying shipper behind a load balancer would. Each external id ends up as one stored event and
 * one charge: the shared budget's spend is exactly the catalogue cost of the distinct events, and
 * its 50% notice went out once.
 *
 * How: spawnGateway (built `dist/`), a declared team budget sized so the distinct events cross
 * 50% and stay under 80%; 30 rounds, each posting a batch of the same 20 events to every process
 * concurrently (90 requests in flight, 1,800 event posts for 20 events).
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
const ADMIN_TOKEN = 'tg_admin_ingest_processes_0123456789ab'
const TEAM = 'team_shipper'

const unitMicros = costOfUsage({ ...emptyUsage(), inputTokens: 1_000, outputTokens: 500 }, new PriceBook().lookup('openai', 'gpt-4o-mini', 1_000)!).totalMicros
const dir = mkdtempSync(join(tmpdir(), 'tollgate-ingest-processes-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function configYaml(storage: Record<string, string>): string {
  return stringify({
    version: '1',
    storage,
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: [{ name: 'shipper', api_key: KEY, team_id: TEAM }],
    cost_tracking: { enabled: true, wallet_enforcement: false },
    // The distinct events cost 20 units: 50% is crossed, 80% is not.
    budgets: [
      {
        id: 'bud_shipper',
        name: 'shipper monthly',
        scope: { kind: 'team', id: TEAM },
        period: 'monthly',
        amount_usd: (unitMicros * 32) / 1e6,
        alert_thresholds: [50, 80],
      },
    ],
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
    let created = 0
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all(
        gateways.map(async (gw) => {
          const response = await fetch(`${gw.baseUrl}/v1/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ events }),
          })
          expect(response.status).toBe(200)
          return (await response.json()) as { created: number; duplicates: number; rejected: number }
        }),
      )
      for (const a of answers) {
        expect(a.created + a.duplicates).toBe(EVENTS)
        created += a.created
      }
    }
    expect(created).toBe(EVENTS)
    for (const gw of gateways) {
      const listed = await admin(gw, '/v1/usage/events?source=ingest&limit=1000')
      expect(listed.data.map((e: { external_request_id: string }) => e.external_request_id).sort()).toEqual(events.map((e) => e.externalRequestId).sort())
      const budget = await admin(gw, '/v1/billing/budgets/bud_shipper')
      expect(Math.round(budget.posture.spend_usd * 1e6)).toBe(EVENTS * unitMicros)
    }
    let notices: Array<{ type: string; data: { threshold_percent: number } }> = []
    for (let i = 0; i < 50; i++) {
      notices = ((await admin(gateways[0]!, '/v1/notifications?limit=50')).data as typeof notices).filter((n) => n.type === 'budget.threshold')
      if (notices.length > 0) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
    notices = ((await admin(gateways[0]!, '/v1/notifications?limit=50')).data as typeof notices).filter((n) => n.type === 'budget.threshold')
    expect(notices.map((n) => n.data.threshold_percent)).toEqual([50])
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
