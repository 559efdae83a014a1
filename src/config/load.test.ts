/**
 * The config loader as a user meets it: example configs load as written, every default
 * lands where `defaults.ts` says, the result cannot be mutated, and each realistic mistake is
 * reported with the exact key path and a message that says what to write instead. Method: YAML
 * text (fixtures or inline) → `parseConfig` / `loadConfigFile` with an explicit `env`, then assert
 * on the Config or on `ConfigError.issues`.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { builtInConfig, ConfigError, DEFAULTS, loadConfigFile, parseConfig, type Config, type ConfigIssue } from './index.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

const SECRETS = {
  OPENAI_API_KEY: 'sk-test-openai',
  ANTHROPIC_API_KEY: 'sk-ant-test',
  SUPPORT_BOT_KEY: 'kt_support_bot_secret',
  TOLLGATE_WEBHOOK_SECRET: 'whsec_test',
  SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/XYZ',
  SMTP_URL: 'smtp://user:pw@smtp.example.com:587',
}

/** The issues of the ConfigError `run` throws; fails the test if it throws anything else. */
function issuesOf(run: () => unknown): readonly ConfigIssue[] {
  try {
    run()
  } catch (error) {
    if (error instanceof ConfigError) return error.issues
    throw error
  }
  throw new Error('expected a ConfigError, but the config loaded')
}

function errorOf(run: () => unknown): ConfigError {
  try {
    run()
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error('expected a ConfigError, but the config loaded')
}

describe('example configs load as written', () => {
  it('a config of consumer groups and cost tracking only (no providers) loads and serves from the mock', () => {
    const config = loadConfigFile(fixture('layered-caps.yaml'), { env: {} })
    expect(config.targets).toEqual([
      { id: 'mock', provider: 'mock', baseUrl: undefined, apiKey: undefined, apiKeyEnv: undefined, timeoutMs: 600_000, connectionsMax: 8_192 },
    ])
    expect(config.consumerGroups.map((g) => [g.name, g.teamId, g.apiKeyHash])).toEqual([
      ['engineering', 'team_engineering', sha256('kt_cg_engineering_abc123')],
      ['marketing', 'team_marketing', sha256('kt_cg_marketing_def456')],
    ])
    expect(config.costTracking).toEqual({
      enabled: true,
      walletEnforcement: true,
      budgetAlerts: [
        { thresholdPercent: 50, action: 'notify' },
        { thresholdPercent: 80, action: 'notify' },
        { thresholdPercent: 95, action: 'notify' },
        { thresholdPercent: 100, action: 'block' },
      ],
    })
  })

  it('that config routes to the real providers when their keys are in the environment', () => {
    const config = loadConfigFile(fixture('layered-caps.yaml'), { env: SECRETS })
    expect(config.targets.map((t) => [t.id, t.provider, t.baseUrl, t.apiKey])).toEqual([
      ['openai', 'openai', 'https://api.openai.com/v1', 'sk-test-openai'],
      ['anthropic', 'anthropic', 'https://api.anthropic.com', 'sk-ant-test'],
    ])
  })

  it('a config with an OpenAI target loads with its key resolved from OPENAI_API_KEY', () => {
    const config = loadConfigFile(fixture('token-budget.yaml'), { env: { OPENAI_API_KEY: 'sk-live' } })
    expect(config.targets).toEqual([
      {
        id: 'openai',
        provider: 'openai',
        baseUrl: 'https://api.openai.com/v1',
        apiKey: 'sk-live',
        apiKeyEnv: 'OPENAI_API_KEY',
        timeoutMs: 600_000,
        connectionsMax: 8_192,
        // OpenAI's own project default: `auto` is served at the standard tier.
        serviceTierDefault: 'default',
      },
    ])
    expect(config.consumerGroups).toHaveLength(1)
    expect(config.consumerGroups[0]).toMatchObject({
      name: 'marketing',
      apiKeyHash: sha256('kt_cg_marketing_prod'),
      teamId: 'team_marketing',
      orgId: 'default',
      environment: 'prod',
    })
    expect(config.costTracking.budgetAlerts.map((a) => a.thresholdPercent)).toEqual([50, 80, 95, 100])
    expect(config.source).toBe(fixture('token-budget.yaml'))
  })

  it('keeps the consumer key only as its sha256', () => {
    const config = loadConfigFile(fixture('token-budget.yaml'), { env: { OPENAI_API_KEY: 'sk-live' } })
    expect(JSON.stringify(config)).not.toContain('kt_cg_marketing_prod')
  })
})

describe('notifications.delivery', () => {
  it('sets the outbox retry policy', () => {
    const config = parseConfig('notifications: {delivery: {attempts_max: 3, backoff_base_ms: 200, backoff_cap_ms: 1000}}', 'x', { env: {} })
    expect(config.notificationDelivery).toEqual({ attemptsMax: 3, backoffBaseMs: 200, backoffCapMs: 1_000, pollIntervalMs: 1_000 })
  })

  it('refuses a cap below the base, naming the key', () => {
    expect(() => parseConfig('notifications: {delivery: {backoff_base_ms: 5000, backoff_cap_ms: 1000}}', 'x.yaml', { env: {} })).toThrow(
      /notifications\.delivery\.backoff_cap_ms: must not be below backoff_base_ms \(5000\), got 1000/,
    )
  })
})

describe('every section maps to the Config', () => {
  const config = loadConfigFile(fixture('full.yaml'), { env: SECRETS })

  it('server and storage', () => {
    expect(config.server).toEqual({ host: '0.0.0.0', port: 8080, bodyLimitBytes: 4 * 1024 * 1024, listenBacklog: 2048, metrics: { kind: 'open' } })
    expect(config.storage).toEqual({
      kind: 'postgres',
      postgresUrl: 'postgres://tollgate@db.internal:5432/tollgate',
      redisUrl: 'redis://cache.internal:6379/0',
    })
  })

  it('targets: base URLs without trailing slash, provider defaults, secrets from the environment', () => {
    expect(config.targets.map((t) => [t.id, t.baseUrl, t.apiKey, t.timeoutMs])).toEqual([
      ['openai', 'https://api.openai.com/v1', 'sk-test-openai', 600_000],
      ['claude', 'https://api.anthropic.com', 'sk-ant-test', 120_000],
      ['local', 'http://127.0.0.1:11434/v1', undefined, 600_000],
      ['mock', undefined, undefined, 600_000],
    ])
  })

  it('targets: the OpenAI project’s service tier for `auto`, on the OpenAI target only', () => {
    expect(config.targets.map((t) => [t.id, t.serviceTierDefault])).toEqual([
      ['openai', 'priority'],
      ['claude', undefined],
      ['local', undefined],
      ['mock', undefined],
    ])
  })

  it('consumer group: every field, key hashed, allowance in Micros', () => {
    expect(config.consumerGroups).toEqual([
      {
        name: 'support-bot',
        apiKeyHash: sha256('kt_support_bot_secret'),
        orgId: 'acme',
        teamId: 'team_support',
        userId: undefined,
        agentId: 'triage',
        environment: 'staging',
        endpointTag: 'ticket-summary',
        onInsufficientFunds: 'hold',
        holdTimeoutMs: 60_000,
        failMode: 'open',
        emergencyAllowanceMicros: 2_500_000,
        allowNamedUsers: false,
        defaultOutputTokens: undefined,
      },
    ])
  })

  it('cost tracking thresholds are sorted ascending', () => {
    expect(config.costTracking.budgetAlerts).toEqual([
      { thresholdPercent: 90, action: 'degrade' },
      { thresholdPercent: 100, action: 'block' },
    ])
  })

  it('models: prices in µ$ per Mtok, search fees in µ$ per 1,000 calls, upstream rename, degrade target', () => {
    expect(config.models).toEqual([
      {
        name: 'fast',
        target: 'openai',
        upstreamModel: 'gpt-4o-mini',
        pricing: {
          inputMicrosPerMtok: 150_000,
          outputMicrosPerMtok: 600_000,
          cacheReadMicrosPerMtok: 75_000,
          cacheWriteMicrosPerMtok: undefined,
          webSearchMicrosPerKcall: 27_500_000,
          fileSearchMicrosPerKcall: undefined,
        },
        degradeTo: undefined,
        outputTokensMax: 16_384,
      },
      {
        name: 'smart',
        target: 'claude',
        upstreamModel: 'claude-sonnet-4-5',
        pricing: undefined,
        degradeTo: 'fast',
        outputTokensMax: undefined,
      },
    ])
  })

  it('budgets: amounts in Micros, thresholds sorted, defaults for the rest', () => {
    expect(config.budgets[0]).toEqual({
      id: 'bud_marketing_monthly',
      name: 'Marketing Monthly Cap',
      scopeKind: 'team',
      scopeId: 'team_marketing',
      environment: 'prod',
      period: 'monthly',
      timezone: 'Europe/Paris',
      amountMicros: 500_000_000,
      alertThresholds: [50, 80, 95],
      thresholdActions: [{ thresholdPercent: 100, action: 'block' }],
      hardLimit: true,
      shadow: false,
      categories: ['copywriting'],
      owner: 'alice@example.com',
      channels: ['finance-slack'],
    })
    expect(config.budgets[1]).toMatchObject({
      id: undefined,
      timezone: 'UTC',
      amountMicros: 12_500_000,
      alertThresholds: [50, 80, 95],
      hardLimit: false,
      shadow: true,
      categories: [],
      channels: undefined,
    })
  })

  it('notification channels of every kind, secrets resolved', () => {
    expect(config.notificationChannels).toEqual([
      { id: 'ops-webhook', type: 'webhook', url: 'https://ops.example.com/hooks/tollgate', secret: 'whsec_test' },
      { id: 'finance-slack', type: 'slack', webhookUrl: SECRETS.SLACK_WEBHOOK_URL },
      {
        id: 'finance-email',
        type: 'email',
        smtpUrl: SECRETS.SMTP_URL,
        from: 'tollgate@example.com',
        to: ['finance@example.com'],
      },
    ])
  })

  it('reservations', () => {
    expect(config.reservations).toEqual({
      ttlMs: 900_000,
      sweepIntervalMs: 2_000,
      defaultOutputTokens: 2_048,
      tokenizerMaxBytes: 131_072,
    })
  })

  it('exports: retention and queue limits; the team’s default follows a smaller org limit', () => {
    const exports = (yaml: string) => parseConfig(yaml, 'x', { env: {} }).exports
    expect(exports(`exports: {retention_hours: 168, jobs_pending_max: 20, team_jobs_pending_max: 5}`)).toMatchObject({
      retentionHours: 168,
      jobsPendingMax: 20,
      teamJobsPendingMax: 5,
    })
    expect(exports(`exports: {jobs_pending_max: 2}`)).toMatchObject({ jobsPendingMax: 2, teamJobsPendingMax: 2 })
    expect(exports(`exports: {team_bytes_kept_max: 5000000, disk_free_min_bytes: 0}`)).toMatchObject({ teamBytesKeptMax: 5_000_000, diskFreeMinBytes: 0 })
  })

  it('canonicalises a time zone written in the wrong case', () => {
    const text = `budgets:
  - {name: b, scope: {kind: org, id: acme}, period: weekly, timezone: america/new_york, amount_usd: 10}`
    expect(parseConfig(text, 'inline', { env: {} }).budgets[0]?.timezone).toBe('America/New_York')
  })
})

describe('defaults', () => {
  const config = parseConfig(`version: '1'\n`, 'minimal.yaml', { env: {} })

  it('applies every default from defaults.ts to a minimal file', () => {
    expect(config).toEqual({
      source: 'minimal.yaml',
      server: { host: '127.0.0.1', port: 4100, bodyLimitBytes: 4_194_304, listenBacklog: 4096, metrics: { kind: 'open' } },
      storage: { kind: 'sqlite', path: './data/tollgate.db' },
      targets: [{ id: 'mock', provider: 'mock', baseUrl: undefined, apiKey: undefined, apiKeyEnv: undefined, timeoutMs: 600_000, connectionsMax: 8_192 }],
      consumerGroups: [],
      costTracking: { enabled: true, walletEnforcement: false, budgetAlerts: [] },
      models: [],
      budgets: [],
      notificationChannels: [],
      notificationDelivery: { attemptsMax: 8, backoffBaseMs: 5_000, backoffCapMs: 900_000, pollIntervalMs: 1_000 },
      reservations: { ttlMs: 600_000, sweepIntervalMs: 5_000, defaultOutputTokens: 4_096, tokenizerMaxBytes: 65_536 },
      endpointTiers: {},
      escalationChannels: [],
      exports: {
        dir: undefined,
        leaseMs: 30_000,
        retentionHours: 24,
        jobsPendingMax: 10,
        teamJobsPendingMax: 3,
        teamFilesKeptMax: 20,
        teamBytesKeptMax: 1_073_741_824,
        diskFreeMinBytes: 268_435_456,
      },
    } satisfies Config)
  })

  it('consumer group defaults: org default, prod, refuse, 30 s hold, fail closed, no allowance', () => {
    const group = parseConfig(`consumer_groups: [{name: a, api_key: kt_a}]`, 'x', { env: {} }).consumerGroups[0]
    expect(group).toEqual({
      name: 'a',
      apiKeyHash: sha256('kt_a'),
      orgId: DEFAULTS.consumerGroup.orgId,
      teamId: undefined,
      userId: undefined,
      agentId: undefined,
      environment: 'prod',
      endpointTag: undefined,
      onInsufficientFunds: 'refuse',
      holdTimeoutMs: 30_000,
      failMode: 'closed',
      emergencyAllowanceMicros: 0,
      allowNamedUsers: true,
      defaultOutputTokens: undefined,
    })
  })

  it('accepts version as the number 1 and the sqlite storage form', () => {
    const config = parseConfig(`version: 1\nstorage: {sqlite: /var/lib/tollgate.db}`, 'x', { env: {} })
    expect(config.storage).toEqual({ kind: 'sqlite', path: '/var/lib/tollgate.db' })
  })

  it('builtInConfig: mock without keys, real providers with them, no consumer groups', () => {
    const bare = builtInConfig({})
    expect(bare.source).toBe('<built-in>')
    expect(bare.targets.map((t) => t.provider)).toEqual(['mock'])
    expect(bare.consumerGroups).toEqual([])
    expect(bare.costTracking).toEqual({ enabled: true, walletEnforcement: false, budgetAlerts: [] })
    expect(bare.storage).toEqual({ kind: 'sqlite', path: './data/tollgate.db' })
    expect(bare.server).toMatchObject({ host: '127.0.0.1', port: 4100 })
    expect(builtInConfig({ ANTHROPIC_API_KEY: 'sk-ant' }).targets).toEqual([
      {
        id: 'anthropic',
        provider: 'anthropic',
        baseUrl: 'https://api.anthropic.com',
        apiKey: 'sk-ant',
        apiKeyEnv: 'ANTHROPIC_API_KEY',
        timeoutMs: 600_000,
        connectionsMax: 8_192,
      },
    ])
    expect(builtInConfig({ OPENAI_API_KEY: 'sk', ANTHROPIC_API_KEY: 'sk-ant' }).targets.map((t) => t.id)).toEqual(['openai', 'anthropic'])
  })
})

describe('the Config is deep-frozen', () => {
  const config = loadConfigFile(fixture('full.yaml'), { env: SECRETS })

  it('rejects writes at every depth', () => {
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.targets)).toBe(true)
    expect(Object.isFrozen(config.targets[0])).toBe(true)
    expect(Object.isFrozen(config.budgets[0]?.alertThresholds)).toBe(true)
    expect(Object.isFrozen(config.models[0]?.pricing)).toBe(true)
    expect(() => {
      ;(config.server as { port: number }).port = 1
    }).toThrow(TypeError)
    expect(() => {
      ;(config.costTracking.budgetAlerts as unknown as unknown[]).push({})
    }).toThrow(TypeError)
  })

  it('does not freeze or share the defaults object with the Config', () => {
    const a = parseConfig(`budgets: [{name: b, scope: {kind: org, id: o}, period: daily, amount_usd: 1}]`, 'x', { env: {} })
    expect(a.budgets[0]?.alertThresholds).not.toBe(DEFAULTS.budget.alertThresholds)
    expect(a.budgets[0]?.alertThresholds).toEqual([50, 80, 95])
  })
})

/**
 * Realistic mistakes. Each row is a file a user could write; the test asserts the complete list of
 * issues, so a mistake is reported once, at the key to fix, with what was expected.
 */
const MISTAKES: ReadonlyArray<{
  mistake: string
  yaml: string
  env?: NodeJS.ProcessEnv
  requireSecrets?: boolean
  issues: ConfigIssue[]
}> = [
  {
    mistake: 'an unknown provider',
    yaml: `providers:
  targets:
    - {id: openai, provider: openai, secret_key_ref: {env: OPENAI_API_KEY}}
    - {id: azure, provider: azure}`,
    issues: [
      {
        path: 'providers.targets[1].provider',
        message: 'expected one of openai | anthropic | openai-compatible | mock, got "azure"',
      },
    ],
  },
  {
    mistake: 'a service tier default OpenAI projects cannot be set to',
    yaml: `providers:
  targets:
    - {id: openai, provider: openai, service_tier_default: auto}`,
    issues: [{ path: 'providers.targets[0].service_tier_default', message: 'expected one of default | flex | priority | scale, got "auto"' }],
  },
  {
    mistake: 'a service tier default on targets that are not OpenAI',
    yaml: `providers:
  targets:
    - {id: claude, provider: anthropic, service_tier_default: priority}
    - {id: local, provider: openai-compatible, base_url: 'http://127.0.0.1:11434/v1', service_tier_default: default}`,
    issues: [
      {
        path: 'providers.targets[0].service_tier_default',
        message: "only an openai target has a service tier default (this target's provider is anthropic); remove the key",
      },
      {
        path: 'providers.targets[1].service_tier_default',
        message: "only an openai target has a service tier default (this target's provider is openai-compatible); remove the key",
      },
    ],
  },
  {
    mistake: 'a listen backlog of 0',
    yaml: `server: {listen_backlog: 0}`,
    issues: [{ path: 'server.listen_backlog', message: 'must be at least 1, got 0' }],
  },
  {
    mistake: 'a typo in a threshold key',
    yaml: `cost_tracking:
  budget_alerts:
    - {threshold_percent: 50, action: notify}
    - {threshold_percent: 80, action: notify}
    - {treshold_percent: 100, action: block}`,
    issues: [
      {
        path: 'cost_tracking.budget_alerts[2]',
        message: 'unknown key "treshold_percent" (did you mean "threshold_percent"?)',
      },
    ],
  },
  {
    mistake: 'a threshold written as a string "50%"',
    yaml: `cost_tracking:
  budget_alerts:
    - threshold_percent: "50%"
      action: notify`,
    issues: [{ path: 'cost_tracking.budget_alerts[0].threshold_percent', message: 'expected number, got string "50%"' }],
  },
  {
    mistake: 'a threshold of 0 and an unknown action',
    yaml: `cost_tracking:
  budget_alerts:
    - {threshold_percent: 0, action: alert}`,
    issues: [
      { path: 'cost_tracking.budget_alerts[0].threshold_percent', message: 'must be at least 1, got 0' },
      { path: 'cost_tracking.budget_alerts[0].action', message: 'expected one of notify | degrade | block, got "alert"' },
    ],
  },
  {
    mistake: 'the same threshold twice',
    yaml: `cost_tracking:
  budget_alerts:
    - {threshold_percent: 80, action: notify}
    - {threshold_percent: 80, action: block}`,
    issues: [
      {
        path: 'cost_tracking.budget_alerts[1].threshold_percent',
        message: 'duplicate threshold_percent 80 (already used at cost_tracking.budget_alerts[0].threshold_percent)',
      },
    ],
  },
  {
    mistake: 'a negative budget amount',
    yaml: `budgets:
  - {name: Marketing, scope: {kind: team, id: team_marketing}, period: monthly, amount_usd: -500}`,
    issues: [{ path: 'budgets[0].amount_usd', message: 'expected a positive amount of USD with at most 6 decimals and at most 1000000000, got number -500' }],
  },
  {
    mistake: 'a budget amount with more precision than a micro-dollar',
    yaml: `budgets:
  - {name: Marketing, scope: {kind: team, id: t}, period: monthly, amount_usd: "10.0000001"}`,
    issues: [
      {
        path: 'budgets[0].amount_usd',
        message: 'expected a positive amount of USD with at most 6 decimals and at most 1000000000, got string "10.0000001"',
      },
    ],
  },
  {
    mistake: 'two targets with the same id',
    yaml: `providers:
  targets:
    - {id: main, provider: mock}
    - {id: main, provider: openai-compatible, base_url: http://localhost:8000/v1}`,
    issues: [{ path: 'providers.targets[1].id', message: 'duplicate target id "main" (already used at providers.targets[0].id)' }],
  },
  {
    mistake: 'a consumer group naming an unknown wallet field',
    yaml: `consumer_groups:
  - name: marketing
    api_key: kt_cg_marketing_prod
    wallet_team: team_marketing`,
    issues: [{ path: 'consumer_groups[0]', message: 'unknown key "wallet_team" (did you mean "wallet_team_id"?)' }],
  },
  {
    mistake: 'a camelCase key',
    yaml: `consumer_groups:
  - {name: marketing, apiKey: kt_cg_marketing_prod}`,
    issues: [{ path: 'consumer_groups[0]', message: 'unknown key "apiKey" (did you mean "api_key"?)' }],
  },
  {
    mistake: 'a models entry pointing at an unknown target',
    yaml: `providers:
  targets:
    - {id: openai, provider: openai, secret_key_ref: {env: OPENAI_API_KEY}}
    - {id: mock, provider: mock}
models:
  - {name: fast, target: openia, upstream_model: gpt-4o-mini}`,
    issues: [{ path: 'models[0].target', message: 'unknown target "openia" (targets: openai, mock)' }],
  },
  {
    mistake: 'search fees that are negative, a string, too fine for whole micro-dollars, or beyond $1 a call',
    yaml: `models:
  - {name: a, pricing: {input_mtok: 1, output_mtok: 2, web_search_kcall: -10, file_search_kcall: "$2.50"}}
  - {name: b, pricing: {input_mtok: 1, output_mtok: 2, web_search_kcall: 5000}}`,
    issues: [
      { path: 'models[0].pricing.web_search_kcall', message: 'must be at least 0, got -10' },
      { path: 'models[0].pricing.file_search_kcall', message: 'expected number, got string "$2.50"' },
      { path: 'models[1].pricing.web_search_kcall', message: 'must be at most 1000, got 5000' },
    ],
  },
  {
    mistake: 'a search fee finer than a micro-dollar per 1,000 calls',
    yaml: `models:
  - {name: c, pricing: {input_mtok: 1, output_mtok: 2, web_search_kcall: 35, file_search_kcall: 2.5000001}}`,
    issues: [
      {
        path: 'models[0].pricing.file_search_kcall',
        message: 'expected USD per 1,000 calls in whole micro-dollars (at most 6 decimals), got 2.5000001',
      },
    ],
  },
  {
    mistake: 'a budget in a time zone that does not exist',
    yaml: `budgets:
  - {name: b, scope: {kind: org, id: acme}, period: monthly, timezone: Europe/Pariss, amount_usd: 100}`,
    issues: [
      {
        path: 'budgets[0].timezone',
        message: 'unknown time zone "Europe/Pariss" (expected an IANA name such as "Europe/Paris" or "UTC")',
      },
    ],
  },
  {
    mistake: 'secrets pasted where their references or URLs belong: named, never echoed',
    yaml: `providers:
  targets:
    - {id: openai, provider: openai, secret_key_ref: sk-proj-PASTEDSECRET1234567890}
consumer_groups:
  - {name: a, api_key_ref: tg_live_PASTEDCONSUMERSECRET, team_id: t}
notifications:
  channels:
    - {id: hook, type: webhook, url: "htps://user:PASTEDWEBHOOKPASS@example.com/x"}
    - {id: sl, type: slack, webhook_url: "hooks.slack.com/services/T000/B000/PASTEDSLACKSECRET"}`,
    issues: [
      { path: 'providers.targets[0].secret_key_ref', message: 'expected { env: NAME }, the environment variable holding the secret (the value is not shown)' },
      { path: 'consumer_groups[0].api_key_ref', message: 'expected { env: NAME }, the environment variable holding the secret (the value is not shown)' },
      { path: 'notifications.channels[0].url', message: 'expected an http(s) URL (the value is not shown: it may hold a secret)' },
      { path: 'notifications.channels[1].webhook_url', message: 'expected an http(s) URL (the value is not shown: it may hold a secret)' },
    ],
  },
  {
    mistake: 'a provider key variable that is not set',
    yaml: `providers:
  targets:
    - {id: openai, provider: openai, secret_key_ref: {env: OPENAI_API_KEY}}`,
    env: {},
    issues: [{ path: 'providers.targets[0].secret_key_ref.env', message: 'environment variable OPENAI_API_KEY is not set' }],
  },
  {
    mistake: 'an OpenAI target with no secret_key_ref and no OPENAI_API_KEY',
    yaml: `providers:
  targets:
    - {id: openai, provider: openai}`,
    env: {},
    issues: [
      {
        path: 'providers.targets[0]',
        message: 'environment variable OPENAI_API_KEY is not set (read because the target has no secret_key_ref)',
      },
    ],
  },
  {
    mistake: 'a consumer key variable that is empty',
    yaml: `consumer_groups:
  - {name: bot, api_key_ref: {env: BOT_KEY}}`,
    env: { BOT_KEY: '' },
    issues: [{ path: 'consumer_groups[0].api_key_ref.env', message: 'environment variable BOT_KEY is empty' }],
  },
  {
    mistake: 'the secret pasted where its variable name belongs (not echoed back)',
    yaml: `providers:
  targets:
    - {id: openai, provider: openai, secret_key_ref: {env: sk-proj-abc123}}`,
    issues: [
      {
        path: 'providers.targets[0].secret_key_ref.env',
        message: 'expected the name of an environment variable (letters, digits and _), not its value',
      },
    ],
  },
  {
    mistake: 'a secret that is also a valid variable name, pasted as the name (named by its key, never echoed)',
    yaml: `providers:
  targets:
    - {id: openai, provider: openai, secret_key_ref: {env: sk_live_51HqPASTEDsecret9}}
    - {id: claude, provider: anthropic, secret_key_ref: {env: AKIAPASTEDSECRET7XQ2}}
consumer_groups:
  - {name: a, api_key_ref: {env: BOT_KEY}}
notifications:
  channels:
    - {id: hook, type: webhook, url: "https://ops.example.com/hook", secret_ref: {env: whsec_PASTEDsecret123}}`,
    env: {},
    issues: [
      {
        path: 'providers.targets[0].secret_key_ref.env',
        message:
          'the environment variable named here (its name is not shown: it does not look like a variable name and may be a pasted secret) is not set; if it is the secret itself, set it in a variable (export MY_SECRET=…), write { env: MY_SECRET } here, and rotate the secret: it was written in the file',
      },
      {
        path: 'providers.targets[1].secret_key_ref.env',
        message:
          'the environment variable named here (its name is not shown: it does not look like a variable name and may be a pasted secret) is not set; if it is the secret itself, set it in a variable (export MY_SECRET=…), write { env: MY_SECRET } here, and rotate the secret: it was written in the file',
      },
      { path: 'consumer_groups[0].api_key_ref.env', message: 'environment variable BOT_KEY is not set' },
      {
        path: 'notifications.channels[0].secret_ref.env',
        message:
          'the environment variable named here (its name is not shown: it does not look like a variable name and may be a pasted secret) is not set; if it is the secret itself, set it in a variable (export MY_SECRET=…), write { env: MY_SECRET } here, and rotate the secret: it was written in the file',
      },
    ],
  },
  {
    mistake: 'two consumer groups sharing one key (the key is not printed)',
    yaml: `consumer_groups:
  - {name: a, api_key: kt_shared_key}
  - {name: b, api_key: kt_shared_key}`,
    issues: [{ path: 'consumer_groups[1].api_key', message: 'the same key is already used by consumer group "a"' }],
  },
  {
    mistake: 'a consumer group with neither api_key nor api_key_ref, and one with both',
    yaml: `consumer_groups:
  - {name: a}
  - {name: b, api_key: kt_b, api_key_ref: {env: B_KEY}}`,
    issues: [
      { path: 'consumer_groups[0]', message: 'a consumer group needs api_key or api_key_ref: {env: NAME}' },
      { path: 'consumer_groups[1]', message: 'set api_key or api_key_ref, not both' },
    ],
  },
  {
    mistake: 'a hold timeout above the 5-minute limit',
    yaml: `consumer_groups:
  - {name: a, api_key: kt_a, on_insufficient_funds: hold, hold_timeout_ms: 600000}`,
    issues: [{ path: 'consumer_groups[0].hold_timeout_ms', message: 'must be at most 300000, got 600000' }],
  },
  {
    mistake: 'postgres without redis',
    yaml: `storage:
  postgres: postgres://tollgate@localhost/tollgate`,
    issues: [{ path: 'storage.redis', message: 'required together with storage.postgres' }],
  },
  {
    mistake: 'an openai-compatible target without base_url',
    yaml: `providers:
  targets:
    - {id: vllm, provider: openai-compatible}`,
    issues: [{ path: 'providers.targets[0].base_url', message: 'required' }],
  },
  {
    mistake: 'a budget naming a channel that is not configured',
    yaml: `notifications:
  channels:
    - {id: ops-webhook, type: webhook, url: https://ops.example.com/hook}
budgets:
  - {name: b, scope: {kind: team, id: t}, period: monthly, amount_usd: 5, channels: [ops-webhok]}`,
    issues: [{ path: 'budgets[0].channels[0]', message: 'unknown notification channel "ops-webhok" (channels: ops-webhook)' }],
  },
  {
    mistake: 'an unknown channel type and an unknown budget period',
    yaml: `notifications:
  channels:
    - {id: teams, type: msteams, url: https://x.example.com}
budgets:
  - {name: b, scope: {kind: team, id: t}, period: biweekly, amount_usd: 5}`,
    issues: [
      { path: 'notifications.channels[0].type', message: 'expected one of webhook | slack | email, got "msteams"' },
      { path: 'budgets[0].period', message: 'expected one of daily | weekly | monthly | quarterly | yearly, got "biweekly"' },
    ],
  },
  {
    mistake: 'a wrong version and an unknown top-level section',
    yaml: `version: '2'
budget_alerts: []`,
    issues: [
      { path: 'version', message: `expected '1', got string "2"` },
      { path: '', message: 'unknown key "budget_alerts"' },
    ],
  },
  {
    mistake: 'a reservation TTL shorter than a target timeout',
    yaml: `reservations: {ttl_ms: 60000}`,
    env: {},
    issues: [
      {
        path: 'reservations.ttl_ms',
        message: 'must not be shorter than the longest target timeout (600000 ms, target "mock"), got 60000',
      },
    ],
  },
  {
    mistake: 'export retention of 0 hours, a fractional queue limit',
    yaml: `exports: {retention_hours: 0, jobs_pending_max: 2.5}`,
    issues: [
      { path: 'exports.retention_hours', message: 'must be at least 1, got 0' },
      { path: 'exports.jobs_pending_max', message: 'expected integer, got number 2.5' },
    ],
  },
  {
    mistake: 'export retention above a year',
    yaml: `exports: {retention_hours: 8761}`,
    issues: [{ path: 'exports.retention_hours', message: 'must be at most 8760, got 8761' }],
  },
  {
    mistake: 'a team’s export queue limit above the org’s',
    yaml: `exports: {jobs_pending_max: 4, team_jobs_pending_max: 5}`,
    issues: [{ path: 'exports.team_jobs_pending_max', message: 'must not be above exports.jobs_pending_max (4), got 5' }],
  },
  {
    mistake: 'an export byte quota of 0, a free-space minimum written with a unit, a negative one',
    yaml: `exports: {team_bytes_kept_max: 0, disk_free_min_bytes: 256MiB}`,
    issues: [
      { path: 'exports.team_bytes_kept_max', message: 'must be at least 1, got 0' },
      { path: 'exports.disk_free_min_bytes', message: 'expected number, got string "256MiB"' },
    ],
  },
  {
    mistake: 'a negative free-space minimum, a fractional byte quota',
    yaml: `exports: {disk_free_min_bytes: -1, team_bytes_kept_max: 1.5}`,
    issues: [
      { path: 'exports.team_bytes_kept_max', message: 'expected integer, got number 1.5' },
      { path: 'exports.disk_free_min_bytes', message: 'must be at least 0, got -1' },
    ],
  },
  {
    mistake: 'a list where a mapping belongs',
    yaml: `providers:
  - {id: openai, provider: openai}`,
    issues: [{ path: 'providers', message: 'expected a mapping, got a list' }],
  },
]

describe('realistic mistakes are reported at the key to fix', () => {
  it.each(MISTAKES)('$mistake', ({ yaml, env, requireSecrets, issues }) => {
    const options = { env: env ?? SECRETS, ...(requireSecrets === undefined ? {} : { requireSecrets }) }
    expect(issuesOf(() => parseConfig(yaml, './tollgate.yaml', options))).toEqual(issues)
  })

  it('lists every issue of a file, in file order', () => {
    const yaml = `cost_tracking:
  budget_alerts:
    - {threshold_percent: 50, action: notify}
    - {threshold_percent: 100, action: block}
    - {treshold_percent: 80, action: notify}
providers:
  targets:
    - {id: openai, provider: openai}
    - {id: x, provider: azure}`
    expect(errorOf(() => parseConfig(yaml, './tollgate.yaml', { env: {} })).format()).toBe(
      [
        'tollgate: ./tollgate.yaml is not valid',
        '  cost_tracking.budget_alerts[2]: unknown key "treshold_percent" (did you mean "threshold_percent"?)',
        '  providers.targets[1].provider: expected one of openai | anthropic | openai-compatible | mock, got "azure"',
      ].join('\n'),
    )
  })
})

describe('secrets with requireSecrets: false (tollgate config check)', () => {
  it('loads with unresolved secrets left undefined', () => {
    const config = loadConfigFile(fixture('full.yaml'), { env: {}, requireSecrets: false })
    expect(config.targets[0]?.apiKey).toBeUndefined()
    expect(config.targets[0]?.apiKeyEnv).toBe('OPENAI_API_KEY')
    expect(config.notificationChannels[0]).toMatchObject({ type: 'webhook', secret: undefined })
  })

  it('still reports every shape and reference error', () => {
    const yaml = `providers:
  targets:
    - {id: openai, provider: openai, secret_key_ref: {env: OPENAI_API_KEY}}
models:
  - {name: m, target: nope}`
    expect(issuesOf(() => parseConfig(yaml, 'x', { env: {}, requireSecrets: false }))).toEqual([
      { path: 'models[0].target', message: 'unknown target "nope" (targets: openai)' },
    ])
  })
})

describe('files and YAML syntax', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-config-'))

  it('a missing file is a ConfigError naming the file and the system error', () => {
    const missing = join(dir, 'nope.yaml')
    const error = errorOf(() => loadConfigFile(missing, { env: {} }))
    expect(error.format()).toBe(`tollgate: cannot read ${missing}: ENOENT: no such file or directory`)
    expect(error.source).toBe(missing)
  })

  it('a YAML syntax error gives the line and column', () => {
    const file = join(dir, 'broken.yaml')
    writeFileSync(file, "version: '1'\nproviders:\n  targets: [\n    {id: a\n")
    const issues = issuesOf(() => loadConfigFile(file, { env: {} }))
    expect(issues.length).toBeGreaterThan(0)
    expect(issues[0]?.path).toMatch(/^line \d+, column \d+$/)
    expect(issues[0]?.message).toMatch(/^YAML syntax error: /)
  })

  it('a key written twice is a syntax error', () => {
    const issues = issuesOf(() => parseConfig(`server: {port: 1}\nserver: {port: 2}\n`, 'x', { env: {} }))
    expect(issues).toEqual([{ path: 'line 2, column 1', message: 'YAML syntax error: Map keys must be unique' }])
  })

  it('an empty file says so', () => {
    expect(issuesOf(() => parseConfig('# nothing here\n', 'x', { env: {} }))).toEqual([
      { path: '', message: `the file is empty; expected a mapping such as "version: '1'"` },
    ])
  })

  it('format() has no stack trace', () => {
    const text = errorOf(() => parseConfig(`version: 3`, './tollgate.yaml', { env: {} })).format()
    expect(text).toBe(`tollgate: ./tollgate.yaml is not valid\n  version: expected '1', got number 3`)
    expect(text).not.toMatch(/\n\s+at /)
  })
})

describe('server.metrics_token_ref', () => {
  const yaml = `server: {metrics_token_ref: {env: TG_METRICS_TOKEN}}\n`

  it('reads the token from the variable it names', () => {
    const config = parseConfig(yaml, 'metrics.yaml', { env: { TG_METRICS_TOKEN: 'scrape-0123456789abcdef' } })
    expect(config.server.metrics).toEqual({ kind: 'token', token: 'scrape-0123456789abcdef' })
  })

  it('refuses to start when the variable is unset, or holds a token short enough to guess, without echoing it', () => {
    expect(issuesOf(() => parseConfig(yaml, 'metrics.yaml', { env: {} }))).toEqual([
      expect.objectContaining({ path: 'server.metrics_token_ref.env', message: expect.stringMatching(/TG_METRICS_TOKEN is not set/) }),
    ])
    const short = errorOf(() => parseConfig(yaml, 'metrics.yaml', { env: { TG_METRICS_TOKEN: 'hunter2secret' } }))
    expect(short.issues).toEqual([expect.objectContaining({ path: 'server.metrics_token_ref.env', message: expect.stringMatching(/at least 16 characters/) })])
    expect(short.message).not.toContain('hunter2secret')
  })

  it('without secrets (config check), a configured token stays required: every scrape is refused', () => {
    const config = parseConfig(yaml, 'metrics.yaml', { env: {}, requireSecrets: false })
    expect(config.server.metrics).toEqual({ kind: 'token', token: undefined })
  })
})
