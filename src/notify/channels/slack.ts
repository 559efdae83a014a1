/**
 * Slack incoming-webhook channel: `text` for notifications and clients without blocks, plus a
 * header block and a section with the context lines. Slack answers 200 `ok` on success.
 */
import type { NotificationChannel } from '../../config/types.js'
import { notificationLines, notificationTitle, type Notification } from '../notification.js'
import type { ChannelSender, ChannelTimeouts } from './channel.js'
import { postJson } from './webhook.js'

/** Slack truncates header text at 150 characters and section text at 3000. */
const HEADER_CHARS_MAX = 150
const SECTION_CHARS_MAX = 3000

export interface SlackMessage {
  readonly text: string
  readonly blocks: readonly Record<string, unknown>[]
}

export function slackMessage(notification: Notification): SlackMessage {
  const title = notificationTitle(notification)
  const lines = notificationLines(notification).map(escapeMrkdwn)
  const blocks: Record<string, unknown>[] = [{ type: 'header', text: { type: 'plain_text', text: title.slice(0, HEADER_CHARS_MAX) } }]
  if (lines.length > 0) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n').slice(0, SECTION_CHARS_MAX) } })
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escapeMrkdwn(`${notification.type} · ${notification.id}`) }] })
  return { text: [escapeMrkdwn(title), ...lines].join('\n'), blocks }
}

/**
 * Slack's escaping for text it parses: names a caller chose (a user id, an endpoint tag, a budget
 * name) must not become an @channel ping (`<!channel>`) or a disguised link (`<https://…|…>`).
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'))
}

export function createSlackSender(channel: Extract<NotificationChannel, { type: 'slack' }>, timeouts: ChannelTimeouts): ChannelSender {
  return {
    id: channel.id,
    type: 'slack',
    async send(notification: Notification): Promise<void> {
      await postJson(channel.webhookUrl, JSON.stringify(slackMessage(notification)), { 'content-type': 'application/json' }, timeouts)
    },
  }
}
