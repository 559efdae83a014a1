/** Back-off policy: exponential from the base, capped, jitter never below half nor above the cap. */
import { describe, expect, it } from 'vitest'
import { retryDelayMs } from './outbox.js'

const policy = { outboxAttemptsMax: 8, backoffBaseMs: 1_000, backoffCapMs: 60_000 }

describe('retryDelayMs', () => {
  it.each([
    [1, 0, 500],
    [1, 1, 1_000],
    [2, 0, 1_000],
    [3, 1, 4_000],
    [7, 1, 60_000],
    [30, 0.5, 45_000],
    [1_000, 1, 60_000],
  ])('after %i failures with jitter %f waits %i ms', (attempts, random, expected) => {
    expect(retryDelayMs(attempts, policy, () => random)).toBe(expected)
  })
})

describe('inbox', () => {
  it('lists per org newest first, filters unread, and marks read once', async () => {
    const { openNotifyDb, tempDbPath } = await import('../../test/integration/notify-support.js')
    const { SqliteNotifyStore } = await import('../store/sqlite/notify-store.js')
    const { newNotification } = await import('./notification.js')
    const store = new SqliteNotifyStore(openNotifyDb(tempDbPath()))
    const first = newNotification('budget.threshold', 'org_a', 'team_x', { scope: 'team:x' }, 1_000)
    const second = newNotification('budget.forecast', 'org_a', undefined, { scope: 'org:org_a' }, 2_000)
    const foreign = newNotification('budget.threshold', 'org_b', 'team_y', { scope: 'team:y' }, 3_000)
    for (const n of [first, second, foreign]) await store.enqueue(n, [], n.createdAtMs)
    const all = await store.listInbox('org_a', { unreadOnly: false, limit: 10, beforeId: undefined, teamId: undefined })
    expect(all.map((e) => e.notification.id)).toEqual([second.id, first.id])
    expect(await store.markRead('org_b', first.id, 5_000, undefined)).toBe(false)
    // A team's inbox: another team's notice is not there to mark.
    expect(await store.markRead('org_a', first.id, 5_000, 'team_other')).toBe(false)
    expect(await store.markRead('org_a', first.id, 5_000, 'team_x')).toBe(true)
    expect(await store.markRead('org_a', first.id, 9_000, undefined)).toBe(true)
    const teamInbox = await store.listInbox('org_a', { unreadOnly: false, limit: 10, beforeId: undefined, teamId: 'team_x' })
    expect(teamInbox.map((e) => e.notification.id)).toEqual([first.id])
    const unread = await store.listInbox('org_a', { unreadOnly: true, limit: 10, beforeId: undefined, teamId: undefined })
    expect(unread.map((e) => e.notification.id)).toEqual([second.id])
    const read = await store.listInbox('org_a', { unreadOnly: false, limit: 10, beforeId: second.id, teamId: undefined })
    expect(read.map((e) => e.readAtMs)).toEqual([5_000])
  })
})
