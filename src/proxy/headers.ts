/** Tollgate's response headers (reserved and actual cost, and what remains). */

export const H = {
  requestId: 'x-tollgate-request-id',
  cost: 'x-tollgate-cost-usd',
  /** `reported`, `counted` or `estimated`: where the cost's token counts come from. */
  usageSource: 'x-tollgate-usage-source',
  /** Stream trailer: `complete`, or `cut` when the upstream ended it early. */
  streamOutcome: 'x-tollgate-stream-outcome',
  costReserved: 'x-tollgate-cost-reserved-usd',
  wallet: 'x-tollgate-wallet',
  walletRemaining: 'x-tollgate-wallet-remaining-usd',
  outputCapped: 'x-tollgate-output-tokens-capped',
  degraded: 'x-tollgate-degraded',
  decision: 'x-tollgate-decision',
  idempotentReplay: 'x-tollgate-idempotent-replay',
} as const

/** Upstream headers worth passing on: content type, the provider's request ids and rate-limit state. */
export function forwardedUpstreamHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const name of Object.keys(upstream)) {
    const value = upstream[name]
    if (value === undefined) continue
    if (
      name === 'content-type' ||
      name === 'x-request-id' ||
      name === 'request-id' ||
      name === 'retry-after' ||
      name.startsWith('openai-') ||
      name.startsWith('anthropic-') ||
      name.startsWith('x-ratelimit-')
    ) {
      headers[name] = Array.isArray(value) ? value.join(', ') : value
    }
  }
  return headers
}
