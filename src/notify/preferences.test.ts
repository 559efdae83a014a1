/** Who gets what: a budget's channels filtered by per-user/role preferences. */
import { describe, expect, it } from 'vitest'
import { notificationPreferencesBodySchema, preferenceFromBody, resolveChannels } from './preferences.js'

const NOW = Date.UTC(2026, 10, 15)
const pref = (kinds: Record<string, string[]>) =>
  preferenceFromBody('org_acme', notificationPreferencesBodySchema.parse({ subject: { type: 'role', id: 'admin' }, kinds }), NOW)

describe('resolveChannels', () => {
  const all = ['ops-webhook', 'finance-slack', 'finance-email']
  it.each<[string, Record<string, string[]>[], string, string[]]>([
    ['no preferences: every candidate channel', [], 'forecast', all],
    ['a channel kept for thresholds only drops forecasts', [{ threshold: ['finance-email'] }], 'forecast', ['ops-webhook', 'finance-slack']],
    ['…and keeps thresholds', [{ threshold: ['finance-email'] }], 'threshold', all],
    ['any subject turning a channel on keeps it', [{ threshold: ['finance-slack'] }, { spike: ['finance-slack'] }], 'spike', all],
  ])('%s', (_name, prefs, kind, expected) => {
    expect(resolveChannels(kind as 'threshold', all, prefs.map(pref))).toEqual(expected)
  })

  it('refuses unknown kinds and keys with a clear message', () => {
    const result = notificationPreferencesBodySchema.safeParse({ subject: { type: 'team', id: 'x' }, kinds: { everything: [] } })
    expect(result.success).toBe(false)
    expect(result.error!.issues.map((i) => i.path.join('.'))).toEqual(['subject.type', 'kinds'])
  })
})
