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

describe('several processes on one store', () => {
  it('a consumer key created through one gateway works on another after its refresh', async () => {
    const path = join(dir, 'shared.db')
    const config = { ...builtInConfig({}), storage: { kind: 'sqlite' as const, path } }
    const options = { env: { TOLLGATE_ADMIN_TOKEN: 'tg_admin_shared' }, logger: createLogger({ level: 'silent' }) }
    const [first, second] = [await buildApp(config, options), await buildApp(config, options)]
    try {
      const created = await first.fastify.inject({
        method: 'POST',
        url: '/v1/keys',
        headers: { authorization: 'Bearer tg_admin_shared' },
        payload: { name: 'batch-jobs', team_id: 'data' },
      })
      expect(created.statusCode).toBe(201)
      const key = created.json().key as string
      const call = () =>
        second.fastify.inject({
          method: 'POST',
          url: '/v1/embeddings',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          payload: { model: 'text-embedding-3-small', input: 'shared' },
        })
      expect((await call()).statusCode).toBe(401)
      await second.refreshSharedState()
      expect((await call()).statusCode).toBe(200)
    } finally {
      await first.close()
      await second.close()
    }
  })
})
