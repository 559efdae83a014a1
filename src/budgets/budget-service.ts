/**
 * Orchestration for budgets: CRUD over the store (org-scoped), the in-memory cache the proxy
 * reads on every call (`applicableBudgets`, `decide`), and what a settled spend means
 * (`onSpendSettled`): thresholds crossed, claimed once per budget per period across processes,
 * then emitted with context through notify; plus the burn-rate forecast and spike checks, and
 * the same threshold logic for wallets against their allocation (`onWalletSpendSettled`).
 * Evaluation only sees counters (before/after), never where spend came from, so proxied calls
 * and ingested events (`POST /v1/events`) go through the same path.
 */
import { assert } from '../lib/assert.js'
import type { Clock } from '../lib/clock.js'
import { newId } from '../lib/ids.js'
import { counterKey, type LedgerStore } from '../ledger/ledger-store.js'
import { teamOfWallet, type WalletCrossing as LedgerWalletCrossing } from '../ledger/types.js'
import { micros, toUsd, type Micros } from '../money/index.js'
import type { BudgetAlert, BudgetSpec, BudgetThresholdAction, EndpointTier } from '../config/types.js'
import type { Attribution } from '../usage/types.js'
import { newNotification, type FiringMark, type NotificationEscalation, type NotificationSink, type NotificationType } from '../notify/index.js'
import {
  applyPatch,
  counterRefOf,
  countsDifferently,
  scopeLabel,
  specFromCreateBody,
  teamOfBudget,
  type Budget,
  type BudgetCreateBody,
  type BudgetPatchBody,
  type PeriodCounter,
} from './budget.js'
import type { BudgetStore, BudgetUsageReader, BudgetWriteResult, SpendScopeFilter, TopSpendersMicros } from './budget-store.js'
import { BudgetError, BudgetNotFoundError } from './errors.js'
import { SPIKE_FLOOR_MICROS_DEFAULT, spikeDetected, type Forecast } from './forecast.js'
import { periodOf, type Period } from './period.js'
import { forecastFor, forecastHours, forecastOfBuckets, HOUR_MS, spendNotificationData, type SpendContext, type SpendDataExtras } from './spend-context.js'
import { firingThresholds, thresholdMarkMicros } from './thresholds.js'
import { resolveThresholdAction, type RequestFacts } from './policy.js'

/** Context for a notice whose top spenders could not be read (or are not asked for). */
const NO_TOP: TopSpendersMicros = { endpoints: [], users: [], models: [] }

/** A notice is about the budget, not one call: no endpoint facts. */
const NO_REQUEST: RequestFacts = { endpointTag: undefined, endpointTier: undefined }
import { applicableBudgetsOf, decideBudgets, type ApplicableBudget, type BudgetDecision, type DecideFacts, type DegradeSettings } from './decision.js'
import { expandTier, tierConflict, tierOfBudget } from './tiers.js'

export type { ApplicableBudget, BudgetDecision, DecideFacts } from './decision.js'

/** What the ledger reports per matched budget when a call's spend settles. */
export interface BudgetCrossing {
  readonly budgetId: string
  readonly periodKey: string
  readonly spentBeforeMicros: Micros
  readonly spentAfterMicros: Micros
}

/** A wallet's spend against its allocation, as the ledger reports it on settle. */
export interface WalletCrossing {
  readonly walletId: string
  readonly orgId: string
  readonly scope: { readonly kind: 'org' | 'team' | 'user'; readonly id: string }
  /** The team the wallet belongs to (a team wallet's own; a user wallet's team), for whose inbox its notices are. */
  readonly teamId: string | undefined
  readonly allocatedMicros: Micros
  readonly spentBeforeMicros: Micros
  readonly spentAfterMicros: Micros
  /**
   * The wallet's spend when its allocated total was set (the ledger's `spentAtAllocationMicros`).
   * An alert whose mark lies above it and at or below `spentAfterMicros` was crossed by spend
   * since, by this settle or an earlier one; undefined when not known (only what this settle
   * crossed is looked at then).
   */
  readonly spentAtAllocationMicros?: Micros | undefined
  /** The wallet's period when it has one; otherwise firings are keyed by the allocation total, so a top-up re-arms them. */
  readonly periodKey?: string
}

/** The ledger's report of a settled wallet (`ResolveResult.walletCrossing`) as the alerts read it. */
export function walletCrossingOf(crossing: LedgerWalletCrossing, orgId: string): WalletCrossing {
  // `kind:id`, the id possibly holding colons itself (once per settle: no split and join).
  const colon = crossing.scope.indexOf(':')
  return {
    walletId: crossing.walletId,
    orgId,
    scope: { kind: crossing.scope.slice(0, colon) as 'org' | 'team' | 'user', id: crossing.scope.slice(colon + 1) },
    teamId: crossing.teamId,
    allocatedMicros: crossing.allocatedMicros,
    spentBeforeMicros: crossing.spentBeforeMicros,
    spentAfterMicros: crossing.spentAfterMicros,
    spentAtAllocationMicros: crossing.spentAtAllocationMicros,
  }
}

export interface SettleContext {
  /** When the spend happened (the settle time, or the ingested event's time). */
  readonly atMs: number
}

export interface FiredNotification {
  readonly dedupeKey: string
  readonly type: NotificationType
  readonly notificationId: string
}

export interface BudgetServiceOptions {
  /** Output cap a `degrade` applies when the model has no cheaper target configured. */
  readonly degradeOutputTokensMax: number
  readonly topSpendersMax: number
  readonly forecastMinElapsedMs: number
  readonly forecastWindowHours: number
  readonly spikeTrailingHours: number
  readonly spikeFloorMicros: Micros
  /** Forecast and spike queries run at most this often per budget (they read usage events). */
  readonly checkIntervalMs: number
  /**
   * Every call scans its org's budgets, and reserves against those that count it: the caps bound
   * that work. The team cap keeps one team's admin from using up its org's.
   */
  readonly budgetsPerOrgMax: number
  readonly budgetsPerTeamMax: number
}

export const BUDGET_SERVICE_OPTIONS_DEFAULT: BudgetServiceOptions = {
  degradeOutputTokensMax: 1024,
  topSpendersMax: 5,
  forecastMinElapsedMs: HOUR_MS,
  forecastWindowHours: 6,
  spikeTrailingHours: 24,
  spikeFloorMicros: SPIKE_FLOOR_MICROS_DEFAULT,
  checkIntervalMs: 60_000,
  budgetsPerOrgMax: 1_000,
  budgetsPerTeamMax: 100,
}

/** What budgets need of the ledger's period counters (the ledger store implements it). */
export interface BudgetCounters {
  /** Adds spend to counters (saturating) and reports each counter's before/after. */
  recordSpend(orgId: string, counters: readonly PeriodCounter[], amountMicros: Micros): Promise<readonly BudgetCrossing[]>
  /** Spend of each counter (all processes'), keyed `budgetId|periodKey` (`counterKey`); counters never moved may be absent. */
  budgetSpend(orgId: string, counters: readonly PeriodCounter[]): Promise<ReadonlyMap<string, { readonly spentMicros: Micros }>>
}

export interface BudgetServiceDeps {
  readonly store: BudgetStore
  readonly usage: BudgetUsageReader
  readonly counters: BudgetCounters
  readonly notifications: NotificationSink
  readonly clock: Clock
  /** Ids of the configured notification channels; a budget naming another id is refused. */
  readonly channelIds: readonly string[]
  /** `endpoint_tiers`: endpoint tag → tier (budgets of that endpoint take it; its calls are judged by it). */
  readonly endpointTiers?: Readonly<Record<string, EndpointTier>>
  /** `notifications.escalation_channels`: every escalation notice also goes to these. */
  readonly escalationChannels?: readonly string[]
  /** `cost_tracking.budget_alerts`: thresholds against a wallet's allocation. */
  readonly walletAlerts?: readonly BudgetAlert[]
  /** The wallets that spent since their last allocation, for the wallet alerts a crash lost (`recoverWalletAlerts`). */
  readonly wallets?: Pick<LedgerStore, 'walletsSpentSinceAllocation'>
  /** The cheaper model a `degrade` routes to (config `models[].degrade_to`). */
  readonly degradeTargetFor?: (model: string) => string | undefined
  readonly options?: Partial<BudgetServiceOptions>
  /** Failures inside `onSpendSettled` are reported here, never thrown into the settle path. */
  readonly onError?: (error: unknown, what: string) => void
  /**
   * Makes the usage events recorded so far readable through `usage` (the usage recorder's
   * `flush`). Called before reading the top spenders of a notification, so its `top` includes the
   * call that crossed the threshold rather than lagging behind `spend_usd`.
   */
  readonly flushUsage?: () => Promise<void>
}

/** Entries in the forecast/spike throttle map before it is cleared. */
const CHECK_THROTTLE_ENTRIES_MAX = 10_000

/**
 * Wallets whose written alerts one process remembers. Past it the wallet remembered longest ago
 * is forgotten (its next settle past an alert asks the store once again): wallets, one per user,
 * can far outnumber budgets, and clearing them all at once would send every settle to the store.
 */
const WALLETS_REMEMBERED_MAX = 100_000

/** Marks asked for in one store read by the start-up pass for wallet alerts. */
const MARKS_PER_READ = 500

export class BudgetService {
  private readonly options: BudgetServiceOptions
  private byOrg = new Map<string, Budget[]>()
  private byId = new Map<string, Budget>()
  private generation = 0
  private readonly lastCheckMs = new Map<string, number>()
  private readonly decisionForecasts = new Map<string, { readonly atMs: number; readonly forecast: Forecast | undefined }>()
  /** Per budget: the period and the thresholds whose notice is known written in it (see `fireThresholds`). */
  private readonly thresholdsDone = new Map<string, { readonly periodKey: string; readonly percents: Set<number> }>()
  /** Threshold notices this process is writing now (`budgetId:periodKey:percent`), and wallet alerts (by their mark). */
  private readonly firing = new Set<string>()
  /** Marks of other notices (blocked, forecast, spike, wallet) known written: refusals ask on every call. */
  private readonly knownFired = new Set<string>()
  /** The wallet alert percents, ascending, each once; and those of them that `block` (their notice is `wallet.exhausted`). */
  private readonly walletPercents: readonly number[]
  private readonly walletBlockPercents: ReadonlySet<number>
  /** Per wallet: the epoch and the alert percents whose notice is known written in it (see `fireWalletAlerts`). */
  private readonly walletAlertsDone = new Map<string, { readonly epoch: string; readonly percents: Set<number> }>()

  constructor(private readonly deps: BudgetServiceDeps) {
    this.options = { ...BUDGET_SERVICE_OPTIONS_DEFAULT, ...deps.options }
    const alerts = deps.walletAlerts ?? []
    this.walletPercents = [...new Set(alerts.map((a) => a.thresholdPercent))].sort((a, b) => a - b)
    this.walletBlockPercents = new Set(alerts.filter((a) => a.action === 'block').map((a) => a.thresholdPercent))
  }

  /** Reloads the cache from the store. Call at start, and periodically when several processes share a store. */
  async refresh(): Promise<void> {
    const all = await this.deps.store.listBudgets(undefined)
    const byOrg = new Map<string, Budget[]>()
    const byId = new Map<string, Budget>()
    for (const stored of all) {
      // The cache holds budgets as enforced: tiers expanded into their actions.
      const budget = expandTier(stored, this.deps.endpointTiers ?? {})
      byId.set(budget.id, budget)
      const list = byOrg.get(budget.orgId) ?? []
      list.push(budget)
      byOrg.set(budget.orgId, list)
    }
    this.byOrg = byOrg
    this.byId = byId
    this.generation += 1
  }

  /**
   * Moves each time the cache is reloaded: a call that saw one generation when its budgets were
   * decided and another when it settles may count toward a budget created (or changed) meanwhile.
   */
  get cacheGeneration(): number {
    return this.generation
  }

  // ---------------------------------------------------------------- hot path

  /** Budgets covering this call, each with its current period. Reads only the cache. */
  applicableBudgets(attribution: Attribution, model: string, provider: string, atMs: number): ApplicableBudget[] {
    return applicableBudgetsOf(this.byOrg.get(attribution.orgId) ?? [], attribution, model, provider, atMs)
  }

  /**
   * What the applicable budgets decide at their current spend: `decideBudgets` (decision.ts), the
   * pure function replay also runs. `facts` carries the calling endpoint (its tier) and the
   * forecasts `forecastsFor` prepared; without them, no forecast confirms anything.
   */
  decide(applicable: readonly ApplicableBudget[], spentMicrosOf: (budgetId: string) => Micros | undefined, model: string, facts?: DecideFacts): BudgetDecision {
    return decideBudgets(applicable, spentMicrosOf, model, this.degradeSettings(), facts)
  }

  /** How this gateway carries out a `degrade` (replay takes the same settings). */
  degradeSettings(): DegradeSettings {
    return { degradeTargetFor: this.deps.degradeTargetFor, degradeOutputTokensMax: this.options.degradeOutputTokensMax }
  }

  /**
   * Forecasts for the applicable budgets that need one to decide: those with a
   * `block_if_forecast_exceeds` action whose mark their spend has reached. Budgets without such
   * an action cost nothing here (no query on the request path). Each forecast is kept for
   * `checkIntervalMs` per budget and period, so a budget past its mark reads usage at most that often.
   */
  async forecastsFor(
    applicable: readonly ApplicableBudget[],
    spentMicrosOf: (budgetId: string) => Micros | undefined,
    nowMs: number,
  ): Promise<ReadonlyMap<string, Forecast | undefined>> {
    const forecasts = new Map<string, Forecast | undefined>()
    for (const { budget, period } of applicable) {
      const spent = spentMicrosOf(budget.id) ?? (0 as Micros)
      if (!needsForecast(budget, spent)) continue
      const key = `${budget.id}:${period.key}`
      const cached = this.decisionForecasts.get(key)
      if (cached && nowMs - cached.atMs < this.options.checkIntervalMs && nowMs >= cached.atMs) {
        forecasts.set(budget.id, cached.forecast)
        continue
      }
      const forecast = await forecastFor(this.deps.usage, filterOf(budget), period, nowMs, spent, budget.amountMicros, this.options)
      if (this.decisionForecasts.size >= CHECK_THROTTLE_ENTRIES_MAX) this.decisionForecasts.clear()
      this.decisionForecasts.set(key, { atMs: nowMs, forecast })
      forecasts.set(budget.id, forecast)
    }
    return forecasts
  }

  /** True when some applicable budget needs a forecast to decide (see `forecastsFor`); sync, so most calls await nothing more. */
  anyNeedsForecast(applicable: readonly ApplicableBudget[], spentMicrosOf: (budgetId: string) => Micros | undefined): boolean {
    return applicable.some(({ budget }) => needsForecast(budget, spentMicrosOf(budget.id) ?? (0 as Micros)))
  }

  /** The tier of calls from this endpoint (`endpoint_tiers`), for `RequestFacts`. */
  endpointTierOf(endpointTag: string | undefined): EndpointTier | undefined {
    return endpointTag === undefined ? undefined : this.deps.endpointTiers?.[endpointTag]
  }

  // ---------------------------------------------------------------- CRUD

  async create(orgId: string, body: BudgetCreateBody): Promise<Budget> {
    const nowMs = this.deps.clock.nowMs()
    const budget: Budget = {
      ...specFromCreateBody(body, orgId),
      id: newId('bud', nowMs),
      orgId,
      createdAtMs: nowMs,
      updatedAtMs: nowMs,
      counterEpochMs: 0,
      source: 'api',
    }
    this.validate(budget)
    if ((this.byOrg.get(orgId)?.length ?? 0) >= this.options.budgetsPerOrgMax) {
      throw new BudgetError('invalid_request', `an org may have at most ${this.options.budgetsPerOrgMax} budgets`)
    }
    this.checkTeamRoom(budget)
    this.check(await this.deps.store.insertBudget(budget), budget)
    await this.refresh()
    await this.seedCounter(budget, nowMs)
    return budget
  }

  /** Refuses a budget joining a team that already has `budgetsPerTeamMax` budgets. */
  private checkTeamRoom(budget: Budget): void {
    const team = teamOfBudget(budget)
    if (team === undefined) return
    const held = (this.byOrg.get(budget.orgId) ?? []).filter((b) => teamOfBudget(b) === team).length
    if (held >= this.options.budgetsPerTeamMax) {
      throw new BudgetError('invalid_request', `team ${team} may have at most ${this.options.budgetsPerTeamMax} budgets`)
    }
  }

  /** The budget `body` would make of `budget` (to authorise a PATCH against its new state). */
  preview(budget: Budget, body: BudgetPatchBody): Budget {
    return applyPatch(budget, body, this.deps.clock.nowMs())
  }

  /**
   * A new counter (a created budget, or one that now counts other calls or another period) starts
   * with the spend its period already had: a budget created mid-month after $1.36 of spend has
   * $1.36 spent, not $0. Spend after `atMs` reaches the counter through the calls themselves:
   * a call that was running at `atMs` is not in the seed (it had not settled) and counts when it
   * settles, toward the budgets its process knows then (BudgetPolicy `countersJoined`).
   * Thresholds it is already past fire now, once.
   */
  private async seedCounter(budget: Budget, atMs: number): Promise<void> {
    const period = periodOf(budget.period, budget.timezone, atMs)
    await this.deps.flushUsage?.()
    const spentMicros = await this.deps.usage.spendBetween(filterOf(budget), period.startMs, atMs)
    if (spentMicros <= 0) return
    const crossings = await this.deps.counters.recordSpend(budget.orgId, [counterRefOf(budget, period)], spentMicros)
    await this.onSpendSettled(crossings, { atMs })
  }

  async get(orgId: string, budgetId: string): Promise<Budget> {
    const budget = await this.deps.store.getBudget(orgId, budgetId)
    if (!budget) throw new BudgetNotFoundError(budgetId)
    return budget
  }

  async list(orgId: string): Promise<Budget[]> {
    return this.deps.store.listBudgets(orgId)
  }

  async patch(orgId: string, budgetId: string, body: BudgetPatchBody): Promise<Budget> {
    const current = await this.get(orgId, budgetId)
    const nowMs = this.deps.clock.nowMs()
    const next = applyPatch(current, body, nowMs)
    this.validate(next)
    if (teamOfBudget(next) !== teamOfBudget(current)) this.checkTeamRoom(next)
    this.check(await this.deps.store.updateBudget(next), next)
    await this.refresh()
    if (countsDifferently(current, next)) await this.seedCounter(next, nowMs)
    return next
  }

  async delete(orgId: string, budgetId: string): Promise<void> {
    if (!(await this.deps.store.deleteBudget(orgId, budgetId))) throw new BudgetNotFoundError(budgetId)
    await this.refresh()
  }

  /**
   * Upserts the budgets declared in the config (`Config.budgets`) into `orgId`, matched by id
   * when the spec has one, else by name. Call once at start, before serving.
   */
  async syncDeclared(specs: readonly BudgetSpec[], orgId: string): Promise<Budget[]> {
    const nowMs = this.deps.clock.nowMs()
    const synced: Budget[] = []
    const declaredOf = (existing: Budget, spec: BudgetSpec): Budget => {
      const next: Budget = { ...existing, ...spec, id: existing.id, updatedAtMs: nowMs, source: 'config' }
      return countsDifferently(existing, next) ? { ...next, counterEpochMs: nowMs } : next
    }
    for (const spec of specs) {
      const find = () => (spec.id !== undefined ? this.deps.store.getBudget(orgId, spec.id) : this.deps.store.findBudgetByName(orgId, spec.name))
      const existing = await find()
      let budget: Budget = existing
        ? declaredOf(existing, spec)
        : { ...spec, id: spec.id ?? newId('bud', nowMs), orgId, createdAtMs: nowMs, updatedAtMs: nowMs, counterEpochMs: 0, source: 'config' }
      this.validate(budget)
      let result = await (existing ? this.deps.store.updateBudget(budget) : this.deps.store.insertBudget(budget))
      if (!existing && result === 'name_taken') {
        // Several gateways starting at once on one store: another one inserted this declared
        // budget between our read and our insert. Take its row, as a later start would.
        const winner = await find()
        if (winner) {
          budget = declaredOf(winner, spec)
          result = await this.deps.store.updateBudget(budget)
        }
      }
      this.check(result, budget)
      synced.push(budget)
      if (!existing || countsDifferently(existing, budget)) await this.seedCounter(budget, nowMs)
    }
    await this.refresh()
    return synced
  }

  private validate(budget: Budget): void {
    if (budget.scopeKind === 'org' && budget.scopeId !== budget.orgId) {
      throw new BudgetError('invalid_request', `scope.id: an org budget must name its own org (${budget.orgId})`)
    }
    this.checkChannels(budget.channels, 'channels')
    for (const [i, action] of budget.thresholdActions.entries()) this.checkChannels(action.channels, `threshold_actions.${i}.channels`)
    const tier = tierOfBudget(budget, this.deps.endpointTiers ?? {})
    const conflict = tierConflict(budget, tier)
    if (conflict) {
      const field = budget.tier !== undefined ? 'tier' : budget.hardLimit ? 'hard_limit' : 'threshold_actions'
      throw new BudgetError('invalid_request', `${field}: ${conflict}`, field)
    }
  }

  /** Refuses channel ids that are not configured, naming the field (`threshold_actions.2.channels`). */
  private checkChannels(ids: readonly string[] | undefined, field: string): void {
    const configured = new Set(this.deps.channelIds)
    const unknown = (ids ?? []).filter((id) => !configured.has(id))
    if (unknown.length > 0) {
      throw new BudgetError(
        'invalid_request',
        `${field}: unknown channel id ${unknown.join(', ')}; configured: ${this.deps.channelIds.join(', ') || 'none'}`,
        field,
      )
    }
  }

  private check(result: BudgetWriteResult, budget: Budget): void {
    if (result === 'not_found') throw new BudgetNotFoundError(budget.id)
    if (result === 'name_taken') throw new BudgetError('conflict', `name: a budget named "${budget.name}" already exists`)
  }

  // ---------------------------------------------------------------- after settle

  /**
   * Call after every settle (and every ingested event) with the ledger's crossings. Never
   * throws: failures go to `onError`. Resolves to what this process emitted, which is nothing
   * for a threshold another process already claimed.
   */
  async onSpendSettled(crossings: readonly BudgetCrossing[], context: SettleContext): Promise<FiredNotification[]> {
    const fired: FiredNotification[] = []
    for (const crossing of crossings) {
      const budget = this.byId.get(crossing.budgetId)
      if (!budget) continue
      try {
        fired.push(...(await this.fireThresholds(budget, crossing, context)))
        fired.push(...(await this.checkTrends(budget, crossing, context)))
      } catch (error) {
        this.deps.onError?.(error, `budget ${budget.id}: evaluating settled spend`)
      }
    }
    return fired
  }

  /**
   * Writes the threshold notices a crash lost. A process killed between moving a counter and
   * writing the notice leaves the threshold reached and unmarked; a settle on that budget finds
   * it (`fireThresholds`), but a budget that sees no more spend in its period would never tell
   * anyone. So at start every process looks at each budget's current period once: thresholds
   * reached and unmarked fire now, exactly once across processes (the mark is written with the
   * notice). A budget below its first threshold costs one counter read per org, no more.
   */
  async recoverThresholds(): Promise<FiredNotification[]> {
    const atMs = this.deps.clock.nowMs()
    const fired: FiredNotification[] = []
    for (const [orgId, budgets] of this.byOrg) {
      try {
        const counters = budgets.map((budget) => ({ budget, counter: counterRefOf(budget, periodOf(budget.period, budget.timezone, atMs)) }))
        const spend = await this.deps.counters.budgetSpend(
          orgId,
          counters.map((c) => c.counter),
        )
        for (const { budget, counter } of counters) {
          const spent = spend.get(counterKey(counter.budgetId, counter.periodKey))?.spentMicros
          if (spent === undefined || spent === 0) continue
          const crossing = { budgetId: budget.id, periodKey: counter.periodKey, spentBeforeMicros: spent, spentAfterMicros: spent }
          fired.push(...(await this.fireThresholds(budget, crossing, { atMs })))
        }
      } catch (error) {
        this.deps.onError?.(error, `org ${orgId}: looking for threshold notices lost by a crash`)
      }
    }
    return fired
  }

  /**
   * Fires every threshold the spend has reached (not only the ones this settle crossed) whose
   * notice this process does not know to be written. Each notice is written with its firing mark
   * in one transaction (`emitOnce`), so a crash or an error before that leaves no mark, and the
   * next settle of the budget (here or in any process) finds the threshold reached and unmarked
   * and fires it. The store is read only for thresholds this settle did not cross, once per
   * budget, period and process: after that `thresholdsDone` answers from memory.
   */
  private async fireThresholds(budget: Budget, crossing: BudgetCrossing, context: SettleContext): Promise<FiredNotification[]> {
    const reached = this.unconfirmedThresholds(budget, crossing)
    if (reached === undefined) return []
    // Reached before this settle: fired already (most likely) or lost by a crash. Ask the store.
    const earlier = reached.filter((percent) => thresholdMarkMicros(budget.amountMicros, percent) <= crossing.spentBeforeMicros)
    const marked = new Set(earlier.length === 0 ? [] : await this.deps.store.firedKeys(earlier.flatMap((p) => thresholdKeys(budget, crossing.periodKey, p))))
    const fired: FiredNotification[] = []
    let spendContext: SpendContext | undefined
    for (const percent of reached) {
      if (thresholdKeys(budget, crossing.periodKey, percent).some((key) => marked.has(key))) {
        this.confirmThreshold(budget.id, crossing.periodKey, percent)
        continue
      }
      // Settles of this process arriving while the notice is being written leave it to the first.
      const flight = `${budget.id}:${crossing.periodKey}:${percent}`
      if (this.firing.has(flight)) continue
      this.firing.add(flight)
      try {
        spendContext ??= await this.spendContextOf(budget, crossing, context, true)
        const notice = await this.fireThreshold(budget, crossing, context, percent, spendContext)
        // Written here, or by another process first: either way the notice exists.
        this.confirmThreshold(budget.id, crossing.periodKey, percent)
        if (notice) fired.push(notice)
      } catch (error) {
        // Nothing was written (the mark goes with the notice): a later settle fires it.
        this.deps.onError?.(error, `budget ${budget.id}: firing the ${percent}% threshold`)
      } finally {
        this.firing.delete(flight)
      }
    }
    return fired
  }

  /** Writes one threshold's notice with its mark; undefined when its mark was taken before. */
  private async fireThreshold(
    budget: Budget,
    crossing: BudgetCrossing,
    context: SettleContext,
    percent: number,
    spendContext: SpendContext,
  ): Promise<FiredNotification | undefined> {
    const forecastAction = budget.thresholdActions.find((a) => a.thresholdPercent === percent && a.action === 'block_if_forecast_exceeds')
    // The forecast decides a forecast-confirmed block before the notice is written, so the notice
    // says the same as the decision the next call gets.
    const outcome = forecastAction ? this.forecastOutcome(budget, forecastAction, spendContext, context.atMs) : undefined
    const blocks = outcome ? outcome.kind === 'block' : isBlockAt(budget, percent)
    const isBlocking = blocks && !budget.shadow
    // Blocking starts once per period, whether spend reached the mark or a refusal came first.
    const dedupeKey = isBlocking ? blockedKey(budget.id, crossing.periodKey) : thresholdKey(budget.id, crossing.periodKey, percent)
    const type: NotificationType = isBlocking ? 'budget.blocked' : 'budget.threshold'
    const wouldBlock = blocks && budget.shadow
    const extras: SpendDataExtras = {
      ...budgetExtras(budget),
      threshold_percent: percent,
      action: budget.thresholdActions.find((a) => a.thresholdPercent === percent)?.action ?? (isBlockAt(budget, percent) ? 'block' : 'notify'),
      ...(wouldBlock && { shadow: true, decision: 'would_block' as const }),
      ...(outcome && forecastExtras(outcome, budget)),
    }
    const notice = await this.emit(type, budget, spendContext, extras, dedupeKey, percent)
    if (isBlocking) this.rememberFired(dedupeKey)
    return notice
  }

  /**
   * The thresholds whose mark the spend has reached and whose notice this process has not seen
   * written, ascending; undefined when there are none (every settle asks: no allocation then).
   */
  private unconfirmedThresholds(budget: Budget, crossing: BudgetCrossing): number[] | undefined {
    // A spend that is not a safe integer would compare as "reached" everywhere: refuse it (onError).
    if (!Number.isSafeInteger(crossing.spentAfterMicros)) assert(false, `spentAfterMicros: ${crossing.spentAfterMicros}`)
    const done = this.thresholdsDone.get(budget.id)
    const confirmed = done?.periodKey === crossing.periodKey ? done.percents : undefined
    let reached: number[] | undefined
    for (const percent of firingThresholds(budget)) {
      if (thresholdMarkMicros(budget.amountMicros, percent) > crossing.spentAfterMicros) break
      if (confirmed?.has(percent)) continue
      reached ??= []
      reached.push(percent)
    }
    return reached
  }

  private confirmThreshold(budgetId: string, periodKey: string, percent: number): void {
    let done = this.thresholdsDone.get(budgetId)
    if (done?.periodKey !== periodKey) {
      if (this.thresholdsDone.size >= CHECK_THROTTLE_ENTRIES_MAX) this.thresholdsDone.clear()
      done = { periodKey, percents: new Set() }
      this.thresholdsDone.set(budgetId, done)
    }
    done.percents.add(percent)
  }

  /** True when the notice of `dedupeKey` is written (this process remembers, or the store says so). */
  private async firedBefore(dedupeKey: string): Promise<boolean> {
    if (this.knownFired.has(dedupeKey)) return true
    const [hit] = await this.deps.store.firedKeys([dedupeKey])
    if (hit !== undefined) this.rememberFired(dedupeKey)
    return hit !== undefined
  }

  private rememberFired(dedupeKey: string): void {
    if (this.knownFired.size >= CHECK_THROTTLE_ENTRIES_MAX) this.knownFired.clear()
    this.knownFired.add(dedupeKey)
  }

  /** What a reached `block_if_forecast_exceeds` does now, by the same rule the decision uses. */
  private forecastOutcome(budget: Budget, action: BudgetThresholdAction, spendContext: SpendContext, atMs: number) {
    const period = spendContext.period ?? periodOf(budget.period, budget.timezone, atMs)
    return resolveThresholdAction(action, { budget, period, forecast: spendContext.forecast, request: NO_REQUEST, nowMs: atMs })
  }

  /**
   * A budget refused a call (at the decision, or at the reservation before its spend reached the
   * mark): `budget.blocked` goes out on the first refusal of the period, once, whichever process.
   */
  async onBlocked(budgetId: string, periodKey: string, spentMicros: Micros, atMs: number): Promise<FiredNotification[]> {
    const budget = this.byId.get(budgetId)
    if (!budget || budget.shadow) return []
    try {
      const dedupeKey = blockedKey(budget.id, periodKey)
      // Every refused call of a blocked budget comes here: after the first, memory answers.
      if (await this.firedBefore(dedupeKey)) return []
      const crossing: BudgetCrossing = { budgetId, periodKey, spentBeforeMicros: spentMicros, spentAfterMicros: spentMicros }
      const spendContext = await this.spendContextOf(budget, crossing, { atMs }, true)
      const notice = await this.emit('budget.blocked', budget, spendContext, { ...budgetExtras(budget), reason: 'refused' }, dedupeKey)
      this.rememberFired(dedupeKey)
      return notice ? [notice] : []
    } catch (error) {
      this.deps.onError?.(error, `budget ${budget.id}: announcing a block`)
      return []
    }
  }

  /**
   * Writes the forecast and spike notices a crash lost. `checkTrends` runs on a settle; a process
   * killed after it decided to notify and before the notice was written leaves no mark, and a
   * budget that sees no more spend (its traffic stopped, or came through the process that died)
   * would never be looked at again. So at start, after `recoverThresholds`, every budget with
   * spend in its current period is evaluated once by `checkTrends`, as a settle at this instant
   * would be: an exhausting forecast with no mark in this period is sent, exactly once across
   * processes (the mark is written with the notice).
   *
   * A spike is recovered only for the current hour. Its rule looks at the 60 minutes before now,
   * so a spike from longer ago is stale and not sent: it is no longer happening, and a late
   * alert about it is noise. A spike whose notice this hour is missing is sent. One whose notice
   * went out in the previous hour is not sent again: the burst was announced, and a restart is
   * not news (a settle later this hour still announces a spike that goes on).
   *
   * Cost: one usage flush; per org, one counter read and one read of the marks, both batched;
   * then one usage read per budget left to evaluate (none for a budget whose notices are all
   * marked), plus the top spenders of a notice sent. Never throws: failures go to `onError`, and
   * a budget that fails does not stop the others.
   */
  async recoverTrends(): Promise<FiredNotification[]> {
    const atMs = this.deps.clock.nowMs()
    const epochHour = Math.floor(atMs / HOUR_MS)
    const fired: FiredNotification[] = []
    // Usage events a killed process committed may not be readable yet (a journal not drained):
    // the forecast and the spike are read from them. On failure, evaluate what is readable.
    await this.orUndefinedAsync(async () => this.deps.flushUsage?.(), 'looking for forecast and spike notices lost by a crash: flushing usage')
    for (const [orgId, budgets] of this.byOrg) {
      try {
        const counters = budgets.map((budget) => ({ budget, counter: counterRefOf(budget, periodOf(budget.period, budget.timezone, atMs)) }))
        const spend = await this.deps.counters.budgetSpend(
          orgId,
          counters.map((c) => c.counter),
        )
        const spending = counters.flatMap(({ budget, counter }) => {
          const spent = spend.get(counterKey(counter.budgetId, counter.periodKey))?.spentMicros
          if (spent === undefined || spent === 0) return []
          const previousPeriodKey = counterRefOf(budget, periodOf(budget.period, budget.timezone, atMs - HOUR_MS)).periodKey
          const keys = {
            forecast: forecastKey(budget.id, counter.periodKey),
            spike: spikeKey(budget.id, counter.periodKey, epochHour),
            previousSpike: spikeKey(budget.id, previousPeriodKey, epochHour - 1),
          }
          const crossing: BudgetCrossing = { budgetId: budget.id, periodKey: counter.periodKey, spentBeforeMicros: spent, spentAfterMicros: spent }
          return [{ budget, crossing, keys }]
        })
        const marked = new Set(await this.deps.store.firedKeys(spending.flatMap(({ keys }) => [keys.forecast, keys.spike, keys.previousSpike])))
        // What is marked is written: `checkTrends` (and later settles) answer it from memory.
        for (const key of marked) this.rememberFired(key)
        for (const { budget, crossing, keys } of spending) {
          const withSpike = !marked.has(keys.spike) && !marked.has(keys.previousSpike)
          if (marked.has(keys.forecast) && !withSpike) continue
          try {
            fired.push(...(await this.checkTrends(budget, crossing, { atMs }, withSpike)))
          } catch (error) {
            this.deps.onError?.(error, `budget ${budget.id}: looking for forecast and spike notices lost by a crash`)
          }
        }
      } catch (error) {
        this.deps.onError?.(error, `org ${orgId}: looking for forecast and spike notices lost by a crash`)
      }
    }
    return fired
  }

  /**
   * Forecast (once per budget per period) and spike (once per budget per hour, unless `withSpike`
   * is false), throttled per budget. One usage read serves both: the forecast's recent hours are
   * the last hours of the spike's window (hourly buckets with the same end).
   */
  private async checkTrends(budget: Budget, crossing: BudgetCrossing, context: SettleContext, withSpike = true): Promise<FiredNotification[]> {
    const nowMs = context.atMs
    const throttleKey = `${budget.id}:${crossing.periodKey}`
    const lastMs = this.lastCheckMs.get(throttleKey)
    if (lastMs !== undefined && nowMs - lastMs < this.options.checkIntervalMs) return []
    if (this.lastCheckMs.size >= CHECK_THROTTLE_ENTRIES_MAX) this.lastCheckMs.clear()
    this.lastCheckMs.set(throttleKey, nowMs)

    const what = `budget ${budget.id}: notice context`
    const period = this.orUndefined(() => periodOf(budget.period, budget.timezone, nowMs), what)
    const forecastCount = period ? forecastHours(period, nowMs, this.options) : undefined
    const hours = this.options.spikeTrailingHours
    const count = Math.max(withSpike ? hours + 1 : 0, forecastCount ?? 0)
    if (count === 0) return []
    const buckets = await this.deps.usage.spendBuckets(filterOf(budget), nowMs, HOUR_MS, count)
    const forecast =
      period && forecastCount !== undefined
        ? this.orUndefined(() => forecastOfBuckets(period, nowMs, crossing.spentAfterMicros, budget.amountMicros, buckets.slice(count - forecastCount)), what)
        : undefined
    const spendContext: SpendContext = {
      scope: scopeLabel(budget),
      spentMicros: crossing.spentAfterMicros,
      amountMicros: budget.amountMicros,
      period,
      forecast,
      top: NO_TOP,
    }

    const fired: FiredNotification[] = []
    const isForecastExhausting =
      forecast?.exhaustionAtMs !== undefined && crossing.spentAfterMicros < budget.amountMicros && forecast.projectedSpendMicros > budget.amountMicros
    if (isForecastExhausting) {
      const dedupeKey = forecastKey(budget.id, crossing.periodKey)
      if (!(await this.firedBefore(dedupeKey))) {
        const withTop = { ...spendContext, top: await this.topOrNone(budget, spendContext.period) }
        const notice = await this.emit('budget.forecast', budget, withTop, budgetExtras(budget), dedupeKey)
        this.rememberFired(dedupeKey)
        if (notice) fired.push(notice)
      }
    }
    if (!withSpike) return fired
    const window = buckets.slice(count - (hours + 1))
    const lastHourMicros = window[hours] ?? (0 as Micros)
    if (spikeDetected(lastHourMicros, window.slice(0, hours), this.options.spikeFloorMicros)) {
      const dedupeKey = spikeKey(budget.id, crossing.periodKey, Math.floor(nowMs / HOUR_MS))
      if (!(await this.firedBefore(dedupeKey))) {
        const withTop = { ...spendContext, top: await this.topOrNone(budget, spendContext.period) }
        const extras = { ...budgetExtras(budget), last_hour_spend_usd: toUsd(lastHourMicros) }
        const notice = await this.emit('budget.spike', budget, withTop, extras, dedupeKey)
        this.rememberFired(dedupeKey)
        if (notice) fired.push(notice)
      }
    }
    return fired
  }

  /**
   * The context a budget notice carries. Never throws: a part that cannot be computed (a
   * forecast query that fails, figures out of range) is left out and reported to `onError`, so
   * the notice goes out with less context rather than not at all.
   */
  private async spendContextOf(budget: Budget, crossing: BudgetCrossing, context: SettleContext, withTop: boolean): Promise<SpendContext> {
    const what = `budget ${budget.id}: notice context`
    const period = this.orUndefined(() => periodOf(budget.period, budget.timezone, context.atMs), what)
    const forecast = period
      ? await this.orUndefinedAsync(
          () => forecastFor(this.deps.usage, filterOf(budget), period, context.atMs, crossing.spentAfterMicros, budget.amountMicros, this.options),
          what,
        )
      : undefined
    return {
      scope: scopeLabel(budget),
      spentMicros: crossing.spentAfterMicros,
      amountMicros: budget.amountMicros,
      period,
      forecast,
      top: withTop ? await this.topOrNone(budget, period) : NO_TOP,
    }
  }

  /** Top spenders for a notice, or none when they cannot be read (reported to `onError`). */
  private async topOrNone(budget: Budget, period: Period | undefined): Promise<TopSpendersMicros> {
    return (await this.orUndefinedAsync(() => this.topOf(budget, period), `budget ${budget.id}: notice top spenders`)) ?? NO_TOP
  }

  private orUndefined<T>(compute: () => T, what: string): T | undefined {
    try {
      return compute()
    } catch (error) {
      this.deps.onError?.(error, what)
      return undefined
    }
  }

  private async orUndefinedAsync<T>(compute: () => Promise<T>, what: string): Promise<T | undefined> {
    try {
      return await compute()
    } catch (error) {
      this.deps.onError?.(error, what)
      return undefined
    }
  }

  private async topOf(budget: Budget, period: Period | undefined): Promise<TopSpendersMicros> {
    if (!period) return NO_TOP
    return this.topSpenders(filterOf(budget), period.startMs, period.endMs)
  }

  /** Top spenders after flushing recorded usage, so the spend that triggered a notification is in it. */
  private async topSpenders(filter: SpendScopeFilter, fromMs: number, toMs: number) {
    await this.deps.flushUsage?.()
    return this.deps.usage.topSpenders(filter, fromMs, toMs, this.options.topSpendersMax)
  }

  /**
   * A budget's notice, in the inbox of the team it belongs to, to: the channels of the threshold
   * it is about when that threshold names some, else the budget's channels (or every channel when
   * it names none); plus the owner's channel. A threshold or blocked notice of a budget with
   * `escalate_after` escalates to the owner and the escalation channels unless acknowledged in time.
   */
  private async emit(
    type: NotificationType,
    budget: Budget,
    spendContext: SpendContext,
    extras: SpendDataExtras,
    dedupeKey: string,
    thresholdPercent?: number,
  ): Promise<FiredNotification | undefined> {
    const owner = this.ownerChannelOf(budget)
    const routed = budget.thresholdActions.find((a) => a.thresholdPercent === thresholdPercent && a.channels !== undefined)?.channels ?? budget.channels
    const channels = routed === undefined ? undefined : [...new Set([...routed, ...(owner ? [owner] : [])])]
    const escalates = budget.escalateAfterMs !== undefined && (type === 'budget.threshold' || type === 'budget.blocked')
    const escalation = escalates
      ? {
          atMs: this.deps.clock.nowMs() + budget.escalateAfterMs!,
          channelIds: [...new Set([...(owner ? [owner] : []), ...(this.deps.escalationChannels ?? [])])],
        }
      : undefined
    const withOwner: SpendDataExtras = {
      ...extras,
      ...(budget.owner !== undefined && { owner: budget.owner }),
      ...(budget.tier !== undefined && { tier: budget.tier }),
    }
    return this.emitTo(type, budget.orgId, teamOfBudget(budget), spendContext, withOwner, channels, { dedupeKey, subjectId: budget.id }, escalation)
  }

  /** The owner's channel when `owner` names a configured channel; an owner that is a name is only recorded on notices. */
  private ownerChannelOf(budget: Budget): string | undefined {
    return budget.owner !== undefined && this.deps.channelIds.includes(budget.owner) ? budget.owner : undefined
  }

  private async emitTo(
    type: NotificationType,
    orgId: string,
    teamId: string | undefined,
    spendContext: SpendContext,
    extras: SpendDataExtras,
    channels: readonly string[] | undefined,
    mark: FiringMark,
    escalation?: NotificationEscalation,
  ): Promise<FiredNotification | undefined> {
    const base = newNotification(type, orgId, teamId, spendNotificationData(spendContext, extras), this.deps.clock.nowMs())
    const notification = escalation ? { ...base, escalation } : base
    // The firing's mark is written with the notice, in one transaction: never one without the other.
    const written = await this.deps.notifications.emitOnce(notification, channels, mark)
    return written ? { dedupeKey: mark.dedupeKey, type, notificationId: notification.id } : undefined
  }

  // ---------------------------------------------------------------- wallets

  /**
   * `cost_tracking.budget_alerts` against wallets: each alert percent of the allocation fires
   * once per wallet per period (or per allocation total). A `block` alert reads as
   * `wallet.exhausted`; the refusal itself is the ledger's. Never throws.
   *
   * Every settle looks at the alerts reached since the wallet's last allocation, not only the ones
   * it crossed (`fireWalletAlerts`): a notice lost to a crash or an error between an earlier
   * settle's commit and its write goes out with the wallet's next settle, in any process.
   */
  async onWalletSpendSettled(crossings: readonly WalletCrossing[], context: SettleContext): Promise<FiredNotification[]> {
    const fired: FiredNotification[] = []
    for (const crossing of crossings) {
      try {
        fired.push(...(await this.fireWalletAlerts(crossing, context)))
      } catch (error) {
        this.deps.onError?.(error, `wallet ${crossing.walletId}: evaluating settled spend`)
      }
    }
    return fired
  }

  /**
   * Writes the wallet alert notices a crash lost, for wallets that see no more spend: a settle
   * would find them (`fireWalletAlerts`), but a wallet nobody spends from again would never tell
   * anyone. So at start every process reads the wallets that spent since their last allocation
   * (`walletsSpentSinceAllocation`) and fires each alert reached since that allocation and
   * unmarked, exactly once across processes (the mark is written with the notice). An alert the
   * allocation's new total jumped over (spend already past its mark when the allocation came) is
   * never fired: no spend since crossed it. Never throws.
   */
  async recoverWalletAlerts(): Promise<FiredNotification[]> {
    if (this.walletPercents.length === 0 || this.deps.wallets === undefined) return []
    const atMs = this.deps.clock.nowMs()
    try {
      const crossings = (await this.deps.wallets.walletsSpentSinceAllocation()).map(
        (wallet): WalletCrossing => ({
          walletId: wallet.id,
          orgId: wallet.orgId,
          scope: { kind: wallet.scopeKind, id: wallet.scopeId },
          teamId: teamOfWallet(wallet),
          allocatedMicros: wallet.allocatedMicros,
          spentBeforeMicros: wallet.spentMicros,
          spentAfterMicros: wallet.spentMicros,
          spentAtAllocationMicros: wallet.spentAtAllocationMicros,
        }),
      )
      // The marks first, a few hundred per query: a start with nothing lost only reads.
      const pending = crossings.flatMap((crossing) => {
        const epoch = walletEpoch(crossing)
        return (this.unconfirmedWalletAlerts(crossing) ?? []).map((percent) => ({
          walletId: crossing.walletId,
          epoch,
          percent,
          key: this.walletAlertKey(crossing.walletId, epoch, percent),
        }))
      })
      for (let i = 0; i < pending.length; i += MARKS_PER_READ) {
        const chunk = pending.slice(i, i + MARKS_PER_READ)
        const marked = new Set(await this.deps.store.firedKeys(chunk.map((p) => p.key)))
        for (const p of chunk) if (marked.has(p.key)) this.confirmWalletAlert(p.walletId, p.epoch, p.percent)
      }
      return await this.onWalletSpendSettled(crossings, { atMs })
    } catch (error) {
      this.deps.onError?.(error, 'wallets: looking for alert notices lost by a crash')
      return []
    }
  }

  /**
   * Fires every alert of the wallet reached since its last allocation whose notice this process
   * does not know to be written. Each notice is written with its mark in one transaction
   * (`emitOnce`), so a crash or an error before that leaves no mark, and the wallet's next settle
   * fires it. The store is asked only about alerts this settle did not cross, once per wallet,
   * epoch and process: after that `walletAlertsDone` answers, so the settle path costs what it did.
   */
  private async fireWalletAlerts(crossing: WalletCrossing, context: SettleContext): Promise<FiredNotification[]> {
    const reached = this.unconfirmedWalletAlerts(crossing)
    if (reached === undefined) return []
    const epoch = walletEpoch(crossing)
    const keys = new Map(reached.map((percent) => [percent, this.walletAlertKey(crossing.walletId, epoch, percent)]))
    // Reached before this settle: fired already (most likely) or lost by a crash. Ask the store.
    const earlier = reached.filter((percent) => thresholdMarkMicros(crossing.allocatedMicros, percent) <= crossing.spentBeforeMicros)
    const marked = new Set(earlier.length === 0 ? [] : await this.deps.store.firedKeys(earlier.map((percent) => keys.get(percent)!)))
    const fired: FiredNotification[] = []
    let spendContext: SpendContext | undefined
    for (const percent of reached) {
      const dedupeKey = keys.get(percent)!
      const isBlock = this.walletBlockPercents.has(percent)
      if (marked.has(dedupeKey) || (isBlock && this.knownFired.has(dedupeKey))) {
        this.confirmWalletAlert(crossing.walletId, epoch, percent)
        if (isBlock) this.rememberFired(dedupeKey)
        continue
      }
      // Settles of this process arriving while the notice is being written leave it to the first.
      if (this.firing.has(dedupeKey)) continue
      this.firing.add(dedupeKey)
      try {
        spendContext ??= await this.walletSpendContext(crossing, context.atMs)
        const extras: SpendDataExtras = { wallet_id: crossing.walletId, threshold_percent: percent }
        const type = isBlock ? 'wallet.exhausted' : 'wallet.threshold'
        const notice = await this.emitTo(type, crossing.orgId, crossing.teamId, spendContext, extras, undefined, { dedupeKey, subjectId: crossing.walletId })
        // Written here, or by another process first: either way the notice exists.
        this.confirmWalletAlert(crossing.walletId, epoch, percent)
        // Refusals of an exhausted wallet ask for this mark on every call (`onWalletRefused`).
        if (isBlock) this.rememberFired(dedupeKey)
        if (notice) fired.push(notice)
      } catch (error) {
        // Nothing was written (the mark goes with the notice): a later settle fires it.
        this.deps.onError?.(error, `wallet ${crossing.walletId}: firing the ${percent}% alert`)
      } finally {
        this.firing.delete(dedupeKey)
      }
    }
    return fired
  }

  /**
   * The alerts whose mark the wallet's spend reached since its last allocation
   * (`walletAlertsArmedAt`) and whose notice this process has not seen written, ascending;
   * undefined when there are none (every settle asks: no allocation then).
   */
  private unconfirmedWalletAlerts(crossing: WalletCrossing): number[] | undefined {
    if (this.walletPercents.length === 0 || crossing.allocatedMicros <= 0) return undefined
    // A spend that is not a safe integer would compare as "reached" everywhere: refuse it (onError).
    if (!Number.isSafeInteger(crossing.spentAfterMicros)) assert(false, `spentAfterMicros: ${crossing.spentAfterMicros}`)
    const since = walletAlertsArmedAt(crossing)
    const epoch = walletEpoch(crossing)
    const done = this.walletAlertsDone.get(crossing.walletId)
    const confirmed = done?.epoch === epoch ? done.percents : undefined
    let reached: number[] | undefined
    for (const percent of this.walletPercents) {
      const mark = thresholdMarkMicros(crossing.allocatedMicros, percent)
      if (mark > crossing.spentAfterMicros) break
      if (mark <= since || confirmed?.has(percent)) continue
      // A refusal announced the wallet exhausted already (`onWalletRefused`).
      if (this.walletBlockPercents.has(percent) && this.knownFired.has(exhaustedKey(crossing.walletId, epoch))) continue
      reached ??= []
      reached.push(percent)
    }
    return reached
  }

  /** Remembers a wallet alert as written in this epoch; past the bound, the wallet remembered longest ago is forgotten. */
  private confirmWalletAlert(walletId: string, epoch: string, percent: number): void {
    let done = this.walletAlertsDone.get(walletId)
    if (done?.epoch !== epoch) {
      this.walletAlertsDone.delete(walletId)
      if (this.walletAlertsDone.size >= WALLETS_REMEMBERED_MAX) this.walletAlertsDone.delete(this.walletAlertsDone.keys().next().value!)
      done = { epoch, percents: new Set() }
      this.walletAlertsDone.set(walletId, done)
    }
    done.percents.add(percent)
  }

  /** One wallet alert's mark: the epoch's `exhausted` for a block alert (a refusal may take it first), else the percent's own. */
  private walletAlertKey(walletId: string, epoch: string, percent: number): string {
    return this.walletBlockPercents.has(percent) ? exhaustedKey(walletId, epoch) : `v1:${walletId}:${epoch}:${percent}`
  }

  /**
   * A wallet refused a call it could not cover: `wallet.exhausted` goes out on the first refusal
   * (per allocation total: a top-up re-arms it), once, whichever process — reservations stop
   * spend short of 100%, so waiting for spend to cross the mark would never tell anyone.
   */
  async onWalletRefused(wallet: Omit<WalletCrossing, 'spentBeforeMicros'>, refusedEstimateMicros: Micros, atMs: number): Promise<FiredNotification[]> {
    try {
      const crossing: WalletCrossing = { ...wallet, spentBeforeMicros: wallet.spentAfterMicros }
      const dedupeKey = exhaustedKey(wallet.walletId, walletEpoch(wallet))
      // Every refused call of an exhausted wallet comes here: after the first, memory answers.
      if (await this.firedBefore(dedupeKey)) return []
      const spendContext = await this.walletSpendContext(crossing, atMs)
      const extras: SpendDataExtras = { wallet_id: wallet.walletId, reason: 'refused', refused_estimate_usd: toUsd(refusedEstimateMicros) }
      const notice = await this.emitTo('wallet.exhausted', wallet.orgId, wallet.teamId, spendContext, extras, undefined, {
        dedupeKey,
        subjectId: wallet.walletId,
      })
      this.rememberFired(dedupeKey)
      return notice ? [notice] : []
    } catch (error) {
      this.deps.onError?.(error, `wallet ${wallet.walletId}: announcing exhaustion`)
      return []
    }
  }

  private async walletSpendContext(crossing: WalletCrossing, atMs: number): Promise<SpendContext> {
    const filter: SpendScopeFilter = { orgId: crossing.orgId, scopeKind: crossing.scope.kind, scopeId: crossing.scope.id, environment: undefined }
    return {
      scope: `${crossing.scope.kind}:${crossing.scope.id}`,
      spentMicros: crossing.spentAfterMicros,
      amountMicros: crossing.allocatedMicros,
      period: undefined,
      forecast: undefined,
      top: (await this.orUndefinedAsync(() => this.topSpenders(filter, 0, atMs + 1), `wallet ${crossing.walletId}: notice top spenders`)) ?? NO_TOP,
    }
  }
}

function thresholdKey(budgetId: string, periodKey: string, percent: number): string {
  return `v1:${budgetId}:${periodKey}:${percent}`
}

/**
 * The marks any of which means this threshold's notice went out: a blocking threshold fires the
 * period's one `blocked` (a refusal may have taken it first); a forecast-judged one fires either.
 */
function thresholdKeys(budget: Budget, periodKey: string, percent: number): string[] {
  const forecastJudged = budget.thresholdActions.some((a) => a.thresholdPercent === percent && a.action === 'block_if_forecast_exceeds')
  if (budget.shadow) return [thresholdKey(budget.id, periodKey, percent)]
  if (forecastJudged) return [thresholdKey(budget.id, periodKey, percent), blockedKey(budget.id, periodKey)]
  return isBlockAt(budget, percent) ? [blockedKey(budget.id, periodKey)] : [thresholdKey(budget.id, periodKey, percent)]
}

function blockedKey(budgetId: string, periodKey: string): string {
  return `v1:${budgetId}:${periodKey}:blocked`
}

function forecastKey(budgetId: string, periodKey: string): string {
  return `v1:${budgetId}:${periodKey}:forecast`
}

/** A spike's notice is once per budget per hour (`epochHour`: hours since the epoch). */
function spikeKey(budgetId: string, periodKey: string, epochHour: number): string {
  return `v1:${budgetId}:${periodKey}:spike:${epochHour}`
}

function exhaustedKey(walletId: string, epoch: string): string {
  return `v1:${walletId}:${epoch}:exhausted`
}

/** A wallet has no period: its notices are keyed by its allocation total, so a top-up re-arms them. */
function walletEpoch(wallet: Pick<WalletCrossing, 'periodKey' | 'allocatedMicros'>): string {
  return wallet.periodKey ?? `alloc-${wallet.allocatedMicros}`
}

/**
 * The spend above which a wallet alert's mark was crossed by spend since its marks were armed, so
 * that one reached and unmarked was lost (by a crash or an error) and fires now. Marks are keyed
 * by the allocated total, and each allocation raises it (a new epoch): spend since the last
 * allocation crossed exactly the marks above the spend recorded with it. A mark at or below that
 * was already passed when the allocation came: the new total "jumped over" it, no spend crossed
 * it, and it never fires. What this settle crossed itself always counts, so the result is never
 * above `spentBeforeMicros`.
 *
 * A wallet with a period is keyed by the period, not by the allocation (walletEpoch), and the
 * spend at its last allocation says nothing about where its spend stood when the period began:
 * an alert crossed after the allocation but in an earlier period is marked under that period's
 * key, so in this period it would look reached and unmarked and fire again, at every period
 * change. Telling them apart would need the spend at the later of the two events, which the
 * ledger does not record; so for such a wallet only what the settle crossed counts, as before
 * (a lost alert is not recovered, and no alert is sent twice). The same holds when the spend at
 * the allocation is not known (a wallet last allocated before it was recorded).
 */
function walletAlertsArmedAt(crossing: WalletCrossing): Micros {
  const atAllocation = crossing.spentAtAllocationMicros
  if (crossing.periodKey !== undefined || atAllocation === undefined) return crossing.spentBeforeMicros
  return micros(Math.min(atAllocation, crossing.spentBeforeMicros))
}

/** True when a `block_if_forecast_exceeds` mark is reached: only then does the decision need a forecast. */
function needsForecast(budget: Budget, spentMicros: Micros): boolean {
  return budget.thresholdActions.some(
    (a) => a.action === 'block_if_forecast_exceeds' && spentMicros >= thresholdMarkMicros(budget.amountMicros, a.thresholdPercent),
  )
}

function isBlockAt(budget: Budget, percent: number): boolean {
  if (budget.hardLimit && percent === 100) return true
  return budget.thresholdActions.some((a) => a.thresholdPercent === percent && a.action === 'block')
}

/** What a notice about a `block_if_forecast_exceeds` threshold says about the forecast that decided. */
function forecastExtras(outcome: ReturnType<typeof resolveThresholdAction>, budget: Budget): SpendDataExtras {
  if (outcome.kind === 'block') {
    const note = budget.shadow ? `Shadow mode: ${outcome.explanation}; calls would be blocked.` : `Blocking: ${outcome.explanation}.`
    return { forecast_decision: 'confirmed', forecast_note: note }
  }
  return {
    forecast_decision: 'not_confirmed',
    forecast_note: 'Notifying only: the burn-rate forecast does not show this budget running out before its period ends, so calls are not blocked.',
  }
}

function budgetExtras(budget: Budget): SpendDataExtras {
  return { budget_id: budget.id, budget_name: budget.name }
}

export function filterOf(budget: Budget): SpendScopeFilter {
  return { orgId: budget.orgId, scopeKind: budget.scopeKind, scopeId: budget.scopeId, environment: budget.environment, teamId: budget.scopeTeamId }
}
