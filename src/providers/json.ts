/** Defensive readers for provider JSON: a missing or malformed field reads as absent, never throws. */
import { TOKENS_MAX } from '../money/index.js'

export type JsonRecord = Record<string, unknown>

export function asRecord(value: unknown): JsonRecord | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonRecord) : undefined
}

/**
 * A token count from the wire: a finite non-negative number rounded up (never under), else 0; at
 * most TOKENS_MAX, the bound inside which cost arithmetic cannot overflow (no call comes near it).
 */
export function tokenCount(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return 0
  return Math.min(Math.ceil(value), TOKENS_MAX)
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/** JSON.parse that answers undefined for invalid or truncated text (the tail of a cut stream). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}
