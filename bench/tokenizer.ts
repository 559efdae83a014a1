/**
 * `npx tsx bench/tokenizer.ts`: how long token counting takes on text that used to block the
 * event loop (one long run without whitespace) and on ordinary prose, next to gpt-tokenizer's own
 * whole-text count. A bench, not a test: timings on a shared CI machine are not assertions.
 * Each figure is the fastest of five runs (one for the whole-text count of 64 KB of "x", none for
 * 1 MB of "a", which would take minutes); `--no-whole` skips the whole-text counts.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { countTokens as wholeTextCount } from 'gpt-tokenizer'
import { countTokens, warmTokenizer } from '../src/lib/tokenizer.js'

const plainText = { disallowedSpecial: new Set<string>() }
const withWhole = !process.argv.includes('--no-whole')

/** English text: the project's own documentation, repeated to `chars` when that is longer. */
function prose(chars: number): string {
  const docs = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs')
  const text = readdirSync(docs)
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => readFileSync(join(docs, name), 'utf8'))
    .join('\n')
  return text.repeat(Math.ceil(chars / text.length)).slice(0, chars)
}

/**
 * `count` words of 250 letters (just under the length counted by bytes), each different, also
 * between runs: no help from the tokenizer's merge cache.
 */
function longWords(count: number, run: number): string {
  const words: string[] = []
  for (let i = 0; i < count; i++) {
    const tag = (run * count + i).toString(26).replace(/[0-9]/g, (digit) => 'qrstuvwxyz'[Number(digit)]!)
    words.push(`${tag}${'e'.repeat(250)}`.slice(0, 250))
  }
  return words.join(' ')
}

/** The fastest of `runs` counts (the first also pays for JIT and an empty merge cache). */
function time(count: (text: string) => number, text: (run: number) => string, runs: number): { ms: number; tokens: number } {
  let ms = Number.POSITIVE_INFINITY
  let tokens = 0
  for (let i = 0; i < runs; i++) {
    const input = text(i)
    const start = performance.now()
    tokens = count(input)
    ms = Math.min(ms, performance.now() - start)
  }
  return { ms, tokens }
}

warmTokenizer()
wholeTextCount('warm up', plainText)
const longRunX = 'x'.repeat(64_000)
const longRunA = 'a'.repeat(1_000_000)
const prose100k = prose(100_000)
const prose4m = prose(4_000_000)
const cases: [string, (run: number) => string, boolean][] = [
  ['64 KB of "x"', () => longRunX, true],
  ['1 MB of "a"', () => longRunA, false],
  ['100 KB of English prose (docs/*.md)', () => prose100k, true],
  ['4 MB of English prose (docs/*.md repeated)', () => prose4m, true],
  ['1 MB of distinct 250-letter words', (run) => longWords(4_000, run), true],
]
for (const [name, text, compare] of cases) {
  const ours = time(countTokens, text, 5)
  const slow = name.includes('"x"')
  const whole = withWhole && compare ? time((t) => wholeTextCount(t, plainText), text, slow ? 1 : 5) : undefined
  const wholePart = whole === undefined ? '' : `; whole-text ${whole.ms.toFixed(1)} ms, ${whole.tokens} tokens`
  console.log(`${name}: ${ours.ms.toFixed(2)} ms, ${ours.tokens} tokens${wholePart}`)
}
