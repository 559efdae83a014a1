/**
 * A notification: what happened, for which org, with the context a reader needs to act:
 * scope, spend, amount, percent, period, forecast and the top spenders. `data` is the wire shape
 * (snake_case, USD numbers, ISO instants): it is what the inbox shows and webhooks receive, so it
 * is built once here and never reformatted per channel.
 */
import { newId } from '../lib/ids.js'
import { assert } from '../lib/assert.js'

/**
 * The one vocabulary of notifications: webhook `type`, inbox entries, preferences and docs all use
 * these names.
 */
export const NOTIFICATION_TYPES = [
  'budget.threshold',
  'budget.forecast',
  'budget.spike',
  'budget.blocked',
  'budget.escalated',
  'wallet.threshold',
  'wallet.exhausted',
  'ticket.created',
  'ticket.digest',
  'ticket.resolved',
] as const
export type NotificationType = (typeof NOTIFICATION_TYPES)[number]

export interface TopEntry {
  readonly id: string
  readonly spend_usd: number
}

export type TopSpenders = {
  readonly endpoints: readonly TopEntry[]
  readonly users: readonly TopEntry[]
  readonly models: readonly TopEntry[]
}

/** The `data` of budget and wallet notifications. Instants are ISO 8601 UTC strings. */
export type SpendNotificationData = {
  readonly budget_id?: string
  readonly budget_name?: string
  readonly wallet_id?: string
  readonly scope: string
  readonly threshold_percent?: number
  readonly spend_usd: number
  readonly amount_usd: number
  /** Spend as a percentage of the amount, two decimals. */
  readonly percent: number
  readonly period_start: string | null
  readonly period_end: string | null
  readonly forecast_exhaustion_at: string | null
  readonly projected_spend_usd?: number
  readonly last_hour_spend_usd?: number
  readonly shadow?: boolean
  readonly decision?: 'would_block'
  readonly reason?: 'refused'
  readonly refused_estimate_usd?: number
  readonly action?: string
  readonly forecast_decision?: 'confirmed' | 'not_confirmed'
  readonly forecast_note?: string
  readonly owner?: string
  readonly tier?: string
  readonly top: TopSpenders
}

export type NotificationData = Readonly<Record<string, unknown>>

export interface Notification {
  readonly id: string
  readonly type: NotificationType
  readonly createdAtMs: number
  readonly orgId: string
  /** The team it concerns (a team budget or wallet, a user wallet's team, a ticket's team); undefined when org-wide. A team_admin's inbox shows only its team's. */
  readonly teamId: string | undefined
  readonly data: NotificationData
  /** Set when an unacknowledged notice must escalate: when, and to which channels. */
  readonly escalation?: NotificationEscalation | undefined
}

export interface NotificationEscalation {
  readonly atMs: number
  readonly channelIds: readonly string[]
}

/** Largest serialised `data` accepted: a notification is a message, not a report. */
export const NOTIFICATION_DATA_BYTES_MAX = 64 * 1024

export function newNotification(type: NotificationType, orgId: string, teamId: string | undefined, data: NotificationData, nowMs: number): Notification {
  assert(orgId.length > 0, 'notification orgId is empty')
  assert(JSON.stringify(data).length <= NOTIFICATION_DATA_BYTES_MAX, 'notification data too large')
  return { id: newId('ntf', nowMs), type, createdAtMs: nowMs, orgId, teamId, data }
}

/** The JSON every webhook receives and the inbox API returns: `{id, type, created_at, data}`. */
export interface NotificationPayload {
  readonly id: string
  readonly type: NotificationType
  readonly created_at: string
  readonly data: NotificationData
}

export function notificationPayload(notification: Notification): NotificationPayload {
  return {
    id: notification.id,
    type: notification.type,
    created_at: new Date(notification.createdAtMs).toISOString(),
    data: notification.data,
  }
}

/** One line a person reads first: Slack text, email subject. */
export function notificationTitle(notification: Notification): string {
  const data = notification.data
  const scope = typeof data['scope'] === 'string' ? data['scope'] : 'unknown scope'
  const name = typeof data['budget_name'] === 'string' ? ` (${data['budget_name']})` : ''
  switch (notification.type) {
    case 'budget.threshold':
      return `Budget for ${scope}${name} reached ${numberField(data, 'threshold_percent') ?? '?'}%`
    case 'budget.forecast':
      return `Budget for ${scope}${name} is on course to run out before the period ends`
    case 'budget.spike':
      return `Spend spike on ${scope}${name}`
    case 'budget.blocked':
      return `Budget for ${scope}${name} is exhausted: requests are now refused`
    case 'budget.escalated':
      return `Unacknowledged for ${typeof data['unacknowledged_for'] === 'string' ? data['unacknowledged_for'] : 'too long'}: ${typeof data['escalated_title'] === 'string' ? data['escalated_title'] : `budget notice for ${scope}`}`
    case 'wallet.threshold':
      return `Wallet for ${scope} reached ${numberField(data, 'threshold_percent') ?? '?'}% of its allocation`
    case 'wallet.exhausted':
      return `Wallet for ${scope} cannot cover requests: they are now refused`
    case 'ticket.created':
      return `Cost ticket opened for ${scope}`
    case 'ticket.digest':
      return `Cost ticket for ${scope}: ${numberField(data, 'new_refusals') ?? '?'} more refused requests`
    case 'ticket.resolved':
      return `Cost ticket ${typeof data['status'] === 'string' ? data['status'] : 'resolved'} for ${scope}`
  }
}

/** The context as readable lines (Slack body, email text), skipping fields that are absent. */
export function notificationLines(notification: Notification): string[] {
  const data = notification.data
  const lines: string[] = []
  const spend = numberField(data, 'spend_usd')
  const amount = numberField(data, 'amount_usd')
  const percent = numberField(data, 'percent')
  if (spend !== undefined && amount !== undefined) {
    lines.push(`Spend: $${spend.toFixed(2)} of $${amount.toFixed(2)}${percent !== undefined ? ` (${percent}%)` : ''}`)
  }
  if (typeof data['period_start'] === 'string' && typeof data['period_end'] === 'string') {
    lines.push(`Period: ${data['period_start']} to ${data['period_end']} (end exclusive)`)
  }
  const projected = numberField(data, 'projected_spend_usd')
  if (projected !== undefined) lines.push(`Projected spend at period end: $${projected.toFixed(2)}`)
  if (typeof data['forecast_exhaustion_at'] === 'string') lines.push(`Projected exhaustion: ${data['forecast_exhaustion_at']}`)
  const lastHour = numberField(data, 'last_hour_spend_usd')
  if (lastHour !== undefined) lines.push(`Spend in the last hour: $${lastHour.toFixed(2)}`)
  const top = data['top']
  if (top && typeof top === 'object') {
    for (const [label, key] of [
      ['Top endpoints', 'endpoints'],
      ['Top users', 'users'],
      ['Top models', 'models'],
    ] as const) {
      const entries = (top as Record<string, unknown>)[key]
      if (!Array.isArray(entries) || entries.length === 0) continue
      const text = entries
        .filter((e): e is TopEntry => typeof e === 'object' && e !== null && typeof (e as TopEntry).id === 'string')
        .map((e) => `${e.id} $${Number(e.spend_usd).toFixed(2)}`)
        .join(', ')
      lines.push(`${label}: ${text}`)
    }
  }
  if (typeof data['forecast_note'] === 'string') lines.push(data['forecast_note'])
  if (typeof data['owner'] === 'string') lines.push(`Owner: ${data['owner']}`)
  if (typeof data['escalates'] === 'string') lines.push(`Acknowledge ${data['escalates']} in the inbox to stop further escalation.`)
  if (data['shadow'] === true) lines.push('Shadow mode (would_block): nothing was blocked.')
  return lines
}

function numberField(data: NotificationData, key: string): number | undefined {
  const value = data[key]
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}
