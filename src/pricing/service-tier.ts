/**
 * OpenAI service tiers. A call may ask for `service_tier` (`auto`, `default`, `flex`, `priority`,
 * `scale`), and the answer says which tier served it. The tiers bill the same tokens at different
 * prices, and the catalogue has only the standard ones:
 *
 * - `priority` costs up to 2× the standard per-token prices (OpenAI publishes ratios of about
 *   1.7×–2.0× by model). It is charged at 2× — an upper bound — and flagged as such.
 * - `flex` costs half the standard prices on the models that offer it. It is charged at the
 *   standard prices — above the bill, never below — and flagged, rather than trusting a discount
 *   the catalogue does not state (nor how it applies to cached input) for every model.
 * - `scale` and `batch` are charged at the standard prices, flagged the same way.
 * - A tier Tollgate does not know is charged like `priority`: a new tier may cost more.
 * - `auto` (or no tier) is served at whatever the OpenAI project is set to; the target's
 *   `service_tier_default` says which, so its worst case is priced at that tier.
 *
 * Anthropic's `service_tier` does not change per-token prices; the Messages path never calls this.
 */
import type { ModelPrice, ServiceTierPricing } from './types.js'

/** Priority prices as a percent of the standard ones: the top of OpenAI's published ratios. */
export const PRIORITY_PRICE_PERCENT = 200

/** Tiers billed at the standard prices exactly (`auto` only in requests: the answer names the real tier). */
const STANDARD_TIERS: ReadonlySet<string> = new Set(['default', 'auto', 'standard'])
/** Tiers billed at or below the standard prices. */
const AT_MOST_STANDARD_TIERS: ReadonlySet<string> = new Set(['flex', 'scale', 'batch'])

/** How `tier` is priced; undefined for the standard tier (or none named). */
export function serviceTierPricing(tier: string | undefined): ServiceTierPricing | undefined {
  if (tier === undefined || STANDARD_TIERS.has(tier)) return undefined
  if (AT_MOST_STANDARD_TIERS.has(tier)) return { name: tier, pricePercent: 100, upperBound: true }
  return { name: tier, pricePercent: PRIORITY_PRICE_PERCENT, upperBound: true }
}

/**
 * `price` for a call served (or asked to be served) at `tier`: per-token prices scaled, the
 * source suffixed `;service_tier:<name>@<percent>%~upper_bound`. The same object when the tier is
 * standard, so the common path allocates nothing.
 */
export function priceAtServiceTier(price: ModelPrice, tier: string | undefined): ModelPrice {
  const pricing = serviceTierPricing(tier)
  if (pricing === undefined) return price
  const percent = pricing.pricePercent
  // Exact for 100 and 200 (the only percents used); ceil keeps any other never below.
  const scale = (unit: number): number => Math.ceil((unit * percent) / 100)
  return Object.freeze<ModelPrice>(
    Object.assign({}, price, {
      inputMicrosPerMtok: scale(price.inputMicrosPerMtok),
      outputMicrosPerMtok: scale(price.outputMicrosPerMtok),
      cacheReadMicrosPerMtok: scale(price.cacheReadMicrosPerMtok),
      cacheWriteMicrosPerMtok: scale(price.cacheWriteMicrosPerMtok),
      cacheWrite1hMicrosPerMtok: scale(price.cacheWrite1hMicrosPerMtok),
      audioInputMicrosPerMtok: scale(price.audioInputMicrosPerMtok),
      audioOutputMicrosPerMtok: scale(price.audioOutputMicrosPerMtok),
      source: `${price.source};service_tier:${pricing.name}@${percent}%~upper_bound`,
      serviceTier: pricing,
    }),
  )
}

/**
 * The tier a priced call was served at, read back from its price source (the suffix
 * `priceAtServiceTier` writes); undefined when it names none (the standard tier). Stored usage
 * events keep their tier only there, and replay reprices them at it.
 */
export function serviceTierOfPriceSource(source: string): string | undefined {
  return /;service_tier:(.+?)@\d+%/.exec(source)?.[1]
}

/**
 * The tier a call will be served at, as far as its request can tell: the tier it names, or, for
 * `auto` or none, `projectDefault` — OpenAI serves those at the tier the project's settings name,
 * which the request does not carry (a target's `service_tier_default` says it).
 */
export function tierServingRequest(requested: string | undefined, projectDefault: string | undefined): string | undefined {
  return requested === undefined || requested === 'auto' ? (projectDefault ?? requested) : requested
}

/** The `service_tier` a request body asks for (OpenAI APIs only), if it is a string. */
export function requestedServiceTier(body: Record<string, unknown>): string | undefined {
  const tier = body['service_tier']
  return typeof tier === 'string' && tier.length > 0 ? tier : undefined
}
