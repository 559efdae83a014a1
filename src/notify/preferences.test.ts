/** Who gets what: a budget's channels filtered by per-user/role preferences, keyed by notification type. */
import { describe, expect, it } from 'vitest'
import { channelsByTypeOf, notificationPreferencesBodySchema, preferenceFromBody, resolveChannels } from './preferences.js'
import type { NotificationType } from './notification.js'

const NOW = Date.UTC(2026, 10, 15)
const pref = (types: Record<string, string[]>) =>
  preferenceFromBody('org_acme', notificationPreferencesBodySchema.parse({ subject: { type: 'role', id: 'admin' }, types }), NOW)

describe('resolveChannels', () => {
  const all = ['ops-webhook', 'finance-slack', 'finance-email']
  it.each<[string, Record<string, string[]>[], NotificationType, string[]]>([
    ['no preferences: every candidate channel', [], 'budget.forecast', all],
    ['a channel kept for thresholds only drops forecasts', [{ 'budget.threshold': ['finance-email'] }], 'budget.forecast', ['ops-webhook', 'finance-slack']],
    ['…and keeps thresholds', [{ 'budget.threshold': ['finance-email'] }], 'budget.threshold', all],
    ['…but not wallet thresholds, another type', [{ 'budget.threshold': ['finance-email'] }], 'wallet.threshold', ['ops-webhook', 'finance-slack']],
    ['any subject turning a channel on keeps it', [{ 'budget.threshold': ['finance-slack'] }, { 'budget.spike': ['finance-slack'] }], 'budget.spike', all],
  ])('%s', (_name, prefs, type, expected) => {
    expect(resolveChannels(type, all, prefs.map(pref))).toEqual(expected)
  })

  it('refuses unknown types and keys with a clear message', () => {
    const result = notificationPreferencesBodySchema.safeParse({ subject: { type: 'team', id: 'x' }, types: { everything: [] } })
    expect(result.success).toBe(false)
    expect(result.error!.issues.map((i) => i.path.join('.'))).toEqual(['subject.type', 'types'])
  })

  it('reads preferences stored with the old coarse kinds as the types they stood for', () => {
    expect(channelsByTypeOf({ threshold: ['a'], ticket: ['b'] })).toEqual({
      'budget.threshold': ['a'],
      'wallet.threshold': ['a'],
      'ticket.created': ['b'],
      'ticket.digest': ['b'],
      'ticket.resolved': ['b'],
    })
  })
})
