/**
 * What a newcomer sees on `npm start`: the built-in configuration serves from the in-process mock
 * provider, and the first start creates an admin token and a consumer key that work — shown once,
 * never again on the next start. Method: buildApp on a fresh SQLite file, twice.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { buildApp } from './app.js'
import { builtInConfig, type Config } from './config/index.js'
import { createLogger } from './observability/logger.js'

const dir = mkdtempSync(join(tmpdir(), 'tollgate-first-start-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function newcomerConfig(): Config {
  const config = builtInConfig({})
  return { ...config, storage: { kind: 'sqlite', path: join(dir, 'tollgate.db') } }
}

describe('first start with the built-in configuration', () => {
  it('serves from the mock provider with the consumer key it printed, and the admin token reads the usage', async () => {
    const app = await buildApp(newcomerConfig(), { env: {}, logger: createLogger({ level: 'silent' }) })
    try {
      const { adminToken, consumerKey } = app.firstStart
      expect(adminToken).toMatch(/^tg_admin_/)
      expect(consumerKey).toMatch(/^tg_key_/)
      expect(app.config.targets.map((t) => t.provider)).toEqual(['mock'])

      const reply = await app.fastify.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: `Bearer ${consumerKey}`, 'content-type': 'application/json' },
        payload: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] },
      })
      expect(reply.statusCode).toBe(200)
      expect(Number(reply.headers['x-tollgate-cost-usd'])).toBeGreaterThan(0)

      const usage = await app.fastify.inject({ url: '/v1/usage', headers: { authorization: `Bearer ${adminToken}` } })
      expect(usage.json()).toMatchObject({ totals: { requests: 1 } })
    } finally {
      await app.close()
    }
  })

  it('does not create or show new secrets on the next start', async () => {
    const app = await buildApp(newcomerConfig(), { env: {}, logger: createLogger({ level: 'silent' }) })
    try {
      expect(app.firstStart).toEqual({ adminToken: undefined, consumerKey: undefined })
    } finally {
      await app.close()
    }
  })
})
