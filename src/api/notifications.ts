/** The in-app inbox and notification preferences. */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { inboxEntryView, notificationPreferencesBodySchema, notificationTitle, preferenceFromBody, preferenceView } from '../notify/index.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { principalOf, requireAdmin, requireWrite, teamFilter } from './principal.js'
import { InvalidRequestError, NotFoundError } from './errors.js'
import { doc } from './openapi.js'

const INBOX_PAGE_MAX = 200

const InboxQuery = z.object({
  unread: z.enum(['true', 'false']).default('false'),
  limit: z.coerce.number().int().min(1).max(INBOX_PAGE_MAX).default(50),
  before: z.string().max(100).optional(),
})

export async function notificationRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.get(
    '/v1/notifications',
    doc({ summary: 'The in-app inbox', auth: 'admin', query: InboxQuery, responses: { 200: '`data`: notifications, newest first.' } }),
    async (request) => {
      const principal = principalOf(request)
      const q = parseBody(InboxQuery, request.query, 'query')
      const entries = await deps.stores.notify.listInbox(principal.orgId, {
        unreadOnly: q.unread === 'true',
        limit: q.limit,
        beforeId: q.before,
        teamId: teamFilter(principal),
      })
      // The title is the line Slack and email use, so the inbox reads the same.
      return { data: entries.map((entry) => ({ ...inboxEntryView(entry), title: notificationTitle(entry.notification) })) }
    },
  )

  app.post<{ Params: { id: string } }>(
    '/v1/notifications/:id/read',
    doc({ summary: 'Mark a notification read', auth: 'admin', responses: { 200: 'The notification.' }, errors: [404] }),
    async (request) => {
      const principal = principalOf(request)
      // Marking read changes the org's inbox: a write (a viewer only reads); a team_admin marks only its team's.
      const team = teamFilter(principal)
      requireWrite(principal, team)
      const found = await deps.stores.notify.markRead(principal.orgId, request.params.id, deps.clock.nowMs(), team)
      if (!found) throw new NotFoundError('notification', request.params.id)
      return { id: request.params.id, read: true }
    },
  )

  app.post<{ Params: { id: string } }>(
    '/v1/notifications/:id/ack',
    doc({
      summary: 'Acknowledge a notification: someone owns it, so it does not escalate',
      auth: 'admin',
      responses: { 200: 'The notification, with `acknowledged_at`.' },
      errors: [404],
    }),
    async (request) => {
      const principal = principalOf(request)
      // Like marking read, a write on the org's inbox; a team_admin acknowledges only its team's.
      const team = teamFilter(principal)
      requireWrite(principal, team)
      const entry = await deps.stores.notify.acknowledge(principal.orgId, request.params.id, deps.clock.nowMs(), team)
      if (!entry) throw new NotFoundError('notification', request.params.id)
      return { ...inboxEntryView(entry), title: notificationTitle(entry.notification) }
    },
  )

  app.get(
    '/v1/notification-preferences',
    doc({ summary: 'Which notification types go to which channels', auth: 'admin', responses: { 200: 'The preferences.' } }),
    async (request) => {
      const principal = principalOf(request)
      // The configured channels (id and type only: URLs and secrets stay in the config), so a
      // preference can be chosen from them.
      const channels = deps.config.notificationChannels.map((c) => ({ id: c.id, type: c.type }))
      return { data: (await deps.stores.notify.listPreferences(principal.orgId)).map(preferenceView), channels }
    },
  )

  app.put(
    '/v1/notification-preferences',
    doc({ summary: 'Replace the notification preferences', auth: 'admin', body: notificationPreferencesBodySchema, responses: { 200: 'The preferences.' } }),
    async (request) => {
      const principal = principalOf(request)
      requireAdmin(principal)
      const body = parseBody(notificationPreferencesBodySchema, request.body)
      const known = new Set(deps.config.notificationChannels.map((c) => c.id))
      const unknown = Object.values(body.types)
        .flat()
        .filter((id) => id !== undefined && !known.has(id))
      if (unknown.length > 0) {
        throw new InvalidRequestError(`unknown channel id(s): ${[...new Set(unknown)].join(', ')}`, [
          { path: 'types', message: `configured channels: ${[...known].join(', ') || '(none)'}` },
        ])
      }
      const preference = preferenceFromBody(principal.orgId, body, deps.clock.nowMs())
      await deps.stores.notify.putPreference(preference)
      return preferenceView(preference)
    },
  )
}
