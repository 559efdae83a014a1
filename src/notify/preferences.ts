/**
 * Notification preferences: per user or per role, which kinds of notification (threshold,
 * forecast, spike, ticket, blocked) go to which channel ids. Resolution for one notification:
 * start from the budget's `channels` (or every configured channel when it names none), then keep a
 * channel when no preference mentions it at all (its default is on), or when some preference
 * turns it on for this kind. A channel someone manages is used only for the kinds asked for.
 * The in-app inbox is not filtered: it is always on (SPEC §5).
 */
import { z } from 'zod'
import { NOTIFICATION_KINDS, type NotificationKind } from './notification.js'

export const PREFERENCE_SUBJECT_TYPES = ['user', 'role'] as const
export type PreferenceSubjectType = (typeof PREFERENCE_SUBJECT_TYPES)[number]

export interface NotificationPreference {
  readonly orgId: string
  readonly subjectType: PreferenceSubjectType
  /** A user id, or a role name (`admin`, `team_admin`, `viewer`). */
  readonly subjectId: string
  /** Channel ids per kind; a kind absent here sends nothing on this subject's behalf. */
  readonly channelsByKind: Readonly<Partial<Record<NotificationKind, readonly string[]>>>
  readonly updatedAtMs: number
}

export interface PreferenceStore {
  listPreferences(orgId: string): Promise<NotificationPreference[]>
  getPreference(orgId: string, subjectType: PreferenceSubjectType, subjectId: string): Promise<NotificationPreference | undefined>
  putPreference(preference: NotificationPreference): Promise<void>
}

const CHANNEL_IDS_MAX = 50
const channelIds = z
  .array(z.string().trim().min(1, { error: 'channel id must not be empty' }).max(200))
  .max(CHANNEL_IDS_MAX, { error: `at most ${CHANNEL_IDS_MAX} channels` })

/**
 * `PUT /v1/notification-preferences`: `{subject: {type: 'user'|'role', id}, kinds: {threshold:
 * [channel ids], …}}`. The API layer fills or checks `subject` against the caller's token.
 */
export const notificationPreferencesBodySchema = z.strictObject({
  subject: z.strictObject({
    type: z.enum(PREFERENCE_SUBJECT_TYPES, { error: 'expected user or role' }),
    id: z.string().trim().min(1, { error: 'subject id must not be empty' }).max(200),
  }),
  kinds: z.strictObject({
    threshold: channelIds.optional(),
    forecast: channelIds.optional(),
    spike: channelIds.optional(),
    ticket: channelIds.optional(),
    blocked: channelIds.optional(),
  }),
})
export type NotificationPreferencesBody = z.infer<typeof notificationPreferencesBodySchema>

export function preferenceFromBody(orgId: string, body: NotificationPreferencesBody, nowMs: number): NotificationPreference {
  const channelsByKind: Partial<Record<NotificationKind, readonly string[]>> = {}
  for (const kind of NOTIFICATION_KINDS) {
    const ids = body.kinds[kind]
    if (ids !== undefined) channelsByKind[kind] = [...new Set(ids)]
  }
  return { orgId, subjectType: body.subject.type, subjectId: body.subject.id, channelsByKind, updatedAtMs: nowMs }
}

/** The GET/PUT response body. */
export function preferenceView(preference: NotificationPreference): NotificationPreferencesBody & { updated_at: string } {
  const kinds: NotificationPreferencesBody['kinds'] = {}
  for (const kind of NOTIFICATION_KINDS) {
    const ids = preference.channelsByKind[kind]
    if (ids !== undefined) kinds[kind] = [...ids]
  }
  return {
    subject: { type: preference.subjectType, id: preference.subjectId },
    kinds,
    updated_at: new Date(preference.updatedAtMs).toISOString(),
  }
}

/** See the file comment. Order follows `candidateChannelIds`; unknown ids are the caller's to drop. */
export function resolveChannels(
  kind: NotificationKind,
  candidateChannelIds: readonly string[],
  preferences: readonly NotificationPreference[],
): string[] {
  const mentioned = new Set<string>()
  const wanted = new Set<string>()
  for (const preference of preferences) {
    for (const k of NOTIFICATION_KINDS) {
      for (const id of preference.channelsByKind[k] ?? []) {
        mentioned.add(id)
        if (k === kind) wanted.add(id)
      }
    }
  }
  return candidateChannelIds.filter((id) => !mentioned.has(id) || wanted.has(id))
}
