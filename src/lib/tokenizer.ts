/**
 * gpt-tokenizer (o200k_base), loaded on first use instead of at start-up: its tables take about
 * half a second of CPU to load — a third of the gateway's start-up — and most requests (admin,
 * ingestion, calls whose usage is reported) never count a token. `warmTokenizer` loads it in the
 * background just after the server listens (server.ts), so the first call that counts usually
 * finds it ready; a call that comes sooner loads it itself, synchronously, once.
 *
 * Loaded through `require` (the package ships a CommonJS build) because the callers count
 * synchronously, in the middle of estimating a reservation or settling a cut stream.
 *
 * Counting is linear in the text. gpt-tokenizer first splits text into pre-tokens with a regex
 * (words with their leading space, runs of punctuation, up to three digits, runs of whitespace),
 * then runs byte-pair merging on each pre-token — in time quadratic in the pre-token's length, so
 * one long run without a break (64 KB of "x": 1.6 s) blocks the event loop. `countTokens` splits
 * the text the same way first: pre-tokens up to `bpePreTokenBytesMax` go to the tokenizer, longer
 * ones count as their UTF-8 byte length, an upper bound (each token covers at least one byte).
 * See `countTokensWith` for why the count of the rest is exactly the tokenizer's.
 */
import { lazyRequire } from './lazy-require.js'

type GptTokenizer = typeof import('gpt-tokenizer')
type SplitPatterns = typeof import('gpt-tokenizer/encodingParams/constants')

const tokenizer = lazyRequire<GptTokenizer>('gpt-tokenizer')
/** The pre-tokenizer regex of o200k_base, the one gpt-tokenizer's default encoding splits with. */
const splitPatterns = lazyRequire<SplitPatterns>('gpt-tokenizer/encodingParams/constants')

/**
 * Pre-tokens longer than this (UTF-8 bytes) are counted by their byte length instead of being
 * merged. Merging costs about 0.2–0.9 µs per byte up to here (0.45 µs for English prose), and grows
 * with the length beyond (8 µs per byte at 8 KB). Ordinary text has no pre-token this long: words,
 * numbers and punctuation runs are far shorter; only unbroken runs (one letter repeated, a line of
 * 300 dashes, a long run of spaces, 90+ CJK characters without punctuation) get the byte bound.
 */
export const bpePreTokenBytesMax = 256

// Special-token spellings in user text or delivered output ("<|endoftext|>") are plain text to us:
// counted as text, not rejected.
const plainText = { disallowedSpecial: new Set<string>() }

/**
 * o200k tokens of `text`, never fewer than gpt-tokenizer counts on the whole text, and exactly as
 * many when no pre-token is longer than `bpePreTokenBytesMax`. Special-token spellings are text.
 */
export function countTokens(text: string): number {
  if (text.length === 0) return 0
  const encoding = tokenizer.get()
  return countTokensWith(text, (piece) => encoding.countTokens(piece, plainText))
}

/**
 * `countTokens`, with the tokenizer call given (tests wrap it to see what it is handed).
 *
 * The text is split with the tokenizer's own regex; runs of short pre-tokens are handed to
 * `countPiece` as pieces, long pre-tokens are counted by bytes. A piece counts exactly what those
 * pre-tokens count inside the whole text, because the tokenizer re-splits it into the same
 * pre-tokens: the regex has no look-behind, so matching from a piece's start is matching from that
 * point of the whole text; and a piece ends either at the end of the text or after a pre-token
 * whose last character is not whitespace. Such a pre-token was matched by an alternative with no
 * look-ahead (only the whitespace alternatives `\s+(?!\S)`, `\s+` have one, and they match
 * whitespace only), so it matches the same with the rest of the text cut off. A pre-token ending
 * in whitespace just before a cut is handed on its own (the regex matches it as itself alone).
 */
export function countTokensWith(text: string, countPiece: (piece: string) => number): number {
  if (text.length === 0) return 0
  if (!mayHoldLongPreToken(text)) return countPiece(text)
  let tokens = 0
  /** Start of the run of short pre-tokens not yet counted. */
  let pieceStart = 0
  /** End of the last pre-token in that run that ends in a non-whitespace character (a safe cut). */
  let safeEnd = 0
  /** Pre-tokens after `safeEnd`, all ending in whitespace. */
  let afterSafe: string[] = []
  const split = (splitRegex ??= new RegExp(splitPatterns.get().O200K_TOKEN_SPLIT_REGEX))
  split.lastIndex = 0
  for (let match = split.exec(text); match !== null; match = split.exec(text)) {
    const preToken = match[0]
    const end = match.index + preToken.length
    if (!exceedsBpeMax(preToken)) {
      if (endsInWhitespace(preToken)) {
        afterSafe.push(preToken)
      } else {
        safeEnd = end
        if (afterSafe.length > 0) afterSafe = []
      }
      continue
    }
    if (safeEnd > pieceStart) tokens += countPiece(text.slice(pieceStart, safeEnd))
    for (const alone of afterSafe) tokens += countPiece(alone)
    tokens += Buffer.byteLength(preToken, 'utf8')
    pieceStart = safeEnd = end
    afterSafe = []
  }
  if (pieceStart < text.length) tokens += countPiece(pieceStart === 0 ? text : text.slice(pieceStart))
  return tokens
}

/** Characters per slice of `countTokensInSlices`: about 15 ms of merging for English prose. */
export const countSliceChars = 32 * 1024

/** Resolves on the next turn of the event loop, after the I/O waiting now. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * `countTokens`, in slices of about `sliceChars` that let other work of the process run between
 * them: the count of a long delivered text (a cut stream of megabytes) would otherwise hold the
 * event loop for seconds. The same count: a slice ends after a pre-token whose last character is
 * not whitespace, the cut `countTokensWith` shows to be exact, and the next starts at the
 * following pre-token.
 */
export async function countTokensInSlices(text: string, sliceChars = countSliceChars, pause: () => Promise<void> = nextTurn): Promise<number> {
  if (text.length <= sliceChars) return countTokens(text)
  // A regex of its own: the shared one's lastIndex belongs to whichever count runs between slices.
  const split = new RegExp(splitPatterns.get().O200K_TOKEN_SPLIT_REGEX)
  let tokens = 0
  let pieceStart = 0
  for (let match = split.exec(text); match !== null; match = split.exec(text)) {
    const end = match.index + match[0].length
    if (end - pieceStart < sliceChars || endsInWhitespace(match[0])) continue
    tokens += countTokens(text.slice(pieceStart, end))
    pieceStart = end
    await pause()
  }
  if (pieceStart < text.length) tokens += countTokens(text.slice(pieceStart))
  return tokens
}

/** The split regex, a copy of the tokenizer's (global: `exec` steps through the text, faster than `matchAll`). */
let splitRegex: RegExp | undefined

/**
 * Runs of one character class that a pre-token longer than `bpePreTokenBytesMax` would need. Such
 * a pre-token has 86+ UTF-16 units (at most 3 bytes each), which the regex allows only as a run of
 * 81+ letters and marks (with one leading character and a contraction like "'ll" around it), of
 * 85+ punctuation/symbols and line breaks (after an optional space), or of 86+ whitespace.
 */
const classRunMax = 64

/**
 * False when no pre-token of `text` can exceed `bpePreTokenBytesMax` (then the whole text goes to
 * the tokenizer, with no regex pass of ours): no run of `classRunMax` units of letters, of
 * punctuation and line breaks, or of whitespace. A linear scan of char codes; a non-ASCII unit
 * continues every run, since it may belong to any class. (Were it ever wrong, a long pre-token
 * would be merged by the tokenizer: slow, but the count still exact.)
 */
export function mayHoldLongPreToken(text: string): boolean {
  if (text.length * 3 <= bpePreTokenBytesMax) return false
  let letters = 0
  let symbols = 0
  let spaces = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0x80) {
      letters++
      symbols++
      spaces++
    } else if ((code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a)) {
      letters++
      symbols = 0
      spaces = 0
    } else if (code >= 0x30 && code <= 0x39) {
      letters = 0
      symbols = 0
      spaces = 0
    } else if (code === 0x20 || (code >= 0x09 && code <= 0x0d)) {
      // \t \n \v \f \r and space; \r and \n also end a punctuation pre-token ("!\n\n").
      letters = 0
      spaces++
      symbols = code === 0x0a || code === 0x0d ? symbols + 1 : 0
    } else {
      letters = 0
      symbols++
      spaces = 0
    }
    if (letters >= classRunMax || symbols >= classRunMax || spaces >= classRunMax) return true
  }
  return false
}

function exceedsBpeMax(preToken: string): boolean {
  // A UTF-16 unit is at most 3 UTF-8 bytes (a surrogate pair, 2 units, is 4).
  if (preToken.length * 3 <= bpePreTokenBytesMax) return false
  if (preToken.length > bpePreTokenBytesMax) return true
  return Buffer.byteLength(preToken, 'utf8') > bpePreTokenBytesMax
}

const whitespace = /\s/u

function endsInWhitespace(preToken: string): boolean {
  return whitespace.test(preToken.charAt(preToken.length - 1))
}

export function tokenizerLoaded(): boolean {
  return tokenizer.loaded
}

/** Loads the tokenizer now, if no call has yet (blocks the event loop for the load, once). */
export function warmTokenizer(): void {
  tokenizer.get()
}
