/** `providers.targets` and `models`: where requests go, under which name, at which price. */
import { parseUsd, usdPerMtokToMicros } from '../money/index.js'
import { checkUnique, type Context } from './context.js'
import { DEFAULTS } from './defaults.js'
import { quote } from './describe.js'
import type { ModelInput, TargetInput } from './schema.js'
import type { ModelPriceOverride, ModelRoute, ProviderTarget } from './types.js'

export function normalizeTargets(inputs: readonly TargetInput[] | undefined, ctx: Context): ProviderTarget[] {
  if (inputs === undefined) return builtInTargets(ctx.env)
  checkUnique(
    ctx,
    inputs,
    (t) => t.id,
    (i) => `providers.targets[${i}].id`,
    'target id',
  )
  return inputs.map((input, index) => normalizeTarget(input, `providers.targets[${index}]`, ctx))
}

function normalizeTarget(input: TargetInput, path: string, ctx: Context): ProviderTarget {
  const timeoutMs = input.timeout_ms ?? DEFAULTS.target.timeoutMs
  const connectionsMax = input.connections_max ?? DEFAULTS.target.connectionsMax
  const serviceTier = serviceTierDefaultOf(input, path, ctx)
  if (input.provider === 'mock') {
    const baseUrl = input.base_url === undefined ? undefined : stripTrailingSlash(input.base_url)
    return { id: input.id, provider: 'mock', baseUrl, apiKey: baseUrl === undefined ? undefined : 'mock', apiKeyEnv: undefined, timeoutMs, connectionsMax }
  }
  const baseUrl = stripTrailingSlash(input.provider === 'openai-compatible' ? input.base_url : (input.base_url ?? DEFAULTS.target.baseUrl[input.provider]))
  let apiKeyEnv: string | undefined
  let apiKey: string | undefined
  if (input.secret_key_ref !== undefined) {
    apiKeyEnv = input.secret_key_ref.env
    apiKey = ctx.resolveSecret(apiKeyEnv, `${path}.secret_key_ref.env`)
  } else if (input.provider !== 'openai-compatible') {
    // The official SDKs read these variables when given no key; a real OpenAI or Anthropic target
    // always needs one, so the gateway does the same rather than fail on the first request.
    apiKeyEnv = DEFAULTS.target.secretEnv[input.provider]
    apiKey = ctx.resolveSecret(apiKeyEnv, path, ` (read because the target has no secret_key_ref)`)
  }
  return { id: input.id, provider: input.provider, baseUrl, apiKey, apiKeyEnv, timeoutMs, connectionsMax, ...serviceTier }
}

/**
 * `service_tier_default`, on OpenAI targets only: OpenAI is the provider whose `auto` tier the
 * project's settings decide. Elsewhere it would be a setting that changes nothing, so it is refused.
 */
function serviceTierDefaultOf(input: TargetInput, path: string, ctx: Context): Pick<ProviderTarget, 'serviceTierDefault'> {
  if (input.provider === 'openai') return { serviceTierDefault: input.service_tier_default ?? DEFAULTS.target.serviceTierDefault }
  if (input.service_tier_default !== undefined) {
    ctx.report(`${path}.service_tier_default`, `only an openai target has a service tier default (this target's provider is ${input.provider}); remove the key`)
  }
  return {}
}

function stripTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '')
}

/**
 * The targets used when the config names none (`tollgate serve` without --config, or a file
 * without `providers`): OpenAI and/or Anthropic when their key variable is set, else the mock, so
 * a newcomer sees the gateway answer.
 */
export function builtInTargets(env: NodeJS.ProcessEnv): ProviderTarget[] {
  const targets: ProviderTarget[] = []
  for (const provider of ['openai', 'anthropic'] as const) {
    const apiKeyEnv = DEFAULTS.target.secretEnv[provider]
    const apiKey = env[apiKeyEnv]
    if (apiKey === undefined || apiKey === '') continue
    targets.push({
      id: DEFAULTS.builtInTargetIds[provider],
      provider,
      baseUrl: DEFAULTS.target.baseUrl[provider],
      apiKey,
      apiKeyEnv,
      timeoutMs: DEFAULTS.target.timeoutMs,
      connectionsMax: DEFAULTS.target.connectionsMax,
      ...(provider === 'openai' && { serviceTierDefault: DEFAULTS.target.serviceTierDefault }),
    })
  }
  if (targets.length > 0) return targets
  return [
    {
      id: DEFAULTS.builtInTargetIds.mock,
      provider: 'mock',
      baseUrl: undefined,
      apiKey: undefined,
      apiKeyEnv: undefined,
      timeoutMs: DEFAULTS.target.timeoutMs,
      connectionsMax: DEFAULTS.target.connectionsMax,
    },
  ]
}

export function normalizeModels(inputs: readonly ModelInput[] | undefined, targets: readonly ProviderTarget[], ctx: Context): ModelRoute[] {
  if (inputs === undefined) return []
  checkUnique(
    ctx,
    inputs,
    (m) => m.name,
    (i) => `models[${i}].name`,
    'model name',
  )
  const targetIds = targets.map((t) => t.id)
  return inputs.map((input, index) => {
    const path = `models[${index}]`
    if (input.target !== undefined && !targetIds.includes(input.target)) {
      ctx.report(`${path}.target`, `unknown target ${quote(input.target)} (targets: ${targetIds.join(', ')})`)
    }
    if (input.degrade_to !== undefined && input.degrade_to === input.name) {
      ctx.report(`${path}.degrade_to`, `a model cannot degrade to itself`)
    }
    return {
      name: input.name,
      target: input.target,
      upstreamModel: input.upstream_model ?? input.name,
      pricing: input.pricing === undefined ? undefined : priceOverride(input.pricing, `${path}.pricing`, ctx),
      degradeTo: input.degrade_to,
      outputTokensMax: input.max_output_tokens,
    }
  })
}

function priceOverride(pricing: NonNullable<ModelInput['pricing']>, path: string, ctx: Context): ModelPriceOverride {
  const optional = (usd: number | undefined) => (usd === undefined ? undefined : usdPerMtokToMicros(usd))
  // A per-token price is rounded up to the µ$ per Mtok, a few µ$ over a million tokens. A per-call
  // fee is not: a 1,000th of a µ$ rounded up on every search would bill $1 per 1,000 calls more
  // than the price written, so a fee that is not whole µ$ per 1,000 calls is refused instead.
  const perKcall = (usd: number | undefined, key: string) => {
    if (usd === undefined) return undefined
    const exact = parseUsd(usd)
    if (exact === undefined) ctx.report(`${path}.${key}`, `expected USD per 1,000 calls in whole micro-dollars (at most 6 decimals), got ${usd}`)
    return exact
  }
  return {
    inputMicrosPerMtok: usdPerMtokToMicros(pricing.input_mtok),
    outputMicrosPerMtok: usdPerMtokToMicros(pricing.output_mtok),
    cacheReadMicrosPerMtok: optional(pricing.cache_read_mtok),
    cacheWriteMicrosPerMtok: optional(pricing.cache_write_mtok),
    cacheWrite1hMicrosPerMtok: optional(pricing.cache_write_1h_mtok),
    audioInputMicrosPerMtok: optional(pricing.input_audio_mtok),
    audioOutputMicrosPerMtok: optional(pricing.output_audio_mtok),
    webSearchMicrosPerKcall: perKcall(pricing.web_search_kcall, 'web_search_kcall'),
    fileSearchMicrosPerKcall: perKcall(pricing.file_search_kcall, 'file_search_kcall'),
  }
}
