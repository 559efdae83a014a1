/**
 * Notification preferences: per user or per role, which notification types (`budget.threshold`,
 * `ticket.created`, … — the same names webhooks carry) go to which channel ids. Resolution for one
 * notification: start from the budget's `channels` (or every configured channel when it names
 * none), then keep a channel when no preference mentions it at all (its default is on), or when
 * some preference turns it on for this type. A channel someone manages is used only for the types
 * asked for. The in-app inbox is not filtered: it is always on.
 */
import { z } from 'zod'
import { NOTIFICATION_TYPES, type NotificationType } from './notification.js'
import { printable } from '../lib/text.js'

export const PREFERENCE_SUBJECT_TYPES = ['user', 'role'] as const
export type PreferenceSubjectType = (typeof PREFERENCE_SUBJECT_TYPES)[number]

export interface NotificationPreference {
  readonly orgId: string
  readonly subjectType: PreferenceSubjectType
  /** A user id, or a role name (`admin`, `team_admin`, `viewer`). */
  readonly subjectId: string
  /** Channel ids per notification type; a type absent here sends nothing on this subject's behalf. */
  readonly channelsByType: Readonly<Partial<Record<NotificationType, readonly string[]>>>
  readonly updatedAtMs: number
}

export interface PreferenceStore {
  listPreferences(orgId: string): Promise<NotificationPreference[]>
  getPreference(orgId: string, subjectType: PreferenceSubjectType, subjectId: string): Promise<NotificationPreference | undefined>
  putPreference(preference: NotificationPreference): Promise<void>
}

const CHANNEL_IDS_MAX = 50
const channelIds = z
  .array(printable(z.string().trim().min(1, { error: 'channel id must not be empty' }).max(200)))
  .max(CHANNEL_IDS_MAX, { error: `at most ${CHANNEL_IDS_MAX} channels` })

/**
 * `PUT /v1/notification-preferences`: `{subject: {type: 'user'|'role', id}, types:
 * {"budget.threshold": [channel ids], …}}`.
 */
export const notificationPreferencesBodySchema = z.strictObject({
  subject: z.strictObject({
    type: z.enum(PREFERENCE_SUBJECT_TYPES, { error: 'expected user or role' }),
    id: printable(z.string().trim().min(1, { error: 'subject id must not be empty' }).max(200)),
  }),
  types: z.strictObject(
    Object.fromEntries(NOTIFICATION_TYPES.map((type) => [type, channelIds.optional()])) as Record<NotificationType, z.ZodOptional<typeof channelIds>>,
  ),
})
export type NotificationPreferencesBody = z.infer<typeof notificationPreferencesBodySchema>

export function preferenceFromBody(orgId: string, body: NotificationPreferencesBody, nowMs: number): NotificationPreference {
  const channelsByType: Partial<Record<NotificationType, readonly string[]>> = {}
  for (const type of NOTIFICATION_TYPES) {
    const ids = body.types[type]
    if (ids !== undefined) channelsByType[type] = [...new Set(ids)]
  }
  return { orgId, subjectType: body.subject.type, subjectId: body.subject.id, channelsByType, updatedAtMs: nowMs }
}

/** The GET/PUT response body. */
export function preferenceView(preference: NotificationPreference) {
  const types: Partial<Record<NotificationType, string[]>> = {}
  for (const type of NOTIFICATION_TYPES) {
    const ids = preference.channelsByType[type]
    if (ids !== undefined) types[type] = [...ids]
  }
  return {
    subject: { type: preference.subjectType, id: preference.subjectId },
    types,
    updated_at: new Date(preference.updatedAtMs).toISOString(),
  }
}

/**
 * Preferences stored before types replaced coarse kinds (`threshold`, `ticket`, …) are read as
 * the types each kind stood for.
 */
const LEGACY_KINDS: Readonly<Record<string, readonly NotificationType[]>> = {
  threshold: ['budget.threshold', 'wallet.threshold'],
  forecast: ['budget.forecast'],
  spike: ['budget.spike'],
  blocked: ['budget.blocked', 'wallet.exhausted'],
  ticket: ['ticket.created', 'ticket.digest', 'ticket.resolved'],
}

export function channelsByTypeOf(stored: Record<string, readonly string[]>): Partial<Record<NotificationType, readonly string[]>> {
  const byType: Partial<Record<NotificationType, string[]>> = {}
  for (const [key, ids] of Object.entries(stored)) {
    const types = (NOTIFICATION_TYPES as readonly string[]).includes(key) ? [key as NotificationType] : (LEGACY_KINDS[key] ?? [])
    for (const type of types) byType[type] = [...new Set([...(byType[type] ?? []), ...ids])]
  }
  return byType
}

/** See the file comment. Order follows `candidateChannelIds`; unknown ids are the caller's to drop. */
export function resolveChannels(type: NotificationType, candidateChannelIds: readonly string[], preferences: readonly NotificationPreference[]): string[] {
  const mentioned = new Set<string>()
  const wanted = new Set<string>()
  for (const preference of preferences) {
    for (const [t, ids] of Object.entries(preference.channelsByType)) {
      for (const id of ids ?? []) {
        mentioned.add(id)
        if (t === type) wanted.add(id)
      }
    }
  }
  return candidateChannelIds.filter((id) => !mentioned.has(id) || wanted.has(id))
}
