/**
 * Money inside Tollgate is an integer count of micro-US-dollars (1 USD = 1_000_000), branded so a
 * plain number cannot pass for it. Floats are parsed to Micros at the edges (JSON, YAML,
 * catalogue prices) and formatted back only at the edges. Rounding policy
 * (docs/decisions/0001-money-in-micro-usd.md): costs and reservations round up, so Tollgate never
 * reserves or charges less than the price; refunds are exact differences of integers.
 */
import { assert } from '../lib/assert.js'

export type Micros = number & { readonly unit: 'micro-usd' }

export const MICROS_PER_USD = 1_000_000
export const ZERO = 0 as Micros

export function micros(value: number): Micros {
  assert(Number.isSafeInteger(value), `micros: not a safe integer: ${value}`)
  return value as Micros
}

export function divCeil(numerator: number, denominator: number): number {
  assert(Number.isSafeInteger(numerator) && numerator >= 0, `divCeil numerator: ${numerator}`)
  assert(Number.isSafeInteger(denominator) && denominator > 0, `divCeil denominator: ${denominator}`)
  return Math.floor((numerator + denominator - 1) / denominator)
}

export function divFloor(numerator: number, denominator: number): number {
  assert(Number.isSafeInteger(numerator) && numerator >= 0, `divFloor numerator: ${numerator}`)
  assert(Number.isSafeInteger(denominator) && denominator > 0, `divFloor denominator: ${denominator}`)
  return Math.floor(numerator / denominator)
}

/** Micros of `percent`% of `amount`, rounded down (a cap never rounds up past the funds). */
export function percentOf(amount: Micros, percent: number): Micros {
  assert(Number.isSafeInteger(percent) && percent >= 0, `percent: ${percent}`)
  return micros(divFloor(amount * percent, 100))
}

/**
 * Cost of `tokens` at a price in micro-USD per million tokens; rounded up, never under.
 * 1 token at $2.50/Mtok = 2_500_000 µ$/Mtok → 2.5 µ$ → 3 µ$.
 */
export function costOfTokens(tokens: number, priceMicrosPerMtok: number): Micros {
  assert(Number.isSafeInteger(tokens) && tokens >= 0, `tokens: ${tokens}`)
  assert(Number.isSafeInteger(priceMicrosPerMtok) && priceMicrosPerMtok >= 0, `price: ${priceMicrosPerMtok}`)
  const product = tokens * priceMicrosPerMtok
  assert(Number.isSafeInteger(product), 'cost overflows safe integers')
  return micros(divCeil(product, 1_000_000))
}

const USD_PATTERN = /^(\d{1,12})(?:\.(\d{1,6}))?$/

/**
 * Parses a USD amount from JSON/YAML (number or decimal string) to Micros, exactly: `"0.1"` is
 * 100_000 µ$, never 99_999. More than six decimals, negatives, NaN or exponent notation are
 * refused (undefined): money must not be silently rounded at the edge.
 */
export function parseUsd(value: unknown): Micros | undefined {
  let text: string
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return undefined
    // toFixed(6) then compare guards against binary noise like 0.1 + 0.2.
    text = value.toFixed(6).replace(/\.?0+$/, '')
    if (Math.abs(Number(text) - value) > 1e-9 * Math.max(1, value)) return undefined
  } else if (typeof value === 'string') {
    text = value.trim()
  } else {
    return undefined
  }
  const match = USD_PATTERN.exec(text)
  if (!match) return undefined
  const whole = Number(match[1])
  const fraction = Number((match[2] ?? '').padEnd(6, '0'))
  return micros(whole * MICROS_PER_USD + fraction)
}

/** USD per million tokens (catalogue and config prices, may be fractional) → µ$ per Mtok, rounded up. */
export function usdPerMtokToMicros(usdPerMtok: number): number {
  assert(Number.isFinite(usdPerMtok) && usdPerMtok >= 0, `price: ${usdPerMtok}`)
  // Round at 1e-6 µ$ first so 2.5 * 1e6 = 2499999.9999 binary noise does not round up.
  return Math.ceil(Math.round(usdPerMtok * MICROS_PER_USD * 1e6) / 1e6)
}

/** Micros → USD number for JSON output (exact for any amount below 2^53 µ$ when printed with 6 decimals). */
export function toUsd(amount: Micros): number {
  return amount / MICROS_PER_USD
}

/** Micros → "12.345678" string for headers and CSV: exact, no float formatting. */
export function formatUsd(amount: Micros): string {
  const negative = amount < 0
  const abs = Math.abs(amount)
  const whole = Math.floor(abs / MICROS_PER_USD)
  const fraction = String(abs % MICROS_PER_USD).padStart(6, '0')
  return `${negative ? '-' : ''}${whole}.${fraction}`
}
