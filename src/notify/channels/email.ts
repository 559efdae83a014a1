/**
 * Email channel: one message per notification over the channel's `smtp_url` (nodemailer), with a
 * plain-text and an HTML part. The transport is created once per channel and reused.
 */
import type { Transporter } from 'nodemailer'
import type { NotificationChannel } from '../../config/types.js'
import { notificationLines, notificationTitle, type Notification } from '../notification.js'
import type { ChannelSender, ChannelTimeouts } from './channel.js'

export interface EmailContent {
  readonly subject: string
  readonly text: string
  readonly html: string
}

export function emailContent(notification: Notification): EmailContent {
  const subject = `[Tollgate] ${notificationTitle(notification)}`
  const lines = notificationLines(notification)
  const footer = `Notification ${notification.id} (${notification.type})`
  const text = [notificationTitle(notification), '', ...lines, '', footer].join('\n')
  const html = [
    `<h2>${escapeHtml(notificationTitle(notification))}</h2>`,
    lines.length > 0 ? `<ul>${lines.map((l) => `<li>${escapeHtml(l)}</li>`).join('')}</ul>` : '',
    `<p style="color:#666">${escapeHtml(footer)}</p>`,
  ].join('\n')
  return { subject, text, html }
}

export function createEmailSender(channel: Extract<NotificationChannel, { type: 'email' }>, timeouts: ChannelTimeouts): ChannelSender {
  // Timeouts passed explicitly: nodemailer waits up to 2 min to connect and 10 min
  // on the socket by default, which would hold an outbox lease far too long.
  // Created on the first send: nodemailer is loaded then, not at every gateway start-up.
  let transport: Transporter | undefined
  const transportNow = async (): Promise<Transporter> => {
    const { default: nodemailer } = await import('nodemailer')
    transport ??= nodemailer.createTransport({
      url: channel.smtpUrl,
      connectionTimeout: timeouts.headersTimeoutMs,
      greetingTimeout: timeouts.headersTimeoutMs,
      socketTimeout: timeouts.bodyTimeoutMs,
    })
    return transport
  }
  return {
    id: channel.id,
    type: 'email',
    async send(notification: Notification): Promise<void> {
      const content = emailContent(notification)
      await (await transportNow()).sendMail({
        from: channel.from,
        to: [...channel.to],
        subject: content.subject,
        text: content.text,
        html: content.html,
        headers: { 'x-tollgate-notification-id': notification.id },
        messageId: `<${notification.id}@tollgate>`,
      })
    },
    async close(): Promise<void> {
      transport?.close()
    },
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)
}
