/** `consumer_groups`: who holds a key, whom it charges, and what happens when funds run out. */
import { hash } from 'node:crypto'
import { parseUsd, ZERO, type Micros } from '../money/index.js'
import { checkUnique, type Context } from './context.js'
import { DEFAULTS } from './defaults.js'
import { describeValue } from './describe.js'
import type { ConsumerGroupInput } from './schema.js'
import type { ConsumerGroup } from './types.js'

/** sha256 hex of a consumer key: what the gateway stores and looks keys up by. */
export function hashApiKey(key: string): string {
  // One-shot: no Hash object per request (a quarter of createHash's cost for a key this short).
  return hash('sha256', key, 'hex')
}

/**
 * With `requireSecrets: false`, a group whose `api_key_ref` variable is unset gets this hash. No key
 * hashes to the empty string, so such a group can never authenticate.
 */
export const UNRESOLVED_KEY_HASH = ''

export function normalizeConsumerGroups(inputs: readonly ConsumerGroupInput[] | undefined, ctx: Context): ConsumerGroup[] {
  if (inputs === undefined) return []
  checkUnique(
    ctx,
    inputs,
    (g) => g.name,
    (i) => `consumer_groups[${i}].name`,
    'consumer group name',
  )
  const groups = inputs.map((input, index) => normalizeGroup(input, `consumer_groups[${index}]`, ctx))
  reportSharedKeys(inputs, groups, ctx)
  return groups
}

function normalizeGroup(input: ConsumerGroupInput, path: string, ctx: Context): ConsumerGroup {
  if (input.team_id !== undefined && input.wallet_team_id !== undefined) {
    ctx.report(path, 'set team_id or wallet_team_id (the same setting), not both')
  }
  return {
    name: input.name,
    apiKeyHash: keyHash(input, path, ctx),
    orgId: input.org_id ?? DEFAULTS.consumerGroup.orgId,
    teamId: input.team_id ?? input.wallet_team_id,
    userId: input.user_id,
    agentId: input.agent_id,
    environment: input.environment ?? DEFAULTS.consumerGroup.environment,
    endpointTag: input.endpoint_tag,
    onInsufficientFunds: input.on_insufficient_funds ?? DEFAULTS.consumerGroup.onInsufficientFunds,
    holdTimeoutMs: input.hold_timeout_ms ?? DEFAULTS.consumerGroup.holdTimeoutMs,
    failMode: input.fail_mode ?? DEFAULTS.consumerGroup.failMode,
    emergencyAllowanceMicros: emergencyAllowance(input.emergency_allowance_usd, `${path}.emergency_allowance_usd`, ctx),
    allowNamedUsers: input.allow_named_users ?? DEFAULTS.consumerGroup.allowNamedUsers,
    defaultOutputTokens: input.default_output_tokens,
  }
}

function keyHash(input: ConsumerGroupInput, path: string, ctx: Context): string {
  if (input.api_key !== undefined && input.api_key_ref !== undefined) {
    ctx.report(path, 'set api_key or api_key_ref, not both')
    return UNRESOLVED_KEY_HASH
  }
  if (input.api_key !== undefined) return hashApiKey(input.api_key)
  if (input.api_key_ref !== undefined) {
    const key = ctx.resolveSecret(input.api_key_ref.env, `${path}.api_key_ref.env`)
    return key === undefined ? UNRESOLVED_KEY_HASH : hashApiKey(key)
  }
  ctx.report(path, 'a consumer group needs api_key or api_key_ref: {env: NAME}')
  return UNRESOLVED_KEY_HASH
}

function emergencyAllowance(usd: number | string | undefined, path: string, ctx: Context): Micros {
  if (usd === undefined) return parseUsd(DEFAULTS.consumerGroup.emergencyAllowanceUsd) ?? ZERO
  const amount = parseUsd(usd)
  if (amount === undefined) {
    ctx.report(path, `expected a non-negative amount of USD with at most 6 decimals, got ${describeValue(usd)}`)
    return ZERO
  }
  return amount
}

/** Two groups with one key would make attribution ambiguous; the key itself is never printed. */
function reportSharedKeys(inputs: readonly ConsumerGroupInput[], groups: readonly ConsumerGroup[], ctx: Context): void {
  const owner = new Map<string, string>()
  groups.forEach((group, index) => {
    if (group.apiKeyHash === UNRESOLVED_KEY_HASH) return
    const first = owner.get(group.apiKeyHash)
    if (first === undefined) {
      owner.set(group.apiKeyHash, group.name)
      return
    }
    const field = inputs[index]?.api_key !== undefined ? 'api_key' : 'api_key_ref.env'
    ctx.report(`consumer_groups[${index}].${field}`, `the same key is already used by consumer group "${first}"`)
  })
}
