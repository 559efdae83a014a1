/**
 * A generated data set of usage events for export and report tests: several teams and users over
 * several days, costs from zero to dollars, and text fields that need CSV quoting (commas,
 * quotes, line breaks, non-ASCII). Deterministic for a seed, so a failure can be replayed.
 */
import { micros } from '../../src/money/index.js'
import { emptyUsage } from '../../src/providers/index.js'
import type { UsageEvent } from '../../src/usage/index.js'

const DAY_MS = 86_400_000
const TRICKY = ['plain', 'with, comma', 'with "quotes"', 'line\nbreak', 'crlf\r\nbreak', 'ünïcödé ✓', '=SUM(A1)', ' spaced ']

/** A small linear congruential generator: enough spread for test data, same numbers every run. */
function rng(seed: number) {
  let state = seed >>> 0
  return (n: number) => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0
    return state % n
  }
}

export interface GeneratedData {
  readonly events: UsageEvent[]
  readonly fromMs: number
  readonly toMs: number
}

/** `count` events of org `default` between `fromMs` and `fromMs + days`, teams team_a|team_b|team_c. */
export function generateEvents(count: number, options: { seed?: number; fromMs?: number; days?: number; orgId?: string } = {}): GeneratedData {
  const next = rng(options.seed ?? 42)
  const fromMs = options.fromMs ?? Date.UTC(2026, 4, 1)
  const days = options.days ?? 10
  const events: UsageEvent[] = []
  for (let i = 0; i < count; i++) {
    const team = ['team_a', 'team_b', 'team_c'][next(3)]!
    const cost = micros(next(4) === 0 ? 0 : next(5_000_000))
    const input = next(50_000)
    const output = next(8_000)
    events.push({
      id: `evt_gen_${String(i).padStart(8, '0')}`,
      requestId: `req_gen_${i}`,
      atMs: fromMs + next(days * DAY_MS),
      attribution: {
        orgId: options.orgId ?? 'default',
        teamId: team,
        userId: next(5) === 0 ? undefined : `user_${next(7)}`,
        userFromKey: false,
        agentId: next(3) === 0 ? `agent_${next(3)}` : undefined,
        keyName: 'svc',
        endpointTag: TRICKY[next(TRICKY.length)],
        promptVersion: next(2) === 0 ? undefined : `v${next(4)} ${TRICKY[next(TRICKY.length)]}`,
        environment: next(4) === 0 ? 'staging' : 'prod',
      },
      provider: next(2) === 0 ? 'openai' : 'anthropic',
      targetId: 'mock',
      modelRequested: 'gpt-4o-mini',
      modelServed: 'gpt-4o-mini',
      endpoint: next(6) === 0 ? 'ingested' : 'chat_completions',
      usage: {
        inputTokens: input,
        cacheReadTokens: next(2) === 0 ? 0 : next(input + 1),
        cacheWriteTokens: 0,
        cacheWrite1hTokens: 0,
        outputTokens: output,
        reasoningTokens: next(output + 1),
        audioInputTokens: 0,
        audioOutputTokens: 0,
        // Some calls searched (from `i`, so the random draws of every other field stay as they were).
        ...(i % 7 === 0 && { webSearches: 1 + (i % 5) }),
        ...(i % 11 === 0 && { fileSearches: 2 }),
      },
      ...(i % 14 === 0 && { webSearchKind: 'chat:medium' as const }),
      usageSource: (['reported', 'counted', 'estimated'] as const)[next(3)]!,
      usageNote: undefined,
      costBreakdown:
        next(2) === 0
          ? undefined
          : { parts: [{ part: 'input', tokens: input, unitMicrosPerMtok: 150_000, costMicros: cost, fallback: false }], totalMicros: cost, tier: 'standard' },
      costMicros: cost,
      priceSource: 'catalogue:test',
      latencyMs: next(5_000),
      status: next(10) === 0 ? 'upstream_error' : 'ok',
      httpStatus: 200,
      isStream: next(2) === 0,
      decision: 'allowed',
      reservationId: undefined,
      walletId: undefined,
      dataMode: next(8) === 0 ? 'demo' : 'real',
      source: 'gateway',
      externalRequestId: undefined,
    } as UsageEvent)
  }
  return { events, fromMs, toMs: fromMs + days * DAY_MS }
}

/** One gpt-4o chat call of `teamId` (org `default`), 10 tokens in and out: a replay's raw material. */
export function aTeamChatEvent(e: { id: string; requestId: string; atMs: number; teamId: string; costMicros: number; dataMode?: 'real' | 'demo' }): UsageEvent {
  return {
    id: e.id,
    requestId: e.requestId,
    atMs: e.atMs,
    attribution: {
      orgId: 'default',
      teamId: e.teamId,
      userId: undefined,
      userFromKey: false,
      agentId: undefined,
      keyName: e.teamId,
      endpointTag: 'chat',
      promptVersion: undefined,
      environment: 'default',
    },
    provider: 'mock',
    targetId: 'mock',
    modelRequested: 'gpt-4o',
    modelServed: 'gpt-4o',
    endpoint: 'chat_completions',
    usage: { ...emptyUsage(), inputTokens: 10, outputTokens: 10 },
    usageSource: 'reported',
    usageNote: undefined,
    costBreakdown: undefined,
    costMicros: micros(e.costMicros),
    priceSource: 'test',
    latencyMs: 5,
    status: 'ok',
    httpStatus: 200,
    isStream: false,
    decision: 'unenforced',
    reservationId: undefined,
    walletId: undefined,
    dataMode: e.dataMode ?? 'real',
    source: 'gateway',
    externalRequestId: undefined,
  }
}
