/**
 * Console sessions on the scale-out store: a session opened through one gateway process is
 * accepted by another on the same PostgreSQL, a sign-out through either ends it for both, and
 * PostgreSQL holds only the hash of the session id.
 *
 * How: two `buildApp()` instances on one PostgreSQL schema and Redis prefix (services.ts),
 * `inject()` against each.
 */
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../../src/app.js'
import { parseConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/observability/logger.js'
import { describeWithBoth } from '../support/services.js'

const ADMIN = 'tg_admin_sessions_pg_0123456789abcdef'

describeWithBoth('console sessions on PostgreSQL + Redis', (ctx) => {
  const apps: App[] = []

  beforeAll(async () => {
    const yaml = stringify({
      version: '1',
      storage: { postgres: ctx.postgres.url, redis: ctx.redis.url },
      providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    })
    const env = { TOLLGATE_ADMIN_TOKEN: ADMIN, TOLLGATE_REDIS_PREFIX: ctx.redis.prefix }
    for (let i = 0; i < 2; i++) {
      const app = await buildApp(parseConfig(yaml, '<sessions-pg>', { env }), { env, logger: createLogger({ level: 'silent' }) })
      await app.fastify.ready()
      apps.push(app)
    }
  })

  afterAll(async () => {
    for (const app of apps) await app.close()
  })

  const call = (app: App, method: 'GET' | 'POST' | 'DELETE', url: string, headers: Record<string, string> = {}, body?: unknown) =>
    app.fastify.inject({
      method,
      url,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    })

  it('a session from one process works on the other, and signing out on either ends it on both', async () => {
    const [first, second] = apps as [App, App]
    const signIn = await call(first, 'POST', '/v1/session', {}, { token: ADMIN })
    expect(signIn.statusCode).toBe(201)
    const session = signIn.cookies.find((c) => c.name === 'tollgate_session')!.value
    const csrf = signIn.json().csrf_token as string
    const cookie = { cookie: `tollgate_session=${session}` }

    expect((await call(second, 'GET', '/v1/session', cookie)).json()).toMatchObject({ role: 'admin', org_id: 'default' })
    const write = await call(second, 'POST', '/v1/wallets/allocate', { ...cookie, 'x-tollgate-csrf': csrf }, { team_id: 'pg_team', amount: 1, currency: 'USD' })
    expect(write.statusCode).toBe(201)
    expect((await call(second, 'POST', '/v1/wallets/allocate', cookie, { team_id: 'pg_team', amount: 1, currency: 'USD' })).statusCode).toBe(403)

    const client = new pg.Client({ connectionString: ctx.postgres.url })
    await client.connect()
    try {
      const { rows } = await client.query('SELECT * FROM console_sessions')
      expect(rows).toHaveLength(1)
      expect(JSON.stringify(rows)).not.toContain(session)
    } finally {
      await client.end()
    }

    expect((await call(second, 'DELETE', '/v1/session', { ...cookie, 'x-tollgate-csrf': csrf })).statusCode).toBe(204)
    expect((await call(first, 'GET', '/v1/wallets', cookie)).statusCode).toBe(401)
    expect((await call(second, 'GET', '/v1/wallets', cookie)).statusCode).toBe(401)
  })
})
