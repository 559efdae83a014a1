/**
 * A gateway for export tests: a fake clock, the `exports` keys given, and either SQLite in a temp
 * dir or the PostgreSQL + Redis of a `describeWithBoth` context (files in a temp dir of its own).
 * Built, not listening (`app.fastify.inject()`); `close()` removes the temp dir.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { buildApp, type App } from '../../src/app.js'
import { parseConfig } from '../../src/config/index.js'
import { FakeClock } from '../../src/lib/clock.js'
import { createLogger } from '../../src/observability/logger.js'
import { ADMIN_TOKEN } from './gateway.js'

export interface ExportTestApp {
  readonly app: App
  readonly clock: FakeClock
  close(): Promise<void>
}

/** Where a scale-out test's store is: its PostgreSQL URL, Redis URL and key prefix. */
export interface ScaleOutStore {
  readonly postgresUrl: string
  readonly redisUrl: string
  readonly redisPrefix: string
}

export async function exportTestApp(exports: Record<string, unknown>, scaleOut?: ScaleOutStore): Promise<ExportTestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-export-test-'))
  const env: Record<string, string> = { TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, ...(scaleOut && { TOLLGATE_REDIS_PREFIX: scaleOut.redisPrefix }) }
  const yaml = stringify({
    version: '1',
    storage: scaleOut ? { postgres: scaleOut.postgresUrl, redis: scaleOut.redisUrl } : { sqlite: join(dir, 'tollgate.db') },
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    exports: scaleOut ? { ...exports, dir } : exports,
  })
  const clock = new FakeClock()
  const app = await buildApp(parseConfig(yaml, '<export-test>', { env }), { env, clock, logger: createLogger({ level: 'silent' }) })
  await app.fastify.ready()
  return {
    app,
    clock,
    async close() {
      await app.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
