/** budgets' public surface: other modules import only from here. */
export { periodOf, validTimezone, startOfLocalDay, type Period } from './period.js'
export {
  BUDGET_PERIODS,
  BUDGET_SCOPE_KINDS,
  DEFAULT_ALERT_THRESHOLDS,
  budgetCreateBodySchema,
  budgetPatchBodySchema,
  specFromCreateBody,
  applyPatch,
  budgetView,
  scopeLabel,
  matchesCall,
  limitMicros,
  counterRefOf,
  countsDifferently,
  teamOfBudget,
  type PeriodCounter,
  type Budget,
  type BudgetCreateBody,
  type BudgetPatchBody,
  type BudgetView,
} from './budget.js'
export { crossedThresholds, firingThresholds, thresholdMarkMicros } from './thresholds.js'
export {
  decideBudgetAction,
  resolveThresholdAction,
  forecastConfirms,
  strongestAction,
  experimentalExplanation,
  type BudgetPolicyInput,
  type BudgetPolicyAction,
  type PolicyBudget,
  type PolicyReason,
  type RequestFacts,
} from './policy.js'
export { ENDPOINT_TIERS, TIER_RULES, expandTier, tierOfBudget, tierConflict, describeTiers, type TierRule } from './tiers.js'
export { forecastFor, HOUR_MS, type ForecastSettings } from './spend-context.js'
export { forecastSpend, spikeDetected, SPIKE_FACTOR, SPIKE_FLOOR_MICROS_DEFAULT, type Forecast, type ForecastInput } from './forecast.js'
export {
  BudgetService,
  BUDGET_SERVICE_OPTIONS_DEFAULT,
  filterOf,
  walletCrossingOf,
  type ApplicableBudget,
  type DecideFacts,
  type BudgetDecision,
  type BudgetCrossing,
  type WalletCrossing,
  type SettleContext,
  type FiredNotification,
  type BudgetServiceDeps,
  type BudgetServiceOptions,
  type BudgetCounters,
} from './budget-service.js'
export type {
  BudgetStore,
  BudgetUsageReader,
  BudgetWriteResult,
  SpendScopeFilter,
  SpendByKey,
  TopSpendersMicros,
} from './budget-store.js'
export { applicableBudgetsOf, decideBudgets, walletDegradeAlert, type DegradeSettings } from './decision.js'
export { percentOfAmount } from './spend-context.js'
export { BudgetError, BudgetNotFoundError, type BudgetErrorCode } from './errors.js'
