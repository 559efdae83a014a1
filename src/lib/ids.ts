/**
 * Prefixed, time-ordered ids: `rsv_…`, `wal_…`, `ct_…`. The body is 48 bits of
 * milliseconds followed by 80 random bits, base32 (Crockford), so ids sort by creation time.
 */
import { randomBytes } from 'node:crypto'

export type IdPrefix = 'rsv' | 'wal' | 'bud' | 'ct' | 'evt' | 'ntf' | 'exp' | 'req' | 'tok' | 'led' | 'obx' | 'ck' | 'rpl'

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const POOL_BYTES = 4096
const ID_RANDOM_BYTES = 10
let pool = randomBytes(POOL_BYTES)
let poolOffset = 0

/** Where the next id's 10 random bytes start in `pool` (read in place: no Buffer view per id). */
function takeRandom(): number {
  if (poolOffset + ID_RANDOM_BYTES > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES)
    poolOffset = 0
  }
  const at = poolOffset
  poolOffset += ID_RANDOM_BYTES
  return at
}

/** Alphabet characters as bytes, and one buffer each id is written into and decoded from once. */
const ALPHABET_CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0))
/** Prefixes are a few letters; a longer one would not fit `scratch` (and is refused, never cut). */
const PREFIX_MAX = 8
const scratch = Buffer.alloc(PREFIX_MAX + 1 + 10 + 16)

/**
 * Written byte by byte into `scratch` and decoded as one string: building it by `+=` made a
 * string per character (26 per id, several ids per call), garbage on every request.
 */
export function newId(prefix: IdPrefix, nowMs = Date.now()): string {
  const p = prefix.length
  if (p > PREFIX_MAX) throw new Error(`id prefix too long: ${prefix}`)
  for (let i = 0; i < p; i++) scratch[i] = prefix.charCodeAt(i)
  scratch[p] = 0x5f // '_'
  // Whole milliseconds: a fractional time would index past the alphabet.
  let t = Math.floor(nowMs)
  for (let i = p + 10; i > p; i--) {
    scratch[i] = ALPHABET_CODES[t % 32]!
    t = Math.floor(t / 32)
  }
  const at = takeRandom()
  for (let i = 0; i < 16; i++) {
    // 5 bits per character out of 80 random bits.
    const bit = i * 5
    const byte = at + (bit >> 3)
    const shift = bit & 7
    // The last character is the tenth byte's low five bits alone: the byte after it is the next id's.
    const word = (pool[byte]! << 8) | (bit >> 3 < ID_RANDOM_BYTES - 1 ? pool[byte + 1]! : 0)
    scratch[p + 11 + i] = ALPHABET_CODES[(word >> (11 - shift)) & 31]!
  }
  return scratch.toString('latin1', 0, p + 27)
}
