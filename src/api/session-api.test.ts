/**
 * Console sessions: an admin token is exchanged for an httpOnly, SameSite=Strict cookie; the
 * cookie authenticates reads; a write made with it needs the CSRF header returned at sign-in
 * (without it: 403 and nothing changes); sign-out revokes it server-side; it expires; another
 * gateway process on the same store accepts it; only its hash is stored.
 *
 * How: `buildApp()` on SQLite in a temp dir with a fake clock, `app.fastify.inject()`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { FakeClock } from '../lib/clock.js'
import { createLogger } from '../observability/logger.js'
import { SESSION_TTL_MS } from '../auth/index.js'

const ADMIN = 'tg_admin_session_test_token_0123456789'
const TEAM = 'team_alpha'

let dir: string
let dbPath: string
let clock: FakeClock
let app: App
const apps: App[] = []

/** A gateway process on the shared store, run with `adminToken` as TOLLGATE_ADMIN_TOKEN (null: none). */
async function gateway(adminToken: string | null = ADMIN): Promise<App> {
  const yaml = stringify({ version: '1', storage: { sqlite: dbPath }, providers: { targets: [{ id: 'mock', provider: 'mock' }] } })
  const env: Record<string, string> = adminToken === null ? {} : { TOLLGATE_ADMIN_TOKEN: adminToken }
  const built = await buildApp(parseConfig(yaml, '<session.test>', { env }), {
    env,
    clock,
    logger: createLogger({ level: 'silent' }),
    consoleDir: join(dir, 'no-console'),
  })
  await built.fastify.ready()
  apps.push(built)
  return built
}

interface Reply {
  status: number
  body: any
  headers: Record<string, unknown>
  cookie: { name: string; value: string; [k: string]: unknown } | undefined
}

async function request(
  target: App,
  method: 'GET' | 'POST' | 'DELETE' | 'PUT',
  url: string,
  options: { body?: unknown; cookie?: string; csrf?: string; bearer?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const response = await target.fastify.inject({
    method,
    url,
    headers: {
      ...(options.cookie === undefined ? {} : { cookie: `tollgate_session=${options.cookie}` }),
      ...(options.csrf === undefined ? {} : { 'x-tollgate-csrf': options.csrf }),
      ...(options.bearer === undefined ? {} : { authorization: `Bearer ${options.bearer}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }),
  })
  const cookie = response.cookies.find((c) => c.name === 'tollgate_session') as Reply['cookie']
  return { status: response.statusCode, body: response.body.length > 0 ? response.json() : undefined, headers: response.headers, cookie }
}

async function signIn(token = ADMIN, target = app): Promise<{ session: string; csrf: string; body: any }> {
  const reply = await request(target, 'POST', '/v1/session', { body: { token } })
  expect(reply.status, JSON.stringify(reply.body)).toBe(201)
  return { session: reply.cookie!.value, csrf: reply.body.csrf_token, body: reply.body }
}

async function walletCount(): Promise<number> {
  return (await request(app, 'GET', '/v1/wallets', { bearer: ADMIN })).body.data.length
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-session-'))
  dbPath = join(dir, 'tollgate.sqlite')
  clock = new FakeClock()
  app = await gateway()
})

afterAll(async () => {
  for (const a of apps) await a.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('POST /v1/session (sign in)', () => {
  it('sets an httpOnly, SameSite=Strict, Path=/ cookie with the session expiry, and returns the role and a CSRF value but never the token', async () => {
    const reply = await request(app, 'POST', '/v1/session', { body: { token: ADMIN } })
    expect(reply.status).toBe(201)
    expect(reply.cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/', maxAge: SESSION_TTL_MS / 1000 })
    expect(reply.cookie!.secure).toBeUndefined()
    expect(reply.cookie!.value).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(reply.body).toEqual({
      role: 'admin',
      team_id: null,
      org_id: 'default',
      expires_at: new Date(clock.nowMs() + SESSION_TTL_MS).toISOString(),
      csrf_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    })
    expect(JSON.stringify(reply.body)).not.toContain(ADMIN)
    expect(JSON.stringify(reply.headers)).not.toContain(ADMIN)
  })

  it('marks the cookie Secure when the console is reached over https (TLS-terminating proxy)', async () => {
    const reply = await request(app, 'POST', '/v1/session', { body: { token: ADMIN }, headers: { 'x-forwarded-proto': 'https' } })
    expect(reply.status).toBe(201)
    expect(reply.cookie!.secure).toBe(true)
  })

  it('refuses an unknown token with 401 and sets no cookie', async () => {
    const reply = await request(app, 'POST', '/v1/session', { body: { token: 'tg_admin_not_a_real_token' } })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('unauthorized')
    expect(reply.cookie).toBeUndefined()
  })

  it.each([
    ['no token', {}],
    ['an empty token', { token: '' }],
    ['a number', { token: 42 }],
    ['an unknown field', { token: ADMIN, remember: true }],
  ])('refuses %s with 400 naming the field, and sets no cookie', async (_name, body) => {
    const reply = await request(app, 'POST', '/v1/session', { body })
    expect(reply.status).toBe(400)
    expect(reply.body.error.code).toBe('invalid_request')
    expect(reply.body.error.issues.map((i: { path: string; message: string }) => `${i.path} ${i.message}`).join(' ')).toMatch(/token|remember/)
    expect(reply.cookie).toBeUndefined()
  })

  it('stores only a hash of the session id', async () => {
    const { session } = await signIn()
    const db = new Database(dbPath, { readonly: true })
    try {
      const rows = db.prepare('SELECT * FROM console_sessions').all()
      expect(rows.length).toBeGreaterThan(0)
      expect(JSON.stringify(rows)).not.toContain(session)
    } finally {
      db.close()
    }
  })
})

describe('the session cookie', () => {
  it('authenticates reads, and GET /v1/session says who is signed in', async () => {
    const { session, csrf } = await signIn()
    const me = await request(app, 'GET', '/v1/session', { cookie: session })
    expect(me.status).toBe(200)
    expect(me.body).toMatchObject({ role: 'admin', org_id: 'default', csrf_token: csrf })
    expect((await request(app, 'GET', '/v1/wallets', { cookie: session })).status).toBe(200)
  })

  it('refuses a write without the CSRF header (403) and changes nothing; the same write with it succeeds', async () => {
    const { session, csrf } = await signIn()
    const before = await walletCount()
    const allocate = { team_id: TEAM, amount: 1, currency: 'USD' }
    const bare = await request(app, 'POST', '/v1/wallets/allocate', { cookie: session, body: allocate })
    expect(bare.status).toBe(403)
    expect(bare.body.error.message).toMatch(/x-tollgate-csrf/)
    const wrong = await request(app, 'POST', '/v1/wallets/allocate', { cookie: session, csrf: `${csrf.slice(0, -1)}x`, body: allocate })
    expect(wrong.status).toBe(403)
    const other = await signIn()
    const crossed = await request(app, 'POST', '/v1/wallets/allocate', { cookie: session, csrf: other.csrf, body: allocate })
    expect(crossed.status).toBe(403)
    expect(await walletCount()).toBe(before)
    const good = await request(app, 'POST', '/v1/wallets/allocate', { cookie: session, csrf, body: allocate })
    expect(good.status).toBe(201)
    expect(await walletCount()).toBe(before + 1)
  })

  it('needs the CSRF header for DELETE and PUT too', async () => {
    const { session } = await signIn()
    expect((await request(app, 'DELETE', '/v1/session', { cookie: session })).status).toBe(403)
    expect(
      (await request(app, 'PUT', '/v1/notification-preferences', { cookie: session, body: { subject: { type: 'role', id: 'admin' }, kinds: {} } })).status,
    ).toBe(403)
    expect((await request(app, 'GET', '/v1/session', { cookie: session })).status).toBe(200)
  })

  it("carries the token's role: a viewer's session reads but cannot write, even with the CSRF header", async () => {
    const created = await request(app, 'POST', '/v1/admin-tokens', { bearer: ADMIN, body: { name: 'viewer', role: 'viewer' } })
    const { session, csrf, body } = await signIn(created.body.token)
    expect(body.role).toBe('viewer')
    expect((await request(app, 'GET', '/v1/wallets', { cookie: session })).status).toBe(200)
    const write = await request(app, 'POST', '/v1/wallets/allocate', { cookie: session, csrf, body: { team_id: TEAM, amount: 1, currency: 'USD' } })
    expect(write.status).toBe(403)
    expect(write.body.error.message).toMatch(/viewer/)
  })

  it("a team_admin's session sees its team and no other", async () => {
    await request(app, 'POST', '/v1/wallets/allocate', { bearer: ADMIN, body: { team_id: 'team_beta', amount: 2, currency: 'USD' } })
    await request(app, 'POST', '/v1/wallets/allocate', { bearer: ADMIN, body: { team_id: TEAM, amount: 2, currency: 'USD' } })
    const created = await request(app, 'POST', '/v1/admin-tokens', { bearer: ADMIN, body: { name: 'alpha admin', role: 'team_admin', team_id: TEAM } })
    const { session, body } = await signIn(created.body.token)
    expect(body).toMatchObject({ role: 'team_admin', team_id: TEAM })
    const wallets = await request(app, 'GET', '/v1/wallets', { cookie: session })
    expect(wallets.body.data.map((w: { scope: string }) => w.scope)).toEqual([`team:${TEAM}`])
  })

  it('an unknown, empty or oversized cookie is 401', async () => {
    for (const cookie of ['not-a-session', 'x'.repeat(500)]) {
      expect((await request(app, 'GET', '/v1/wallets', { cookie })).status).toBe(401)
    }
    expect((await request(app, 'GET', '/v1/session')).status).toBe(401)
  })

  it('a Bearer token still works without any cookie, and a Bearer write needs no CSRF header', async () => {
    const me = await request(app, 'GET', '/v1/session', { bearer: ADMIN })
    expect(me.body).toEqual({ role: 'admin', team_id: null, org_id: 'default', expires_at: null, csrf_token: null })
    const write = await request(app, 'POST', '/v1/wallets/allocate', { bearer: ADMIN, body: { team_id: TEAM, amount: 1, currency: 'USD' } })
    expect(write.status).toBe(201)
  })
})

describe('DELETE /v1/session (sign out) and expiry', () => {
  it('revokes the session server-side: the same cookie is refused afterwards', async () => {
    const { session, csrf } = await signIn()
    const out = await request(app, 'DELETE', '/v1/session', { cookie: session, csrf })
    expect(out.status).toBe(204)
    expect(out.cookie).toMatchObject({ value: '', path: '/' })
    expect((await request(app, 'GET', '/v1/session', { cookie: session })).status).toBe(401)
    expect((await request(app, 'GET', '/v1/wallets', { cookie: session })).status).toBe(401)
  })

  it('expires after the session lifetime', async () => {
    const { session } = await signIn()
    clock.advance(SESSION_TTL_MS - 1000)
    expect((await request(app, 'GET', '/v1/session', { cookie: session })).status).toBe(200)
    clock.advance(1000)
    expect((await request(app, 'GET', '/v1/session', { cookie: session })).status).toBe(401)
  })

  it('is accepted by another gateway process on the same store, and a sign-out there ends it here', async () => {
    const { session, csrf } = await signIn()
    const second = await gateway()
    expect((await request(second, 'GET', '/v1/wallets', { cookie: session })).status).toBe(200)
    expect((await request(second, 'DELETE', '/v1/session', { cookie: session, csrf })).status).toBe(204)
    expect((await request(app, 'GET', '/v1/wallets', { cookie: session })).status).toBe(401)
  })
})

describe('the environment admin token', () => {
  it('its sessions end when a gateway runs with another token or none, and live on with the same one', async () => {
    const { session } = await signIn()
    expect((await request(app, 'GET', '/v1/session', { cookie: session })).body).toMatchObject({ role: 'admin' })
    const rotated = await gateway('tg_admin_session_test_rotated_0123456')
    expect((await request(rotated, 'GET', '/v1/wallets', { cookie: session })).status).toBe(401)
    const retired = await gateway(null)
    expect((await request(retired, 'GET', '/v1/admin-tokens', { cookie: session })).status).toBe(401)
    expect((await request(await gateway(ADMIN), 'GET', '/v1/wallets', { cookie: session })).status).toBe(200)
  })
})

describe('a revoked admin token', () => {
  it('ends the sessions opened with it', async () => {
    const created = await request(app, 'POST', '/v1/admin-tokens', { bearer: ADMIN, body: { name: 'short-lived', role: 'admin' } })
    const { session } = await signIn(created.body.token)
    expect((await request(app, 'GET', '/v1/wallets', { cookie: session })).status).toBe(200)
    expect((await request(app, 'DELETE', `/v1/admin-tokens/${created.body.id}`, { bearer: ADMIN })).status).toBe(200)
    expect((await request(app, 'GET', '/v1/wallets', { cookie: session })).status).toBe(401)
  })
})
