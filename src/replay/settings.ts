/** The replay settings of a running gateway: its prices, its degrade targets, its consumer keys. */
import type { ConsumerDirectory } from '../auth/index.js'
import type { BudgetService } from '../budgets/index.js'
import { costOfUsage, priceAtServiceTier, priceForWebSearchKind, type PriceBook } from '../pricing/index.js'
import type { ProviderKind } from '../providers/types.js'
import { WALLET_DEGRADE_OUTPUT_TOKENS_MAX } from '../proxy/index.js'
import type { ReplaySettings } from './engine.js'
import type { ReplayPolicy } from './policy-file.js'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

export interface GatewayReplayDeps {
  readonly priceBook: PriceBook
  readonly budgets: Pick<BudgetService, 'degradeSettings'>
  readonly consumers: Pick<ConsumerDirectory, 'boundUsers'>
}

export function gatewayReplaySettings(deps: GatewayReplayDeps, policy: ReplayPolicy, fromMs: number, toMs: number): ReplaySettings {
  const boundUsers = deps.consumers.boundUsers()
  return {
    policy,
    degrade: deps.budgets.degradeSettings(),
    walletDegradeOutputTokensMax: WALLET_DEGRADE_OUTPUT_TOKENS_MAX,
    repriceAt: (event, model, usage) => {
      const price = deps.priceBook.lookup(event.provider as ProviderKind, model, usage.inputTokens)
      if (!price) return undefined
      try {
        // As the live path prices a call (proxy/pipeline.ts): its searches at the fee of the kind
        // it made them with, on `model`; then at the service tier the call was served at — a
        // project that served it at priority serves the cheaper model at priority too.
        const searched = priceForWebSearchKind(price, event.webSearchKind, model)
        return costOfUsage(usage, priceAtServiceTier(searched, usage.serviceTier)).totalMicros
      } catch {
        return undefined
      }
    },
    userFromKey: (keyName, userId) => keyName !== undefined && boundUsers.get(keyName) === userId,
    bucketMs: bucketFor(toMs - fromMs),
  }
}

/** Hours for a window of up to three days, days beyond. */
export function bucketFor(windowMs: number): number {
  return windowMs <= 3 * DAY_MS ? HOUR_MS : DAY_MS
}
