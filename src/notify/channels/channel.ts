/**
 * A delivery channel: sends one notification to one external receiver, and throws when the
 * receiver did not take it (the dispatcher then retries). Channels are stateless; retries,
 * leases and back-off belong to the outbox and the dispatcher.
 */
import type { NotificationChannel } from '../../config/types.js'
import type { Notification } from '../notification.js'
import { createEmailSender } from './email.js'
import { createSlackSender } from './slack.js'
import { createWebhookSender } from './webhook.js'

export interface ChannelSender {
  readonly id: string
  readonly type: NotificationChannel['type']
  send(notification: Notification): Promise<void>
  /** Releases pooled connections (SMTP transports). */
  close?(): Promise<void>
}

/** Thrown by a channel for a delivery the receiver refused; the message is kept as `last_error`. */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError'
}

export interface ChannelTimeouts {
  /** Connect + response headers. */
  readonly headersTimeoutMs: number
  /** Between body chunks. */
  readonly bodyTimeoutMs: number
}

export const CHANNEL_TIMEOUTS_DEFAULT: ChannelTimeouts = { headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000 }

export function createChannelSender(channel: NotificationChannel, timeouts: ChannelTimeouts = CHANNEL_TIMEOUTS_DEFAULT): ChannelSender {
  switch (channel.type) {
    case 'webhook':
      return createWebhookSender(channel, timeouts)
    case 'slack':
      return createSlackSender(channel, timeouts)
    case 'email':
      return createEmailSender(channel, timeouts)
  }
}
