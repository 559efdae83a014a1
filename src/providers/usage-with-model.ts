import type { Usage } from './types.js'

/** Usage read from a provider body, with the model the provider says served the call (pricing keys on it). */
export interface UsageWithModel {
  usage: Usage
  model: string | undefined
}
