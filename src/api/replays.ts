/**
 * Policy replay: `POST /v1/replays` runs the recorded usage of a window through a proposed policy
 * (src/replay) as a job; `GET /v1/replays/{id}` shows its progress and report. Admins replay the
 * whole org; a team_admin replays its own team's events only; a viewer may not start one.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { parsePolicy, POLICY_THRESHOLDS_MAX, policyDataOfText, PolicyFileError, type ReplayPolicy } from '../replay/policy-file.js'
import { ReplayJobs, REPLAYS_RUNNING_MAX, type ReplayJob } from '../replay/jobs.js'
import { countReplayEvents, runReplay } from '../replay/run.js'
import { gatewayReplaySettings } from '../replay/settings.js'
import type { Principal } from '../auth/index.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { ConflictError, ForbiddenError, InvalidRequestError, NotFoundError } from './errors.js'
import { principalOf, teamFilter } from './principal.js'
import { doc } from './openapi.js'
import type { ReplayJobView } from './contract/wire.js'
// The usage reports' instant: 1970 to 9999, so every instant a job names can be written as a date.
import { instant } from './usage.js'

const DAY_MS = 86_400_000
/** The longest window one replay covers. */
export const REPLAY_WINDOW_MS_MAX = 366 * DAY_MS

export const ReplayBody = z
  .strictObject({
    from: instant,
    to: instant,
    /** The policy: the parsed file (an object), or its YAML/JSON text. */
    policy: z.union([z.string(), z.record(z.string(), z.unknown())], { error: 'expected the policy file as an object or as YAML/JSON text' }),
    /** `real` (default): traffic only; `demo`: the demo's events; `all`: both. */
    data_mode: z.enum(['real', 'demo', 'all']).default('real'),
  })
  .superRefine((body, ctx) => {
    if (body.from >= body.to) ctx.addIssue({ code: 'custom', path: ['from'], message: '"from" must be before "to"' })
    else if (body.to - body.from > REPLAY_WINDOW_MS_MAX)
      ctx.addIssue({ code: 'custom', path: ['to'], message: `a replay covers at most ${REPLAY_WINDOW_MS_MAX / DAY_MS} days` })
  })

export async function replayRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const jobs = new ReplayJobs(deps.clock, (error, job) => deps.logger.error({ err: error, replayId: job.id }, 'replay: failed'))

  app.post(
    '/v1/replays',
    doc({
      summary: 'Replay a window of recorded usage through a proposed policy',
      description:
        "Starts a job and answers at once; poll `GET /v1/replays/{id}`. The policy has the config file's `budgets`, `cost_tracking` and `endpoint_tiers` sections, plus `wallets`; " +
        `its budgets have at most ${POLICY_THRESHOLDS_MAX} \`alert_thresholds\` and \`threshold_actions\` entries among them (a larger policy is a 400 naming \`policy.budgets\`). ` +
        `\`from\` and \`to\` are ISO-8601 or epoch milliseconds between 1970 and 9999, at most ${REPLAY_WINDOW_MS_MAX / DAY_MS} days apart.`,
      auth: 'admin',
      body: ReplayBody,
      responses: { 202: 'The job: `id`, `status` (`running`), `progress` (`processed` of `total` events).' },
      errors: [409],
    }),
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.role === 'viewer') throw new ForbiddenError('a viewer cannot run a replay; it needs an admin or team_admin token')
      const body = parseBody(ReplayBody, request.body)
      const policy = policyOf(body.policy, principal, deps)
      await deps.usage.flush()
      const teamId = teamFilter(principal)
      const scan = { orgId: principal.orgId, fromMs: body.from, toMs: body.to, teamId, dataMode: body.data_mode === 'all' ? undefined : body.data_mode }
      const settings = gatewayReplaySettings(deps, policy, body.from, body.to)
      const total = await countReplayEvents(deps.stores.usage, scan)
      const started = jobs.start({ orgId: principal.orgId, teamId, fromMs: body.from, toMs: body.to, total }, (onProgress) =>
        runReplay(deps.stores.usage, scan, settings, { onProgress, total }),
      )
      if (started.kind === 'busy') throw new ConflictError(`${REPLAYS_RUNNING_MAX} replays are running; start this one when one has finished`)
      return reply.code(202).send(jobView(started.job))
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/replays/:id',
    doc({
      summary: 'A replay: its progress, and its report once done',
      auth: 'admin',
      responses: { 200: '`status` (`running` | `done` | `failed`), `progress`, and when done `report`: `totals`, `scopes`, `series`.' },
      errors: [404],
    }),
    async (request) => {
      const principal = principalOf(request)
      const job = jobs.get(request.params.id, principal.orgId, teamFilter(principal))
      if (!job) throw new NotFoundError('replay', request.params.id)
      return jobView(job)
    },
  )
}

function policyOf(input: string | Record<string, unknown>, principal: Principal, deps: AdminDeps): ReplayPolicy {
  try {
    const data = typeof input === 'string' ? policyDataOfText(input) : input
    return parsePolicy(data, {
      orgId: principal.orgId,
      channelIds: deps.config.notificationChannels.map((c) => c.id),
      costTracking: deps.config.costTracking,
    })
  } catch (error) {
    if (!(error instanceof PolicyFileError)) throw error
    const issues = error.issues.map((i) => ({ path: i.path === 'policy' || i.path === '' ? 'policy' : `policy.${i.path}`, message: i.message }))
    throw new InvalidRequestError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues)
  }
}

function jobView(job: ReplayJob): ReplayJobView {
  return {
    id: job.id,
    status: job.status,
    from: new Date(job.fromMs).toISOString(),
    to: new Date(job.toMs).toISOString(),
    team_id: job.teamId ?? null,
    started_at: new Date(job.startedAtMs).toISOString(),
    finished_at: job.finishedAtMs === undefined ? null : new Date(job.finishedAtMs).toISOString(),
    progress: job.progress,
    ...(job.error !== undefined && { error: job.error }),
    ...(job.report !== undefined && { report: job.report }),
  }
}
