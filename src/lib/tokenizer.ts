/**
 * gpt-tokenizer (o200k_base), loaded on first use instead of at start-up: its tables take about
 * half a second of CPU to load — a third of the gateway's start-up — and most requests (admin,
 * ingestion, calls whose usage is reported) never count a token. `warmTokenizer` loads it in the
 * background just after the server listens (server.ts), so the first call that counts usually
 * finds it ready; a call that comes sooner loads it itself, synchronously, once.
 *
 * Loaded through `require` (the package ships a CommonJS build) because the callers count
 * synchronously, in the middle of estimating a reservation or settling a cut stream.
 */
import { lazyRequire } from './lazy-require.js'

type GptTokenizer = typeof import('gpt-tokenizer')
export type CountTokensOptions = Parameters<GptTokenizer['countTokens']>[1]

const tokenizer = lazyRequire<GptTokenizer>('gpt-tokenizer')

export function countTokens(text: string, options?: CountTokensOptions): number {
  return tokenizer.get().countTokens(text, options)
}

export function tokenizerLoaded(): boolean {
  return tokenizer.loaded
}

/** Loads the tokenizer now, if no call has yet (blocks the event loop for the load, once). */
export function warmTokenizer(): void {
  tokenizer.get()
}
