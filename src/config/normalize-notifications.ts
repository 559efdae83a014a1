/** `notifications.channels`: webhook, Slack incoming webhook, email over SMTP. */
import { checkUnique, envVarLabel, type Context } from './context.js'
import { quote } from './describe.js'
import type { ChannelInput } from './schema.js'
import type { NotificationChannel } from './types.js'

/**
 * With `requireSecrets: false`, a URL whose `*_ref` variable is unset is left as `''`: the Config
 * type needs a string, and such a config is only ever checked, never served.
 */
const UNRESOLVED = ''

export function normalizeChannels(inputs: readonly ChannelInput[] | undefined, ctx: Context): NotificationChannel[] {
  if (inputs === undefined) return []
  checkUnique(
    ctx,
    inputs,
    (c) => c.id,
    (i) => `notifications.channels[${i}].id`,
    'channel id',
  )
  return inputs.map((input, index) => normalizeChannel(input, `notifications.channels[${index}]`, ctx))
}

function normalizeChannel(input: ChannelInput, path: string, ctx: Context): NotificationChannel {
  switch (input.type) {
    case 'webhook': {
      const secret = input.secret_ref === undefined ? undefined : ctx.resolveSecret(input.secret_ref.env, `${path}.secret_ref.env`)
      return { id: input.id, type: 'webhook', url: input.url, secret }
    }
    case 'slack': {
      const webhookUrl = literalOrRef(input.webhook_url, input.webhook_url_ref, 'webhook_url', path, ctx, isHttpUrl, 'an http(s) URL')
      return { id: input.id, type: 'slack', webhookUrl }
    }
    case 'email': {
      const smtpUrl = literalOrRef(input.smtp_url, input.smtp_url_ref, 'smtp_url', path, ctx, isSmtpUrl, 'an smtp:// or smtps:// URL')
      return { id: input.id, type: 'email', smtpUrl, from: input.from, to: input.to }
    }
  }
}

/**
 * Exactly one of `FIELD` / `FIELD_ref`. A URL read from the environment is validated but never
 * echoed: SMTP and Slack URLs carry credentials.
 */
function literalOrRef(
  literal: string | undefined,
  ref: { env: string } | undefined,
  field: string,
  path: string,
  ctx: Context,
  valid: (url: string) => boolean,
  expected: string,
): string {
  if (literal !== undefined && ref !== undefined) {
    ctx.report(path, `set ${field} or ${field}_ref, not both`)
    return UNRESOLVED
  }
  if (literal !== undefined) {
    if (!valid(literal)) ctx.report(`${path}.${field}`, `expected ${expected}, got ${quote(redactUserinfo(literal))}`)
    return literal
  }
  if (ref === undefined) {
    ctx.report(path, `needs ${field} or ${field}_ref: {env: NAME}`)
    return UNRESOLVED
  }
  const value = ctx.resolveSecret(ref.env, `${path}.${field}_ref.env`)
  if (value === undefined) return UNRESOLVED
  if (!valid(value)) ctx.report(`${path}.${field}_ref.env`, `${envVarLabel(ref.env)} does not hold ${expected}`)
  return value
}

function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text)
  } catch {
    return undefined
  }
}

function isHttpUrl(text: string): boolean {
  const url = parseUrl(text)
  return url !== undefined && (url.protocol === 'https:' || url.protocol === 'http:')
}

function isSmtpUrl(text: string): boolean {
  const url = parseUrl(text)
  return url !== undefined && (url.protocol === 'smtp:' || url.protocol === 'smtps:') && url.hostname !== ''
}

/** `smtp://user:pass@host` → `smtp://***@host`, so a password in a bad URL is not printed. */
function redactUserinfo(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1***@')
}
