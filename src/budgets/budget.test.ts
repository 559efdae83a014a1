/** Budget API bodies (defaults, refusals with the path and what was expected) and scope matching. */
import { describe, expect, it } from 'vitest'
import { budgetCreateBodySchema, budgetPatchBodySchema, matchesCall, specFromCreateBody, type Budget } from './budget.js'

const base = { name: 'b', scope: { kind: 'team', id: 'team_marketing' }, period: 'monthly', amount_usd: 500 }

describe('budgetCreateBodySchema', () => {
  it('applies the defaults and keeps money exact', () => {
    const spec = specFromCreateBody(budgetCreateBodySchema.parse({ ...base, amount_usd: '0.1' }), 'org_acme')
    expect(spec).toMatchObject({ amountMicros: 100_000, alertThresholds: [50, 80, 95], timezone: 'UTC', hardLimit: false, shadow: false, channels: undefined })
  })

  it('covers the whole org when no scope is given, and keeps a given scope', () => {
    const { scope: _scope, ...unscoped } = base
    expect(specFromCreateBody(budgetCreateBodySchema.parse(unscoped), 'org_acme')).toMatchObject({
      scopeKind: 'org',
      scopeId: 'org_acme',
      environment: undefined,
    })
    expect(specFromCreateBody(budgetCreateBodySchema.parse(base), 'org_acme')).toMatchObject({ scopeKind: 'team', scopeId: 'team_marketing' })
  })

  it.each<[string, Record<string, unknown>, string]>([
    ['zero amount', { amount_usd: 0 }, 'amount_usd'],
    ['negative amount', { amount_usd: -5 }, 'amount_usd'],
    ['seven decimals', { amount_usd: '1.0000001' }, 'amount_usd'],
    ['unknown zone', { timezone: 'Mars/Base' }, 'timezone'],
    ['threshold 0', { alert_thresholds: [0] }, 'alert_thresholds.0'],
    ['threshold 1001', { alert_thresholds: [1001] }, 'alert_thresholds.0'],
    ['fractional threshold', { alert_thresholds: [50.5] }, 'alert_thresholds.0'],
    ['bad scope kind', { scope: { kind: 'galaxy', id: 'x' } }, 'scope.kind'],
    ['unknown key', { treshold: 1 }, ''],
    ['bad action', { threshold_actions: [{ threshold_percent: 90, action: 'explode' }] }, 'threshold_actions.0.action'],
  ])('refuses %s at %s', (_name, override, path) => {
    const result = budgetCreateBodySchema.safeParse({ ...base, ...override })
    expect(result.success).toBe(false)
    expect(result.error!.issues[0]!.path.join('.')).toBe(path)
    expect(result.error!.issues[0]!.message.length).toBeGreaterThan(5)
  })

  it('accepts thresholds at the edges 1 and 1000', () => {
    expect(budgetCreateBodySchema.safeParse({ ...base, alert_thresholds: [1, 1000] }).success).toBe(true)
  })

  it('PATCH accepts any subset and null to clear channels', () => {
    expect(budgetPatchBodySchema.parse({ channels: null })).toEqual({ channels: null })
    expect(budgetPatchBodySchema.safeParse({ amount_usd: 0 }).success).toBe(false)
  })
})

describe('matchesCall', () => {
  const attribution = {
    orgId: 'o',
    teamId: 't',
    userId: 'u',
    userFromKey: true,
    agentId: 'a',
    keyName: 'k',
    endpointTag: 'e',
    promptVersion: undefined,
    environment: 'prod',
  }
  const budget = (scopeKind: Budget['scopeKind'], scopeId: string, environment?: string) => ({ orgId: 'o', scopeKind, scopeId, environment }) as Budget
  it.each<[Budget['scopeKind'], string, boolean]>([
    ['org', 'o', true],
    ['team', 't', true],
    ['user', 'u', true],
    ['agent', 'a', true],
    ['key', 'k', true],
    ['endpoint', 'e', true],
    ['model', 'gpt-4o', true],
    ['provider', 'openai', true],
    ['team', 'other', false],
    ['model', 'o3', false],
  ])('%s:%s → %s', (kind, id, expected) => {
    expect(matchesCall(budget(kind, id), attribution, 'gpt-4o', 'openai')).toBe(expected)
  })
  it('filters by environment when the budget sets one', () => {
    expect(matchesCall(budget('team', 't', 'staging'), attribution, 'm', 'p')).toBe(false)
    expect(matchesCall(budget('team', 't', 'prod'), attribution, 'm', 'p')).toBe(true)
  })
})
