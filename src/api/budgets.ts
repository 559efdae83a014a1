/**
 * Billing budgets: create, list with posture (spend this period), read, change,
 * delete. A team_admin manages only budgets scoped to its own team.
 */
import type { FastifyInstance } from 'fastify'
import {
  BUDGET_SERVICE_OPTIONS_DEFAULT,
  filterOf,
  forecastFor,
  budgetCreateBodySchema,
  budgetPatchBodySchema,
  budgetView,
  counterRefOf,
  periodOf,
  teamOfBudget,
  percentOfAmount,
  type Budget,
} from '../budgets/index.js'
import { counterKey } from '../ledger/index.js'
import { micros, toUsd } from '../money/index.js'
import type { Principal } from '../auth/index.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { canRead, principalOf, requireWrite } from './principal.js'
import { NotFoundError } from './errors.js'
import { doc } from './openapi.js'
import type { BudgetWire } from './contract/wire.js'

export async function budgetRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.post(
    '/v1/billing/budgets',
    doc({
      summary: 'Create a budget',
      description:
        "An org holds at most 1,000 budgets and a team at most 100 (those scoped to it or narrowed to it with `scope.team_id`): every call is checked against its org's budgets. Past either, the answer is a 400 saying which.",
      auth: 'admin',
      body: budgetCreateBodySchema,
      responses: {
        201: 'The budget with its current spend and forecast. It starts with the spend its period already had (calls settled so far); calls still running count toward it when they settle.',
      },
      errors: [409],
    }),
    async (request, reply) => {
      const principal = principalOf(request)
      const body = parseBody(budgetCreateBodySchema, request.body)
      // No scope means the whole org: only an admin may do that (requireWrite with no team).
      requireWrite(principal, body.scope === undefined ? undefined : body.scope.kind === 'team' ? body.scope.id : body.scope.team_id)
      const budget = await deps.budgets.create(principal.orgId, body)
      await deps.changes.announce('budgets')
      return reply.code(201).send(await withPosture(deps, budget))
    },
  )

  app.get(
    '/v1/billing/budgets',
    doc({ summary: 'List budgets with their current spend', auth: 'admin', responses: { 200: '`data`: budgets.' } }),
    async (request) => {
      const principal = principalOf(request)
      const budgets = (await deps.budgets.list(principal.orgId)).filter((b) => visible(principal, b))
      return { data: await Promise.all(budgets.map((b) => withPosture(deps, b))) }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/billing/budgets/:id',
    doc({ summary: 'A budget with its current spend and forecast', auth: 'admin', responses: { 200: 'The budget.' }, errors: [404] }),
    async (request) => {
      const principal = principalOf(request)
      return withPosture(deps, await visibleBudget(deps, principal, request.params.id))
    },
  )

  app.patch<{ Params: { id: string } }>(
    '/v1/billing/budgets/:id',
    doc({ summary: 'Change a budget', auth: 'admin', body: budgetPatchBodySchema, responses: { 200: 'The budget.' }, errors: [404, 409] }),
    async (request) => {
      const principal = principalOf(request)
      const body = parseBody(budgetPatchBodySchema, request.body)
      const budget = await visibleBudget(deps, principal, request.params.id)
      // Authorised against the budget as it is and as it would be: a team_admin cannot move its
      // budget onto another team or the org.
      requireWrite(principal, teamOfBudget(budget))
      const next = deps.budgets.preview(budget, body)
      requireWrite(principal, teamOfBudget(next))
      const patched = await deps.budgets.patch(principal.orgId, budget.id, body)
      await deps.changes.announce('budgets')
      return withPosture(deps, patched)
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/v1/billing/budgets/:id',
    doc({ summary: 'Delete a budget', auth: 'admin', responses: { 204: 'Deleted.' }, errors: [404] }),
    async (request, reply) => {
      const principal = principalOf(request)
      const budget = await visibleBudget(deps, principal, request.params.id)
      requireWrite(principal, teamOfBudget(budget))
      await deps.budgets.delete(principal.orgId, budget.id)
      await deps.changes.announce('budgets')
      return reply.code(204).send()
    },
  )
}

function visible(principal: Principal, budget: Budget): boolean {
  return canRead(principal, teamOfBudget(budget))
}

async function visibleBudget(deps: AdminDeps, principal: Principal, id: string): Promise<Budget> {
  const budget = await deps.budgets.get(principal.orgId, id)
  if (!visible(principal, budget)) throw new NotFoundError('budget', id)
  return budget
}

/**
 * The budget plus where it stands now: this period's spend, percent, whether it is enforcing, and
 * the forecast (the same weighted burn rate the `budget.forecast` notification uses; null until an
 * hour of the period has passed).
 */
async function withPosture(deps: AdminDeps, budget: Budget): Promise<BudgetWire> {
  const nowMs = deps.clock.nowMs()
  const period = periodOf(budget.period, budget.timezone, nowMs)
  const counter = counterRefOf(budget, period)
  const spend = (await deps.stores.ledger.budgetSpend(budget.orgId, [counter])).get(counterKey(counter.budgetId, counter.periodKey))
  const spentMicros = spend?.spentMicros ?? micros(0)
  const forecast = await forecastFor(deps.stores.budgets, filterOf(budget), period, nowMs, spentMicros, budget.amountMicros, BUDGET_SERVICE_OPTIONS_DEFAULT)
  return {
    ...budgetView(budget),
    posture: {
      period_key: period.key,
      period_start: new Date(period.startMs).toISOString(),
      period_end: new Date(period.endMs).toISOString(),
      spend_usd: toUsd(spentMicros),
      reserved_usd: toUsd(spend?.reservedMicros ?? micros(0)),
      percent: percentOfAmount(spentMicros, budget.amountMicros),
      limit_usd: counter.limitMicros === undefined ? null : toUsd(counter.limitMicros),
      forecast_spend_usd: forecast === undefined ? null : toUsd(forecast.projectedSpendMicros),
      forecast_exhaustion_at: forecast?.exhaustionAtMs === undefined ? null : new Date(forecast.exhaustionAtMs).toISOString(),
    },
  }
}
