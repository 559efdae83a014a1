/**
 * The demo's cast and traffic, pure and seeded: four teams with users, endpoints, prompt versions
 * and environments; a daily rhythm; a prompt version that made an endpoint dearer a few days ago;
 * a two-hour spike two days ago. `hourlyCalls` says which calls one simulated hour makes; the
 * runner (run-demo.ts) sends them through the gateway.
 */

export interface DemoConsumer {
  readonly name: string
  readonly team: string
  readonly environment: 'prod' | 'staging'
  readonly agent?: string
  /** Requests that no wallet can pay wait for an owner's decision instead of failing at once. */
  readonly holds?: boolean
}

export interface DemoEndpoint {
  readonly tag: string
  readonly model: string
  /** Prompt length in characters before jitter (the mock bills ceil(chars / 4) input tokens). */
  readonly promptChars: number
  readonly weight: number
  /** Prompt versions by how many days ago they were deployed, newest last. */
  readonly versions: ReadonlyArray<{ readonly name: string; readonly sinceDaysAgo: number; readonly promptFactor: number }>
}

export interface DemoTeam {
  readonly id: string
  readonly callsPerHour: number
  readonly users: readonly string[]
  readonly endpoints: readonly DemoEndpoint[]
  readonly consumers: readonly DemoConsumer[]
  readonly walletUsd: number
}

export const DEMO_TEAMS: readonly DemoTeam[] = [
  {
    id: 'growth',
    callsPerHour: 6,
    users: ['ana', 'ben', 'chen', 'dara', 'eli'],
    walletUsd: 150,
    consumers: [
      { name: 'growth-web', team: 'growth', environment: 'prod' },
      { name: 'growth-staging', team: 'growth', environment: 'staging' },
    ],
    endpoints: [
      {
        tag: 'search.summarize',
        model: 'gpt-4o',
        promptChars: 6_000,
        weight: 3,
        versions: [
          { name: 'summarize_v3', sinceDaysAgo: 60, promptFactor: 1 },
          { name: 'summarize_v4', sinceDaysAgo: 4, promptFactor: 2.2 },
        ],
      },
      { tag: 'chat.reply', model: 'gpt-4o-mini', promptChars: 3_000, weight: 5, versions: [{ name: 'reply_v7', sinceDaysAgo: 60, promptFactor: 1 }] },
    ],
  },
  {
    id: 'support',
    callsPerHour: 4,
    users: ['fay', 'gus', 'hana'],
    walletUsd: 80,
    consumers: [{ name: 'support-desk', team: 'support', environment: 'prod' }],
    endpoints: [
      { tag: 'ticket.triage', model: 'gpt-4o-mini', promptChars: 2_500, weight: 4, versions: [{ name: 'triage_v2', sinceDaysAgo: 60, promptFactor: 1 }] },
      {
        tag: 'reply.draft',
        model: 'gpt-4o',
        promptChars: 5_000,
        weight: 2,
        versions: [
          { name: 'draft_v1', sinceDaysAgo: 60, promptFactor: 1 },
          { name: 'draft_v2', sinceDaysAgo: 9, promptFactor: 0.8 },
        ],
      },
    ],
  },
  {
    id: 'research',
    callsPerHour: 2,
    users: ['ivo', 'june'],
    walletUsd: 60,
    consumers: [{ name: 'research-crawler', team: 'research', environment: 'prod', agent: 'crawler' }],
    endpoints: [
      { tag: 'research.crawl', model: 'gpt-4.1-mini', promptChars: 8_000, weight: 1, versions: [{ name: 'crawl_v1', sinceDaysAgo: 60, promptFactor: 1 }] },
    ],
  },
  {
    id: 'finance',
    callsPerHour: 1,
    users: ['kai'],
    walletUsd: 20,
    consumers: [{ name: 'finance-reports', team: 'finance', environment: 'prod' }],
    endpoints: [
      { tag: 'report.explain', model: 'gpt-4o-mini', promptChars: 4_000, weight: 1, versions: [{ name: 'explain_v1', sinceDaysAgo: 60, promptFactor: 1 }] },
    ],
  },
]

/**
 * The team whose small wallet runs dry in the live phase (it has no history: a request that holds
 * would stall the history), and whose notebook's next request then waits on a cost ticket.
 */
export const DRY_TEAM = { id: 'labs', user: 'lee', walletUsd: 0.02, endpoint: 'notebook.ask', model: 'gpt-4o', promptChars: 8_000 } as const
export const DRY_CONSUMER: DemoConsumer = { name: 'labs-notebook', team: DRY_TEAM.id, environment: 'prod', holds: true }

export const ALL_CONSUMERS: readonly DemoConsumer[] = [...DEMO_TEAMS.flatMap((t) => t.consumers), DRY_CONSUMER]

/** The spike: search.summarize on summarize_v4 with long prompts, two hours starting this long before now. */
export const SPIKE = { startHoursAgo: 50, hours: 2, callsPerHour: 50, promptChars: 40_000, team: 'growth', endpoint: 'search.summarize' } as const

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

export interface DemoCall {
  readonly consumer: string
  readonly user: string
  readonly agent: string | undefined
  readonly endpoint: string
  readonly promptVersion: string
  readonly model: string
  readonly promptChars: number
}

/** Mulberry32: a small seeded generator, so a demo run is reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** Office hours busy, nights quiet, weekends half. */
export function rhythmOf(hourStartMs: number): number {
  const date = new Date(hourStartMs)
  const hour = date.getUTCHours()
  const weekend = date.getUTCDay() === 0 || date.getUTCDay() === 6
  const daily = hour < 6 ? 0.25 : hour < 8 ? 0.6 : hour < 18 ? 1 : hour < 22 ? 0.6 : 0.35
  return daily * (weekend ? 0.5 : 1)
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!
}

function pickWeighted(random: () => number, endpoints: readonly DemoEndpoint[]): DemoEndpoint {
  const total = endpoints.reduce((sum, e) => sum + e.weight, 0)
  let roll = random() * total
  for (const endpoint of endpoints) {
    roll -= endpoint.weight
    if (roll < 0) return endpoint
  }
  return endpoints[endpoints.length - 1]!
}

/** Calls per hour for a Poisson-ish count around `mean`, never negative. */
function countAround(random: () => number, mean: number): number {
  const whole = Math.floor(mean)
  return whole + (random() < mean - whole ? 1 : 0)
}

/**
 * The calls of the simulated hour starting at `hourStartMs`, given the real `nowMs` (prompt
 * versions and the spike are placed relative to it) and a volume factor (`--fast` uses less).
 */
export function hourlyCalls(hourStartMs: number, nowMs: number, volume: number, random: () => number): DemoCall[] {
  const calls: DemoCall[] = []
  const rhythm = rhythmOf(hourStartMs)
  const daysAgo = (nowMs - hourStartMs) / DAY_MS
  for (const team of DEMO_TEAMS) {
    const count = countAround(random, team.callsPerHour * rhythm * volume)
    for (let i = 0; i < count; i++) {
      const endpoint = pickWeighted(random, team.endpoints)
      const version = [...endpoint.versions].reverse().find((v) => v.sinceDaysAgo >= daysAgo) ?? endpoint.versions[0]!
      const consumer = team.consumers.length > 1 && random() < 0.15 ? team.consumers[1]! : team.consumers[0]!
      calls.push({
        consumer: consumer.name,
        user: pick(random, team.users),
        agent: consumer.agent,
        endpoint: endpoint.tag,
        promptVersion: version.name,
        model: endpoint.model,
        promptChars: Math.round(endpoint.promptChars * version.promptFactor * (0.6 + random() * 0.8)),
      })
    }
  }
  // The hour that contains now is 0 hours ago.
  const hoursAgo = Math.floor((nowMs - hourStartMs) / HOUR_MS)
  if (hoursAgo <= SPIKE.startHoursAgo && hoursAgo > SPIKE.startHoursAgo - SPIKE.hours) calls.push(...spikeCalls(random))
  return calls
}

function spikeCalls(random: () => number): DemoCall[] {
  const team = DEMO_TEAMS.find((t) => t.id === SPIKE.team)!
  return Array.from({ length: SPIKE.callsPerHour }, () => ({
    consumer: team.consumers[0]!.name,
    user: pick(random, team.users),
    agent: undefined,
    endpoint: SPIKE.endpoint,
    promptVersion: 'summarize_v4',
    model: 'gpt-4o',
    promptChars: Math.round(SPIKE.promptChars * (0.9 + random() * 0.2)),
  }))
}

export function labsCall(random: () => number): DemoCall {
  return {
    consumer: DRY_CONSUMER.name,
    user: DRY_TEAM.user,
    agent: undefined,
    endpoint: DRY_TEAM.endpoint,
    promptVersion: 'notebook_v1',
    model: DRY_TEAM.model,
    promptChars: Math.round(DRY_TEAM.promptChars * (0.8 + random() * 0.4)),
  }
}
