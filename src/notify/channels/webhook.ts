/**
 * Webhook channel: POST `{"id","type","created_at","data"}` signed with
 * `x-tollgate-signature: t=UNIX_SECONDS,v1=HEX`, HEX = HMAC-SHA256(secret, t + "." + rawBody).
 * The body is byte-identical on every retry (same notification id) so receivers can drop
 * duplicates; only `t` and the signature change. `verifySignature` is what receivers run.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { NotificationChannel } from '../../config/types.js'
import { undici } from '../../lib/undici.js'
import { notificationPayload, type Notification } from '../notification.js'
import { DeliveryError, type ChannelSender, type ChannelTimeouts } from './channel.js'

export const SIGNATURE_HEADER = 'x-tollgate-signature'
export const SIGNATURE_TOLERANCE_SECONDS_DEFAULT = 300

export function signPayload(secret: string, timestampSeconds: number, rawBody: string): string {
  const hex = createHmac('sha256', secret).update(`${timestampSeconds}.${rawBody}`).digest('hex')
  return `t=${timestampSeconds},v1=${hex}`
}

/**
 * True when `header` carries a v1 signature of `rawBody` by `secret` whose timestamp is within
 * `toleranceSeconds` of `nowMs` (either side). Compares in constant time.
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  rawBody: string,
  nowMs: number,
  toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS_DEFAULT,
): boolean {
  if (!header) return false
  let timestamp: number | undefined
  const candidates: string[] = []
  for (const part of header.split(',')) {
    const [name, value] = part.trim().split('=', 2)
    if (name === 't' && value && /^\d{1,12}$/.test(value)) timestamp = Number(value)
    if (name === 'v1' && value && /^[0-9a-f]{64}$/.test(value)) candidates.push(value)
  }
  if (timestamp === undefined || candidates.length === 0) return false
  if (Math.abs(Math.floor(nowMs / 1000) - timestamp) > toleranceSeconds) return false
  const expected = Buffer.from(createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex'), 'utf8')
  return candidates.some((candidate) => timingSafeEqual(Buffer.from(candidate, 'utf8'), expected))
}

/** Bytes of a receiver's reply we read (and keep for the error message); the rest is discarded. */
const RESPONSE_EXCERPT_CHARS_MAX = 200

export function createWebhookSender(
  channel: Extract<NotificationChannel, { type: 'webhook' }>,
  timeouts: ChannelTimeouts,
  nowMs: () => number = Date.now,
): ChannelSender {
  return {
    id: channel.id,
    type: 'webhook',
    async send(notification: Notification): Promise<void> {
      const rawBody = JSON.stringify(notificationPayload(notification))
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'tollgate-webhook/1',
        'x-tollgate-notification-id': notification.id,
      }
      if (channel.secret !== undefined) {
        headers[SIGNATURE_HEADER] = signPayload(channel.secret, Math.floor(nowMs() / 1000), rawBody)
      }
      await postJson(channel.url, rawBody, headers, timeouts)
    },
  }
}

/** POST and require a 2xx; anything else (status, timeout, refused connection) throws. */
export async function postJson(url: string, rawBody: string, headers: Record<string, string>, timeouts: ChannelTimeouts): Promise<void> {
  // Explicit timeouts: undici's defaults are five minutes, far too long to hold a
  // lease on an outbox item for a receiver that hangs.
  const response = await undici.get().request(url, {
    method: 'POST',
    body: rawBody,
    headers,
    headersTimeout: timeouts.headersTimeoutMs,
    bodyTimeout: timeouts.bodyTimeoutMs,
  })
  const text = await response.body.text()
  if (response.statusCode < 200 || response.statusCode >= 300) {
    throw new DeliveryError(`receiver answered ${response.statusCode}: ${text.slice(0, RESPONSE_EXCERPT_CHARS_MAX)}`)
  }
}
