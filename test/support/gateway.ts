/**
 * Tollgate for tests, in two sizes: `startTestGateway` listens on a free port (for SDKs and raw
 * HTTP), `buildTestApp` does not (for `app.fastify.inject()`). Both start a mock upstream, parse a
 * config (`aConfig(…)` or any YAML, e.g. a seed), point every target at the mock after parsing (a
 * `mock` target takes no `base_url` in YAML), keep SQLite in a temp dir, and undo it all in `close()`.
 *
 *   const gw = await startTestGateway({ yaml: aConfig({ walletEnforcement: true }) })
 *   await gw.allocate('team_test', 5)
 *   … fetch(`${gw.url}/v1/chat/completions`, { headers: { authorization: `Bearer ${gw.consumerKey}` } })
 *   expect(await gw.events()).toMatchObject([{ status: 'ok' }])
 *
 * The mock upstream accepts only PROVIDER_KEY, so a test also proves which key went upstream. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { stringify } from 'yaml'
import { parseConfig, type Config } from '../../src/config/index.js'
import { startMockUpstream, type MockUpstream } from '../../src/providers/index.js'
import { startServer } from '../../src/server.js'
import { createLogger } from '../../src/observability/logger.js'
import { buildApp, type App, type AppOptions } from '../../src/app.js'

export const CONSUMER_KEY = 'tg_test_consumer_key_0123456789abcdef'
export const PROVIDER_KEY = 'sk-test-provider-key-fedcba9876543210'
export const ADMIN_TOKEN = 'tg_test_admin_token_5a5a5a5a5a5a5a5a'
export const TEAM = 'team_test'

export interface ConsumerSpec {
  readonly name: string
  readonly apiKey: string
  readonly teamId: string
  readonly userId?: string
}

export interface ConfigSpec {
  readonly walletEnforcement?: boolean
  readonly budgetAlerts?: ReadonlyArray<{ readonly percent: number; readonly action: 'notify' | 'degrade' | 'block' }>
  readonly consumers?: readonly ConsumerSpec[]
  readonly bodyLimitBytes?: number
  /** `models:` entries, as YAML data (routes, price overrides). */
  readonly models?: ReadonlyArray<Record<string, unknown>>
}

/** YAML for one `mock` target and one consumer group; wallet enforcement off unless asked for. */
export function aConfig(spec: ConfigSpec = {}): string {
  const consumers = spec.consumers ?? [{ name: 'svc', apiKey: CONSUMER_KEY, teamId: TEAM }]
  return stringify({
    version: '1',
    ...(spec.bodyLimitBytes === undefined ? {} : { server: { body_limit_bytes: spec.bodyLimitBytes } }),
    providers: { targets: [{ id: 'mock', provider: 'mock' }] },
    consumer_groups: consumers.map((c) => ({
      name: c.name,
      api_key: c.apiKey,
      team_id: c.teamId,
      ...(c.userId === undefined ? {} : { user_id: c.userId }),
    })),
    cost_tracking: {
      enabled: true,
      wallet_enforcement: spec.walletEnforcement ?? false,
      budget_alerts: (spec.budgetAlerts ?? [{ percent: 100, action: 'block' }]).map((a) => ({ threshold_percent: a.percent, action: a.action })),
    },
    ...(spec.models === undefined ? {} : { models: spec.models }),
  })
}

/** Every target of `config` now points at `mock` with the provider key; the store is `sqlitePath`. */
export function pointedAt(config: Config, mock: MockUpstream, sqlitePath: string): Config {
  return {
    ...config,
    storage: { kind: 'sqlite', path: sqlitePath },
    targets: config.targets.map((t) => ({
      ...t,
      baseUrl: t.provider === 'anthropic' ? mock.url : `${mock.url}/v1`,
      apiKey: PROVIDER_KEY,
    })),
  }
}

/** One usage_events row, as stored. */
export interface StoredEvent {
  readonly request_id: string
  readonly key_name: string | null
  readonly status: string
  readonly http_status: number
  readonly endpoint: string
  readonly cost_micros: number
  readonly output_tokens: number
  readonly user_id: string | null
  readonly agent_id: string | null
  readonly endpoint_tag: string | null
  readonly prompt_version: string | null
  readonly reservation_id: string | null
  readonly decision: string
  readonly price_source: string
}

export interface TestApp {
  readonly app: App
  readonly mock: MockUpstream
  readonly config: Config
  readonly adminToken: string
  readonly consumerKey: string
  readonly dir: string
  /** The usage events stored so far, oldest first (flushes the recorder first). */
  events(): Promise<StoredEvent[]>
  close(): Promise<void>
}

export interface TestGateway extends TestApp {
  readonly url: string
  /** An admin API call with the admin token; returns status and parsed JSON. */
  admin(method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: any }>
  /** Funds a team wallet (USD). */
  allocate(teamId: string, amountUsd: number): Promise<void>
}

export interface TestGatewayOptions {
  readonly yaml?: string
  /** Applied to the parsed config after the targets are pointed at the mock. */
  readonly configOverrides?: Partial<Config>
  readonly env?: NodeJS.ProcessEnv
  readonly logger?: AppOptions['logger']
}

/** buildApp without listening, for `app.fastify.inject()` tests. */
export async function buildTestApp(options: TestGatewayOptions = {}): Promise<TestApp> {
  const { dir, mock, config, appOptions } = await prepare(options)
  const app = await buildApp(config, appOptions)
  return testApp(app, mock, config, dir, () => app.close())
}

/** A listening gateway (startServer on a free port), for SDKs and raw HTTP. */
export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const { dir, mock, config, appOptions } = await prepare(options)
  const server = await startServer(config, { ...appOptions, port: 0, host: '127.0.0.1', announce: () => {} })
  const { url } = server
  const admin: TestGateway['admin'] = async (method, path, body) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) }
  }
  return {
    ...testApp(server.app, mock, config, dir, () => server.stop()),
    url,
    admin,
    async allocate(teamId, amountUsd) {
      const { status, body } = await admin('POST', '/v1/wallets/allocate', { team_id: teamId, amount: amountUsd, currency: 'USD' })
      if (status !== 200 && status !== 201) throw new Error(`allocate failed: ${status} ${JSON.stringify(body)}`)
    },
  }
}

async function prepare(options: TestGatewayOptions) {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-test-'))
  const mock = await startMockUpstream({ apiKey: PROVIDER_KEY })
  const env = { OPENAI_API_KEY: PROVIDER_KEY, ANTHROPIC_API_KEY: PROVIDER_KEY, ...options.env, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN }
  const parsed = parseConfig(options.yaml ?? aConfig(), '<test>', { env, requireSecrets: true })
  const config: Config = { ...pointedAt(parsed, mock, join(dir, 'tollgate.sqlite')), ...options.configOverrides }
  const appOptions: AppOptions = { env, logger: options.logger ?? createLogger({ level: 'silent' }) }
  return { dir, mock, config, appOptions }
}

function testApp(app: App, mock: MockUpstream, config: Config, dir: string, stop: () => Promise<void>): TestApp {
  return {
    app,
    mock,
    config,
    adminToken: ADMIN_TOKEN,
    consumerKey: CONSUMER_KEY,
    dir,
    async events() {
      await app.usage.flush()
      const db = new Database(config.storage.kind === 'sqlite' ? config.storage.path : '', { readonly: true })
      try {
        return db.prepare('SELECT * FROM usage_events ORDER BY at_ms, rowid').all() as StoredEvent[]
      } finally {
        db.close()
      }
    },
    async close() {
      await stop()
      await mock.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
