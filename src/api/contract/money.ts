/** USD amounts on the wire: a JSON number or decimal string, exact to the micro-dollar. */
import { z } from 'zod'
import { AMOUNT_MICROS_MAX, parseUsd, type Micros } from '../../money/index.js'

/** A positive amount of USD, at most $1,000,000,000 (AMOUNT_MICROS_MAX), no more than six decimals. */
export const usdAmount = z.unknown().transform((value, ctx): Micros => {
  if (typeof value !== 'number' && typeof value !== 'string') {
    ctx.addIssue({ code: 'custom', message: `expected a positive number of USD, got ${value === undefined ? 'nothing' : JSON.stringify(value)}` })
    return z.NEVER
  }
  const parsed = parseUsd(value)
  if (parsed === undefined || parsed <= 0 || parsed > AMOUNT_MICROS_MAX) {
    ctx.addIssue({ code: 'custom', message: `expected a positive number of USD (at most 6 decimals, at most 1e9), got ${JSON.stringify(value)}` })
    return z.NEVER
  }
  return parsed
})

/** A non-negative amount (actual cost may be zero). */
export const usdAmountOrZero = z.unknown().transform((value, ctx): Micros => {
  const parsed = typeof value === 'number' || typeof value === 'string' ? parseUsd(value) : undefined
  if (parsed === undefined || parsed > AMOUNT_MICROS_MAX) {
    ctx.addIssue({ code: 'custom', message: `expected a non-negative number of USD (at most 6 decimals), got ${JSON.stringify(value ?? null)}` })
    return z.NEVER
  }
  return parsed
})

export const currency = z.literal('USD', { error: 'currency: only "USD" is supported' }).default('USD')
