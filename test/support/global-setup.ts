/**
 * Runs once before the suite, in vitest's main process. Builds nothing: `npm test` runs
 * `npm run build` first (pretest).
 *
 * Resolves the Redis and PostgreSQL the tests use and hands them to the workers with
 * `project.provide` (tests read them through test/support/services.ts):
 * - REDIS_URL / DATABASE_URL set: those servers, as given.
 * - unset, binaries present: one throw-away server each (free port, temp dir), shared by all
 *   test files of this run and stopped in the returned teardown.
 * - unset, no binaries: a skip reason, so the tests that need the service skip saying why —
 *   except under CI=true, where a missing service is an error: CI proves the Redis and
 *   PostgreSQL guarantees or goes red, it never passes with those suites skipped.
 * A server that should start but can't is provided as an error: the tests needing it fail with
 * the server's output, the rest of the suite still runs.
 */
import type { TestProject } from 'vitest/node'
import { planPostgres, planRedis, startPostgresServer, startRedisServer, type Endpoint, type ThrowawayServer } from './servers.js'

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started: ThrowawayServer[] = []

  const resolveRedis = async (): Promise<Endpoint> => {
    const plan = planRedis()
    if (plan.kind === 'env') return { kind: 'url', url: plan.url, source: 'env' }
    if (plan.kind === 'skip') return requiredInCi(plan)
    try {
      const server = await startRedisServer({ binary: plan.binary })
      started.push(server)
      return { kind: 'url', url: server.url, source: 'throwaway' }
    } catch (err) {
      return { kind: 'error', reason: `could not start a throw-away redis-server (${plan.binary}): ${message(err)}` }
    }
  }

  const resolvePostgres = async (): Promise<Endpoint> => {
    const plan = planPostgres()
    if (plan.kind === 'env') return { kind: 'url', url: plan.url, source: 'env' }
    if (plan.kind === 'skip') return requiredInCi(plan)
    try {
      const server = await startPostgresServer({ binaries: plan.binaries })
      started.push(server)
      return { kind: 'url', url: server.url, source: 'throwaway' }
    } catch (err) {
      return { kind: 'error', reason: `could not start a throw-away PostgreSQL (${plan.binaries.binDir}): ${message(err)}` }
    }
  }

  const [redis, postgres] = await Promise.all([resolveRedis(), resolvePostgres()])
  for (const [name, endpoint] of [
    ['redis', redis],
    ['postgres', postgres],
  ] as const) {
    if (endpoint.kind === 'error') console.warn(`[global-setup] ${name}: ${endpoint.reason}`)
  }
  project.provide('tollgateRedis', redis)
  project.provide('tollgatePostgres', postgres)

  return async function teardown(): Promise<void> {
    await Promise.allSettled(started.map((s) => s.stop()))
  }
}

export function requiredInCi(skip: { kind: 'skip'; reason: string }, env: NodeJS.ProcessEnv = process.env): Endpoint {
  if (!isCi(env)) return skip
  return { kind: 'error', reason: `${skip.reason}; CI=true, so the tests needing it fail instead of skipping (.ci/run installs it)` }
}

export function isCi(env: NodeJS.ProcessEnv): boolean {
  const ci = env['CI']
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
