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

export function newId(prefix: IdPrefix, nowMs = Date.now()): string {
  let time = ''
  // Whole milliseconds: a fractional time would index past the alphabet.
  let t = Math.floor(nowMs)
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time
    t = Math.floor(t / 32)
  }
  const at = takeRandom()
  let body = ''
  for (let i = 0; i < 16; i++) {
    // 5 bits per character out of 80 random bits.
    const bit = i * 5
    const byte = at + (bit >> 3)
    const shift = bit & 7
    // The last character is the tenth byte's low five bits alone: the byte after it is the next id's.
    const word = (pool[byte]! << 8) | (bit >> 3 < ID_RANDOM_BYTES - 1 ? pool[byte + 1]! : 0)
    body += ALPHABET[(word >> (11 - shift)) & 31]!
  }
  return `${prefix}_${time}${body}`
}
