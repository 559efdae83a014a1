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

/**
 * The bounds every edge validates (docs/decisions/0002-bounds.md), chosen so that no arithmetic
 * on values inside them leaves the safe integers (a property test proves it):
 * - one amount of money given by a user (an allocation, a wallet's total, a budget, an estimate,
 *   an actual cost): at most $1,000,000,000;
 * - tokens of one kind in one call (input, or output across all choices): at most 1,000,000,000;
 * - a price: at most $1,000,000 per million tokens (`LIMITS.priceUsdPerMtokMax`).
 * Then one part of a cost is at most 10^9 × 10^12 / 10^6 = 10^15 µ$, and a call's worst case
 * (input + output parts) stays below 2^53. Counters that sum many calls saturate at
 * `Number.MAX_SAFE_INTEGER` instead of losing precision.
 */
export const AMOUNT_MICROS_MAX = 1_000_000_000_000_000 as Micros
export const TOKENS_MAX = 1_000_000_000
export const PRICE_MICROS_PER_MTOK_MAX = 1_000_000_000_000

export function micros(value: number): Micros {
  if (!Number.isSafeInteger(value)) assert(false, `micros: not a safe integer: ${value}`)
  return value as Micros
}

export function divCeil(numerator: number, denominator: number): number {
  if (!(Number.isSafeInteger(numerator) && numerator >= 0)) assert(false, `divCeil numerator: ${numerator}`)
  if (!(Number.isSafeInteger(denominator) && denominator > 0)) assert(false, `divCeil denominator: ${denominator}`)
  return Math.floor((numerator + denominator - 1) / denominator)
}

export function divFloor(numerator: number, denominator: number): number {
  if (!(Number.isSafeInteger(numerator) && numerator >= 0)) assert(false, `divFloor numerator: ${numerator}`)
  if (!(Number.isSafeInteger(denominator) && denominator > 0)) assert(false, `divFloor denominator: ${denominator}`)
  return Math.floor(numerator / denominator)
}

/**
 * ⌊a·b / d⌋ for non-negative safe integers, exact even when a·b passes 2^53 (then in BigInt);
 * a result above `Number.MAX_SAFE_INTEGER` saturates there.
 */
export function mulDivFloor(a: number, b: number, d: number): number {
  checkMulDiv(a, b, d)
  if (b === 0 || a <= Number.MAX_SAFE_INTEGER / b) {
    const product = a * b
    return (product - (product % d)) / d
  }
  return saturate((BigInt(a) * BigInt(b)) / BigInt(d))
}

/** ⌈a·b / d⌉, exact as `mulDivFloor`; saturates at `Number.MAX_SAFE_INTEGER`. */
export function mulDivCeil(a: number, b: number, d: number): number {
  checkMulDiv(a, b, d)
  if (b === 0 || a <= Number.MAX_SAFE_INTEGER / b) {
    const product = a * b
    return (product - (product % d)) / d + (product % d === 0 ? 0 : 1)
  }
  const bd = BigInt(d)
  return saturate((BigInt(a) * BigInt(b) + bd - 1n) / bd)
}

/** Runs on every price and threshold computation: the messages are built only when a check fails. */
function checkMulDiv(a: number, b: number, d: number): void {
  if (Number.isSafeInteger(a) && a >= 0 && Number.isSafeInteger(b) && b >= 0 && Number.isSafeInteger(d) && d > 0) return
  if (!(Number.isSafeInteger(a) && a >= 0)) assert(false, `mulDiv a: ${a}`)
  if (!(Number.isSafeInteger(b) && b >= 0)) assert(false, `mulDiv b: ${b}`)
  if (!(Number.isSafeInteger(d) && d > 0)) assert(false, `mulDiv d: ${d}`)
}

function saturate(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value)
}

/** a + b for counters that sum many amounts: saturates at `Number.MAX_SAFE_INTEGER` instead of losing precision. */
/**
 * A sum the database computed over many rows (SUM(cost_micros)), saturated at 2^53 − 1 like the
 * counters: enough ingested spend can pass what a JS number holds exactly, and a report or a
 * forecast must then read "at least that much", not fail.
 */
export function summedMicros(value: number | null | undefined): Micros {
  if (value === null || value === undefined) return ZERO
  return micros(Math.min(Math.max(Math.round(value), 0), Number.MAX_SAFE_INTEGER))
}

export function addSaturating(a: number, b: number): number {
  return a >= Number.MAX_SAFE_INTEGER - b ? Number.MAX_SAFE_INTEGER : a + b
}

/** Micros of `percent`% of `amount`, rounded down (a cap never rounds up past the funds). */
export function percentOf(amount: Micros, percent: number): Micros {
  if (!(Number.isSafeInteger(percent) && percent >= 0)) assert(false, `percent: ${percent}`)
  return micros(mulDivFloor(amount, percent, 100))
}

/**
 * Cost of `tokens` at a price in micro-USD per million tokens; rounded up, never under.
 * 1 token at $2.50/Mtok = 2_500_000 µ$/Mtok → 2.5 µ$ → 3 µ$. Exact for every count and price
 * within the bounds above (the product may pass 2^53; the result does not).
 */
export function costOfTokens(tokens: number, priceMicrosPerMtok: number): Micros {
  if (!(Number.isSafeInteger(tokens) && tokens >= 0)) assert(false, `tokens: ${tokens}`)
  if (!(Number.isSafeInteger(priceMicrosPerMtok) && priceMicrosPerMtok >= 0)) assert(false, `price: ${priceMicrosPerMtok}`)
  const cost = mulDivCeil(tokens, priceMicrosPerMtok, 1_000_000)
  assert(cost < Number.MAX_SAFE_INTEGER, 'cost overflows safe integers')
  return micros(cost)
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
  const amount = whole * MICROS_PER_USD + fraction
  // Beyond 2^53 µ$ (about $9 billion) the amount could not be held exactly: not an amount at all.
  return Number.isSafeInteger(amount) ? micros(amount) : undefined
}

/** USD per million tokens (catalogue and config prices, may be fractional) → µ$ per Mtok, rounded up. */
export function usdPerMtokToMicros(usdPerMtok: number): number {
  if (!(Number.isFinite(usdPerMtok) && usdPerMtok >= 0)) assert(false, `price: ${usdPerMtok}`)
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
