/**
 * pino with redaction: no provider key, consumer key or admin token may ever reach a log line
 *. The paths cover request headers Fastify would log and config-shaped objects.
 */
import pino, { type Logger } from 'pino'

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.authorization',
  '*["x-api-key"]',
  '*.api_key',
  '*.apiKey',
  '*.apiKeyHash',
  '*.secret',
  '*.secretKey',
  '*.token',
  'apiKey',
  'api_key',
  'token',
  'secret',
]

export type { Logger }

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const config = {
    level: options.level ?? process.env.TOLLGATE_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'tollgate' },
  }
  return options.destination ? pino(config, options.destination) : pino(config)
}
