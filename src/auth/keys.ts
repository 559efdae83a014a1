/**
 * Consumer keys and admin tokens are stored as sha256 hashes; the key itself is shown once, at
 * creation, and never kept or logged. A lookup hashes the presented key first, so its timing can
 * only ever depend on the hash, which says nothing about how much of a key was right: consumer
 * keys are found by hash in a Map, and a single expected hash is compared in constant time.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { hashApiKey } from '../config/index.js'

/** sha256 hex, the same hash the config loader stores for configured consumer keys. */
export const hashKey = hashApiKey

export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex')
  const right = Buffer.from(b, 'hex')
  return left.length === right.length && timingSafeEqual(left, right)
}

/** `tg_key_…` for consumers, `tg_admin_…` for admin tokens: 32 random bytes, base64url. */
export function generateKey(kind: 'key' | 'admin'): string {
  return `tg_${kind}_${randomBytes(32).toString('base64url')}`
}

/** The short prefix shown in listings so people can tell keys apart. */
export function keyPrefix(key: string): string {
  return key.slice(0, 12)
}

/** The consumer key from `Authorization: Bearer KEY` or `x-api-key: KEY`. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const apiKey = headers['x-api-key']
  if (typeof apiKey === 'string' && apiKey.length > 0) return apiKey
  const authorization = headers.authorization
  if (typeof authorization === 'string' && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ') {
    return authorization.slice(7).trim()
  }
  return undefined
}
