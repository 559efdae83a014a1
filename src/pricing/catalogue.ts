/**
 * The price book: config overrides first, then the bundled `@pydantic/genai-prices` catalogue.
 *
 * - Loads synchronously from the data bundled in the package; never fetches (`updatePrices` is
 *   never called, so the library's remote-update hook stays unset).
 * - Catalogue USD/Mtok floats become integer µ$/Mtok here, at the edge (`usdPerMtokToMicros`).
 * - Tiered prices (e.g. above 200k input tokens): the tier is picked by the call's total input
 *   tokens, as the library does (`inputTokens > tier.start`). Without an input count the lookup
 *   returns the field-wise maximum over all tiers, which is never below the real price.
 * - Conditional prices (start dates, time-of-day windows): the one active at the clock's now. A
 *   cached entry remembers when its answer can next change and is recomputed after that instant.
 * - Lookups are memoised in a bounded Map (FIFO eviction), unknown models included, so the hot path
 *   is one string concatenation and one Map.get.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { calcPrice, type ModelInfo, type PriceCalculation } from '@pydantic/genai-prices'
import { assert } from '../lib/assert.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { usdPerMtokToMicros } from '../money/index.js'
import type { ModelRoute } from '../config/types.js'
import type { ProviderKind } from '../providers/types.js'
import type { CostPart, ModelPrice } from './types.js'
import { publishedOutputTokensMax } from './output-limits.js'

/** Default bound on memoised (provider, model) lookups; each entry is a few hundred bytes. */
export const lookupCacheEntriesMaxDefault = 4_096

/** The installed catalogue's version, read once from its package.json (the package does not export it). */
export const catalogueVersion: string = readCatalogueVersion()

function readCatalogueVersion(): string {
  const require = createRequire(import.meta.url)
  // Resolves to <pkg>/dist/index.cjs; package.json sits one directory above dist/.
  const entry = require.resolve('@pydantic/genai-prices')
  const manifestPath = path.join(path.dirname(entry), '..', 'package.json')
  const manifest: unknown = JSON.parse(readFileSync(manifestPath, 'utf8'))
  assert(typeof manifest === 'object' && manifest !== null && 'version' in manifest && typeof manifest.version === 'string', `no version in ${manifestPath}`)
  return manifest.version
}

export interface PriceBookOptions {
  /** Models whose route config carries a `pricing` override; routes without one are ignored. */
  readonly routes?: readonly ModelRoute[]
  readonly clock?: Clock
  readonly lookupCacheEntriesMax?: number
}

/** A memoised catalogue answer: price bands by input-token tier, valid until `validUntilMs`. */
interface CatalogueEntry {
  /** Ascending tier starts; band i+1 applies when inputTokens > tierStarts[i]. Empty when untiered. */
  readonly tierStarts: readonly number[]
  /** tierStarts.length + 1 bands. */
  readonly bands: readonly ModelPrice[]
  /** Field-wise maximum over the bands: the answer when the input count is unknown. */
  readonly worst: ModelPrice
  /** When a conditional price can next change; Infinity for unconditional prices. */
  readonly validUntilMs: number
  readonly model: ModelInfo
  readonly providerId: string
}

/** `null` memoises "not in the catalogue" (or not priced per token). */
type CacheValue = CatalogueEntry | null

export class PriceBook {
  readonly #overrides = new Map<string, ModelPrice>()
  /**
   * Memoised lookups by provider, then model. Two levels rather than one `provider + model` key:
   * the model string comes from the request and keeps its hash between lookups, where a joined
   * key is a new string to flatten and hash on every one (several per call).
   */
  readonly #cache = new Map<ProviderKind, Map<string, CacheValue>>()
  #cachedEntries = 0
  readonly #clock: Clock
  readonly #lookupCacheEntriesMax: number

  constructor(options: PriceBookOptions = {}) {
    this.#clock = options.clock ?? systemClock
    this.#lookupCacheEntriesMax = options.lookupCacheEntriesMax ?? lookupCacheEntriesMaxDefault
    assert(Number.isSafeInteger(this.#lookupCacheEntriesMax) && this.#lookupCacheEntriesMax > 0, `lookupCacheEntriesMax: ${this.#lookupCacheEntriesMax}`)
    const routes = options.routes ?? []
    // Route names first, so a name always beats another route's upstream model of the same spelling.
    for (const route of routes) {
      if (route.pricing !== undefined) this.#overrides.set(route.name, overridePrice(route))
    }
    for (const route of routes) {
      if (route.pricing !== undefined && !this.#overrides.has(route.upstreamModel)) {
        this.#overrides.set(route.upstreamModel, overridePrice(route))
      }
    }
  }

  /**
   * The price of `model` served by a `provider` target. `model` may be a route name or the
   * upstream model id (overrides match either). `inputTokens` selects the tier of tiered prices;
   * pass the worst-case input count when estimating, the reported one when settling.
   */
  lookup(provider: ProviderKind, model: string, inputTokens?: number): ModelPrice | undefined {
    const override = this.#overrides.get(model)
    if (override !== undefined) return override
    const models = this.#modelsOf(provider)
    let entry = this.#cached(models, provider, model)
    if (entry === null) return undefined
    if (entry.validUntilMs !== Infinity && this.#clock.nowMs() >= entry.validUntilMs) {
      const refreshed = entryOf(entry.providerId, entry.model, this.#clock.nowMs())
      models.set(model, refreshed)
      if (refreshed === null) return undefined
      entry = refreshed
    }
    if (inputTokens === undefined) return entry.worst
    const starts = entry.tierStarts
    let band = 0
    while (band < starts.length && inputTokens > (starts[band] as number)) band += 1
    return entry.bands[band]
  }

  /**
   * The most output one answer of `model` can have: its provider's published maximum, else the
   * catalogue's context window (an upper bound: no answer outgrows its context). Undefined when
   * neither is known.
   */
  outputTokensMax(provider: ProviderKind, model: string): { readonly tokens: number; readonly source: 'published' | 'context_window' } | undefined {
    const published = publishedOutputTokensMax(model)
    if (published !== undefined) return { tokens: published, source: 'published' }
    if (this.#overrides.has(model)) return undefined
    const window = this.contextWindow(provider, model)
    return window === undefined ? undefined : { tokens: window, source: 'context_window' }
  }

  /**
   * The most input `model` can take in one call: the catalogue's context window (input and output
   * together, so an upper bound of the input). Read for the model id even when a `models:` entry
   * overrides its price: a price override changes what a token costs, not what the model reads.
   * Undefined when the catalogue does not know the model or gives no window.
   */
  contextWindow(provider: ProviderKind, model: string): number | undefined {
    const entry = this.#cached(this.#modelsOf(provider), provider, model)
    const window = entry?.model.context_window
    return typeof window === 'number' && Number.isSafeInteger(window) && window > 0 ? window : undefined
  }

  /** Number of memoised lookups (for tests and metrics). */
  get cachedEntries(): number {
    return this.#cachedEntries
  }

  #modelsOf(provider: ProviderKind): Map<string, CacheValue> {
    let models = this.#cache.get(provider)
    if (models === undefined) {
      models = new Map()
      this.#cache.set(provider, models)
    }
    return models
  }

  #cached(models: Map<string, CacheValue>, provider: ProviderKind, model: string): CacheValue {
    const entry = models.get(model)
    if (entry !== undefined) return entry
    const resolved = this.#resolve(provider, model)
    if (this.#cachedEntries >= this.#lookupCacheEntriesMax) this.#forgetOldest(models)
    models.set(model, resolved)
    this.#cachedEntries += 1
    return resolved
  }

  /** FIFO within a provider (a Map iterates in insertion order), else the first provider that has any. */
  #forgetOldest(preferred: Map<string, CacheValue>): void {
    const models = preferred.size > 0 ? preferred : [...this.#cache.values()].find((m) => m.size > 0)
    const oldest = models?.keys().next()
    if (models === undefined || oldest === undefined || oldest.done === true) return
    models.delete(oldest.value)
    this.#cachedEntries -= 1
  }

  #resolve(provider: ProviderKind, model: string): CacheValue {
    const found = findInCatalogue(provider, model)
    if (found === undefined) return null
    return entryOf(found.provider.id, found.model, this.#clock.nowMs())
  }
}

/** Which catalogue provider to search for a model served by `provider`; undefined = any provider. */
function catalogueProviderFor(provider: ProviderKind, model: string): string | undefined {
  switch (provider) {
    case 'openai':
      return 'openai'
    case 'anthropic':
      return 'anthropic'
    case 'openai-compatible':
      return undefined
    case 'mock': {
      // The mock prices like the real thing, so tests and demos see real-looking costs.
      const name = model.toLowerCase()
      if (name.includes('claude')) return 'anthropic'
      if (/^(gpt-|o\d|chatgpt-|text-embedding-)/.test(name)) return 'openai'
      return undefined
    }
  }
}

/**
 * The catalogue model for `model`, using the library's own matching (match rules, dated-snapshot
 * normalisation, fallback providers). `calcPrice` with an empty usage is just the matcher here; its
 * money result is ignored.
 */
function findInCatalogue(provider: ProviderKind, model: string): PriceCalculation | undefined {
  const providerId = catalogueProviderFor(provider, model)
  const direct = match(model, providerId)
  if (direct !== undefined) return direct
  // openai-compatible (and unknown mock names): `vendor/model` ids as routers spell them.
  const slash = model.indexOf('/')
  if (providerId === undefined && slash > 0 && slash < model.length - 1) {
    return match(model.slice(slash + 1), model.slice(0, slash))
  }
  return undefined
}

function match(model: string, providerId: string | undefined): PriceCalculation | undefined {
  try {
    const found = providerId === undefined ? calcPrice({}, model) : calcPrice({}, model, { providerId })
    return found ?? undefined
  } catch {
    // A catalogue entry the library itself cannot evaluate is as good as absent.
    return undefined
  }
}

type RawPriceValue = number | { base: number; tiers: readonly { start: number; price: number }[] }
type RawPrices = Readonly<Record<string, unknown>>

function entryOf(providerId: string, model: ModelInfo, nowMs: number): CacheValue {
  const { prices, validUntilMs } = activePrices(model, nowMs)
  const source = `genai-prices@${catalogueVersion}:${providerId}/${model.id}`
  const input = priceValue(prices, 'input_mtok')
  // A model not priced per input token (per request, per audio hour, per image) cannot be priced
  // from a Usage: report it as unknown rather than as free.
  if (input === undefined) return null
  const fields = {
    input,
    output: priceValue(prices, 'output_mtok'),
    cacheRead: priceValue(prices, 'cache_read_mtok'),
    cacheWrite: priceValue(prices, 'cache_write_mtok'),
    cacheWrite1h: priceValue(prices, 'cache_write_1h_mtok'),
    audioInput: priceValue(prices, 'input_audio_mtok'),
    audioOutput: priceValue(prices, 'output_audio_mtok'),
  }
  const startSet = new Set<number>()
  for (const value of Object.values(fields)) {
    if (value !== undefined && typeof value !== 'number') for (const tier of value.tiers) startSet.add(tier.start)
  }
  const tierStarts = [...startSet].sort((a, b) => a - b)
  const toolFees = { webSearch: perKcallPrice(prices, 'web_searches_kcount'), fileSearch: perKcallPrice(prices, 'storage_searches_kcount') }
  // Band 0 covers inputTokens <= tierStarts[0]; band i covers (tierStarts[i-1], tierStarts[i]].
  const bandInputs = [0, ...tierStarts.map((start) => start + 1)]
  const bands = bandInputs.map((inputTokens, band) => {
    const at = (value: RawPriceValue | undefined): number | undefined => (value === undefined ? undefined : usdPerMtokToMicros(tierPrice(value, inputTokens)))
    return withFallbacks(
      {
        input: at(fields.input) as number,
        output: at(fields.output),
        cacheRead: at(fields.cacheRead),
        cacheWrite: at(fields.cacheWrite),
        cacheWrite1h: at(fields.cacheWrite1h),
        audioInput: at(fields.audioInput),
        audioOutput: at(fields.audioOutput),
        webSearch: toolFees.webSearch,
        fileSearch: toolFees.fileSearch,
      },
      source,
      band === 0 ? 'base' : `>${tierStarts[band - 1]}`,
    )
  })
  return {
    tierStarts,
    bands,
    worst: bands.length === 1 ? (bands[0] as ModelPrice) : maxPrice(bands, source),
    validUntilMs,
    model,
    providerId,
  }
}

/** A per-call fee (USD per 1,000 calls) as µ$ per 1,000 calls; undefined when absent or not a plain number. */
function perKcallPrice(prices: RawPrices, key: string): number | undefined {
  const value = prices[key]
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? usdPerMtokToMicros(value) : undefined
}

function priceValue(prices: RawPrices, key: string): RawPriceValue | undefined {
  const value = prices[key]
  if (value === undefined) return undefined
  if (typeof value === 'number') {
    assert(Number.isFinite(value) && value >= 0, `catalogue price ${key}: ${value}`)
    return value
  }
  assert(typeof value === 'object' && value !== null && 'base' in value && 'tiers' in value, `catalogue price ${key}`)
  const { base, tiers } = value as { base: unknown; tiers: unknown }
  assert(typeof base === 'number' && Array.isArray(tiers), `catalogue tiered price ${key}`)
  const checked = tiers.map((tier: unknown) => {
    const { start, price } = tier as { start: unknown; price: unknown }
    assert(typeof start === 'number' && Number.isSafeInteger(start) && start >= 0, `tier start ${key}`)
    assert(typeof price === 'number' && Number.isFinite(price) && price >= 0, `tier price ${key}`)
    return { start, price }
  })
  return { base, tiers: checked.sort((a, b) => a.start - b.start) }
}

/** As the library: the last tier whose start the total input count exceeds, else the base. */
function tierPrice(value: RawPriceValue, inputTokens: number): number {
  if (typeof value === 'number') return value
  let price = value.base
  for (const tier of value.tiers) if (inputTokens > tier.start) price = tier.price
  return price
}

function maxPrice(bands: readonly ModelPrice[], source: string): ModelPrice {
  const max = (pick: (price: ModelPrice) => number): number => Math.max(...bands.map(pick))
  return Object.freeze<ModelPrice>({
    inputMicrosPerMtok: max((p) => p.inputMicrosPerMtok),
    outputMicrosPerMtok: max((p) => p.outputMicrosPerMtok),
    cacheReadMicrosPerMtok: max((p) => p.cacheReadMicrosPerMtok),
    cacheWriteMicrosPerMtok: max((p) => p.cacheWriteMicrosPerMtok),
    cacheWrite1hMicrosPerMtok: max((p) => p.cacheWrite1hMicrosPerMtok),
    audioInputMicrosPerMtok: max((p) => p.audioInputMicrosPerMtok),
    audioOutputMicrosPerMtok: max((p) => p.audioOutputMicrosPerMtok),
    fallbackParts: [...new Set(bands.flatMap((b) => b.fallbackParts))],
    ...toolFeesOf(bands[0] as ModelPrice),
    source,
    tier: 'dearest',
  })
}

/** The per-call fees of a price, leaving out those it does not have. */
function toolFeesOf(price: { webSearchMicrosPerKcall?: number | undefined; fileSearchMicrosPerKcall?: number | undefined }): Partial<ModelPrice> {
  const fees: { webSearchMicrosPerKcall?: number; fileSearchMicrosPerKcall?: number } = {}
  if (price.webSearchMicrosPerKcall !== undefined) fees.webSearchMicrosPerKcall = price.webSearchMicrosPerKcall
  if (price.fileSearchMicrosPerKcall !== undefined) fees.fileSearchMicrosPerKcall = price.fileSearchMicrosPerKcall
  return fees
}

/** Known prices of one model (µ$/Mtok; tool fees µ$ per 1,000 calls); `input` is always known, the rest may be missing. */
interface KnownPrices {
  readonly input: number
  readonly output: number | undefined
  readonly cacheRead: number | undefined
  readonly cacheWrite: number | undefined
  readonly cacheWrite1h: number | undefined
  readonly audioInput: number | undefined
  readonly audioOutput: number | undefined
  readonly webSearch?: number | undefined
  readonly fileSearch?: number | undefined
}

/**
 * A missing price is never guessed low: it is the dearest known price of its kind — input side
 * (input, cache read, cache writes, audio input) or output side (output, audio output; input when
 * the model has no output price at all, as embeddings) — and the part is flagged so the events
 * that use it say so. A `models:` price override sets the real one.
 */
function withFallbacks(known: KnownPrices, source: string, tier: string): ModelPrice {
  const inputSide = [known.input, known.cacheRead, known.cacheWrite, known.cacheWrite1h, known.audioInput].filter((p): p is number => p !== undefined)
  const outputSide = [known.output, known.audioOutput].filter((p): p is number => p !== undefined)
  const dearestInput = Math.max(...inputSide)
  const dearestOutput = outputSide.length > 0 ? Math.max(...outputSide) : known.input
  const fallbackParts: CostPart[] = []
  const or = (value: number | undefined, fallback: number, ...parts: CostPart[]): number => {
    if (value !== undefined) return value
    fallbackParts.push(...parts)
    return fallback
  }
  return Object.freeze<ModelPrice>({
    inputMicrosPerMtok: known.input,
    outputMicrosPerMtok: known.output ?? known.input,
    cacheReadMicrosPerMtok: or(known.cacheRead, dearestInput, 'cache_read'),
    cacheWriteMicrosPerMtok: or(known.cacheWrite, dearestInput, 'cache_write_5m'),
    cacheWrite1hMicrosPerMtok: or(known.cacheWrite1h, dearestInput, 'cache_write_1h'),
    audioInputMicrosPerMtok: or(known.audioInput, dearestInput, 'audio_input'),
    audioOutputMicrosPerMtok: or(known.audioOutput, dearestOutput, 'audio_output'),
    fallbackParts: Object.freeze(fallbackParts),
    ...toolFeesOf({ webSearchMicrosPerKcall: known.webSearch, fileSearchMicrosPerKcall: known.fileSearch }),
    source,
    tier,
  })
}

function overridePrice(route: ModelRoute): ModelPrice {
  const pricing = route.pricing
  assert(pricing !== undefined)
  for (const value of Object.values(pricing)) {
    assert(value === undefined || (Number.isSafeInteger(value) && value >= 0), `override price for ${route.name}: ${value}`)
  }
  return withFallbacks(
    {
      input: pricing.inputMicrosPerMtok,
      output: pricing.outputMicrosPerMtok,
      cacheRead: pricing.cacheReadMicrosPerMtok,
      cacheWrite: pricing.cacheWriteMicrosPerMtok,
      cacheWrite1h: pricing.cacheWrite1hMicrosPerMtok,
      audioInput: pricing.audioInputMicrosPerMtok,
      audioOutput: pricing.audioOutputMicrosPerMtok,
      webSearch: pricing.webSearchMicrosPerKcall,
      fileSearch: pricing.fileSearchMicrosPerKcall,
    },
    `override:${route.name}`,
    'override',
  )
}

// ---------------------------------------------------------------------------------------------
// Conditional prices

type Constraint =
  | { readonly kind: 'start_date'; readonly startMs: number }
  | { readonly kind: 'time_of_day'; readonly startSec: number; readonly endSec: number }

const SECONDS_PER_DAY = 86_400
const MS_PER_DAY = SECONDS_PER_DAY * 1_000

/**
 * The prices active at `nowMs` and the instant they can next change. Mirrors the library: the
 * last conditional price whose constraint holds wins; none holding means the first.
 */
function activePrices(model: ModelInfo, nowMs: number): { prices: RawPrices; validUntilMs: number } {
  if (!Array.isArray(model.prices)) return { prices: model.prices, validUntilMs: Infinity }
  const list = model.prices
  assert(list.length > 0, `no prices for ${model.id}`)
  const constraints = list.map((entry) => parseConstraint(entry.constraint, model.id))
  let chosen = list[0] as (typeof list)[number]
  for (let i = list.length - 1; i >= 0; i -= 1) {
    const constraint = constraints[i]
    if (constraint === undefined || holds(constraint, nowMs)) {
      chosen = list[i] as (typeof list)[number]
      break
    }
  }
  let validUntilMs = Infinity
  for (const constraint of constraints) {
    if (constraint !== undefined) validUntilMs = Math.min(validUntilMs, nextBoundaryMs(constraint, nowMs))
  }
  return { prices: chosen.prices, validUntilMs }
}

function parseConstraint(raw: unknown, modelId: string): Constraint | undefined {
  if (raw === undefined) return undefined
  assert(typeof raw === 'object' && raw !== null, `price constraint of ${modelId}`)
  const fields = raw as { type?: unknown; start_date?: unknown; start_time?: unknown; end_time?: unknown }
  if (typeof fields.start_date === 'string' && (fields.type === undefined || fields.type === 'start_date')) {
    const startMs = Date.parse(`${fields.start_date}T00:00:00Z`)
    assert(Number.isFinite(startMs), `start_date of ${modelId}: ${fields.start_date}`)
    return { kind: 'start_date', startMs }
  }
  if (typeof fields.start_time === 'string' && typeof fields.end_time === 'string') {
    return {
      kind: 'time_of_day',
      startSec: secondsOfDayUtc(fields.start_time, modelId),
      endSec: secondsOfDayUtc(fields.end_time, modelId),
    }
  }
  assert(false, `unknown price constraint of ${modelId}: ${JSON.stringify(raw)}`)
}

function holds(constraint: Constraint, nowMs: number): boolean {
  if (constraint.kind === 'start_date') return nowMs >= constraint.startMs
  const nowSec = (((nowMs % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY) / 1_000
  const { startSec, endSec } = constraint
  return endSec < startSec ? nowSec >= startSec || nowSec < endSec : nowSec >= startSec && nowSec < endSec
}

function nextBoundaryMs(constraint: Constraint, nowMs: number): number {
  if (constraint.kind === 'start_date') return constraint.startMs > nowMs ? constraint.startMs : Infinity
  const dayStartMs = Math.floor(nowMs / MS_PER_DAY) * MS_PER_DAY
  let next = Infinity
  for (const sec of [constraint.startSec, constraint.endSec]) {
    let at = dayStartMs + Math.round(sec * 1_000)
    if (at <= nowMs) at += MS_PER_DAY
    next = Math.min(next, at)
  }
  return next
}

/** `HH:MM:SS[.fff](Z|±HH:MM)` → seconds after midnight UTC. */
function secondsOfDayUtc(text: string, modelId: string): number {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(text)
  assert(m !== null, `time-of-day constraint of ${modelId}: ${text}`)
  const local = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(`0.${m[4] ?? '0'}`)
  const offset = m[5] === 'Z' ? 0 : (m[6] === '+' ? 1 : -1) * (Number(m[7]) * 3600 + Number(m[8]) * 60)
  return (((local - offset) % SECONDS_PER_DAY) + SECONDS_PER_DAY) % SECONDS_PER_DAY
}
