/**
 * The gateway serves the console: hashed assets are cached for a year, index.html is revalidated
 * every time, a browser navigating to a console path gets index.html, and nothing of this ever
 * shadows the API or the operations endpoints (an unknown /v1/… path is still a JSON 404).
 * Without a built console, / says how to build it.
 *
 * How: `buildApp()` with `consoleDir` pointing at a small fixture build (index.html and one
 * hashed asset), `app.fastify.inject()`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { buildApp, type App } from '../app.js'
import { parseConfig } from '../config/index.js'
import { createLogger } from '../observability/logger.js'

const ADMIN = 'tg_admin_serve_test_token_0123456789'
const INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-AbC123.js"></script></head><body><div id="root"></div></body></html>'
const ASSET = 'console.log("tollgate console")'
const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'

let dir: string
const apps: App[] = []

async function gateway(consoleDir: string): Promise<App> {
  const yaml = stringify({ version: '1', storage: { sqlite: join(dir, `${apps.length}.sqlite`) }, providers: { targets: [{ id: 'mock', provider: 'mock' }] } })
  const env = { TOLLGATE_ADMIN_TOKEN: ADMIN }
  const app = await buildApp(parseConfig(yaml, '<serve.test>', { env }), { env, consoleDir, logger: createLogger({ level: 'silent' }) })
  await app.fastify.ready()
  apps.push(app)
  return app
}

let built: App
let missing: App

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-serve-'))
  const consoleDir = join(dir, 'console')
  mkdirSync(join(consoleDir, 'assets'), { recursive: true })
  writeFileSync(join(consoleDir, 'index.html'), INDEX)
  writeFileSync(join(consoleDir, 'assets', 'index-AbC123.js'), ASSET)
  built = await gateway(consoleDir)
  missing = await gateway(join(dir, 'not-built'))
})

afterAll(async () => {
  for (const app of apps) await app.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const get = (app: App, url: string, accept = HTML) => app.fastify.inject({ method: 'GET', url, headers: { accept } })

describe('a built console', () => {
  it('serves index.html at / with no-cache and headers that forbid framing', async () => {
    const response = await get(built, '/')
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toMatch(/^text\/html/)
    expect(response.headers['cache-control']).toBe('no-cache')
    expect(response.headers['x-frame-options']).toBe('DENY')
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(response.body).toBe(INDEX)
  })

  it('serves hashed assets with a year of immutable caching and their content type', async () => {
    const response = await get(built, '/assets/index-AbC123.js', '*/*')
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(response.headers['content-type']).toMatch(/javascript/)
    expect(response.body).toBe(ASSET)
  })

  it('answers a conditional request for an asset with 304', async () => {
    const first = await get(built, '/assets/index-AbC123.js', '*/*')
    const again = await built.fastify.inject({ method: 'GET', url: '/assets/index-AbC123.js', headers: { 'if-none-match': String(first.headers.etag) } })
    expect(again.statusCode).toBe(304)
  })

  it.each(['/usage', '/usage/budgets', '/wallets?team=alpha', '/cost-tickets', '/settings/notification-preferences'])(
    'answers a browser navigating to %s with index.html (SPA fallback, no-cache)',
    async (url) => {
      const response = await get(built, url)
      expect(response.statusCode).toBe(200)
      expect(response.headers['cache-control']).toBe('no-cache')
      expect(response.body).toBe(INDEX)
    },
  )

  it('does not answer a console path with HTML to a client that did not ask for HTML', async () => {
    const response = await get(built, '/usage', 'application/json')
    expect(response.statusCode).toBe(404)
    expect(response.json().error.code).toBe('not_found')
  })

  it('answers a missing asset with 404, not with index.html', async () => {
    const response = await get(built, '/assets/index-gone.js', HTML)
    expect(response.statusCode).toBe(404)
    expect(response.body).not.toContain('<html')
  })

  it.each(['/v1/not-a-route', '/v1/usage/nope', '/v1', '/healthz/extra', '/metrics/x', '/readyz/x'])(
    'never shadows the API: %s answers the JSON 404 even when a browser asks for HTML',
    async (url) => {
      const response = await get(built, url)
      expect(response.statusCode).toBe(404)
      expect(response.headers['content-type']).toMatch(/application\/json/)
      expect(response.json()).toMatchObject({ error: { code: 'not_found', message: expect.stringContaining(url.split('?')[0]!) } })
    },
  )

  it('leaves the API and the operations endpoints answering as before', async () => {
    expect((await get(built, '/healthz')).statusCode).toBe(200)
    expect((await get(built, '/metrics', '*/*')).headers['content-type']).toMatch(/text\/plain/)
    const usage = await built.fastify.inject({ method: 'GET', url: '/v1/usage', headers: { accept: HTML, authorization: `Bearer ${ADMIN}` } })
    expect(usage.statusCode).toBe(200)
    expect(usage.json()).toHaveProperty('totals')
    const unauthenticated = await get(built, '/v1/wallets')
    expect(unauthenticated.statusCode).toBe(401)
  })

  it('does not fall back for writes', async () => {
    const response = await built.fastify.inject({ method: 'POST', url: '/usage', headers: { accept: HTML } })
    expect(response.statusCode).toBe(404)
  })

  it('does not serve files outside the build folder', async () => {
    for (const url of ['/../1.sqlite', '/assets/..%2f..%2f1.sqlite', '/assets/..', '/assets/%2e%2e%2f1.sqlite']) {
      const response = await get(built, url, '*/*')
      // `/assets/..` normalises to `/`, the console page itself; nothing else may answer 200.
      if (response.statusCode === 200) expect(response.body, url).toBe(INDEX)
      else expect([403, 404], url).toContain(response.statusCode)
      expect(response.body, url).not.toContain('SQLite format')
    }
  })

  it('describes its two routes in the OpenAPI document', async () => {
    const document = (await get(built, '/v1/openapi.json', 'application/json')).json()
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/', '/assets/{file}']))
  })
})

describe('no console build', () => {
  it('answers / with a page that says how to build the console', async () => {
    const response = await get(missing, '/')
    expect(response.statusCode).toBe(200)
    expect(response.body).toContain('npm run build')
  })

  it('still answers an unknown /v1 path with the JSON 404', async () => {
    const response = await get(missing, '/v1/nothing-here')
    expect(response.statusCode).toBe(404)
    expect(response.json().error.code).toBe('not_found')
  })
})
