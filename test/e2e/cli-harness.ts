/**
 * The built `tollgate` CLI as a user runs it, for the cli-*.test.ts files: `node dist/cli/main.js
 * …` in a child process, with an environment that holds only what the test gives (no TOLLGATE_*
 * from the developer's shell), returning the exit code, stdout and stderr.
 *
 *   const gw = await startTestGateway()
 *   const cli = cliFor(gw)                        // TOLLGATE_URL and TOLLGATE_TOKEN point at gw
 *   const result = await cli('wallets', 'list', '--json')
 *   expect(result).toMatchObject({ code: 0 }); JSON.parse(result.stdout)
 */
import { execFile } from 'node:child_process'
import { expect, vi } from 'vitest'
import { gatewayMain } from '../support/processes.js'
import type { TestGateway } from '../support/gateway.js'

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** A CLI run never takes this long; a hung child is killed and the test fails on its output. */
const CLI_RUN_MS_MAX = 20_000

// A CLI test runs several child processes in a row (~0.4 s each on an idle machine); on a shared
// 2-core machine under load each can take seconds. Applies to the test file importing this one.
vi.setConfig({ testTimeout: 120_000 })

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TOLLGATE_')))
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [gatewayMain, ...args],
      { env: { ...base, ...env }, timeout: CLI_RUN_MS_MAX, maxBuffer: 16 * 1024 * 1024, ...(cwd !== undefined && { cwd }) },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
        resolve({ code, stdout, stderr })
      },
    )
  })
}

export type Cli = (...args: string[]) => Promise<CliResult>

/** The CLI pointed at `gw` with `token` (default: the gateway's admin token) through the environment, run in `cwd`. */
export function cliFor(gw: Pick<TestGateway, 'url' | 'adminToken'>, token: string = gw.adminToken, env: NodeJS.ProcessEnv = {}, cwd?: string): Cli {
  return (...args) => runCli(args, { TOLLGATE_URL: gw.url, TOLLGATE_TOKEN: token, ...env }, cwd)
}

/** Parses stdout of a `--json` run, failing with the run's output when it is not JSON. */
export function jsonOf(result: CliResult): any {
  try {
    return JSON.parse(result.stdout)
  } catch {
    throw new Error(`stdout is not JSON (exit ${result.code})\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`)
  }
}

/** A successful run: exit 0 and nothing on stderr; returns it for further checks. */
export function expectOk(result: CliResult): CliResult {
  expect(result, `stderr: ${result.stderr}`).toMatchObject({ code: 0, stderr: '' })
  return result
}

/** A failed run: the exit code, exactly one line on stderr, no stack trace; returns that line. */
export function expectFailure(result: CliResult, code: number): string {
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code)
  const lines = result.stderr.split('\n').filter((line) => line !== '')
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^tollgate: /)
  expect(result.stderr).not.toMatch(/\n\s+at /)
  return lines[0]!
}

/** The rows of a table printed by the CLI: each line split on runs of two or more spaces. */
export function tableRows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.trim().split(/\s{2,}/))
}

/**
 * Whether `gw` serves `method path` at all: an unknown route answers 404 "No route METHOD PATH"
 * (or Fastify's own "Route METHOD:PATH not found"); a known one anything else (401 without a
 * credential). For CLI tests of routes another branch is still adding: they skip, saying so,
 * until the route lands.
 */
export async function servesRoute(gw: Pick<TestGateway, 'url'>, method: 'GET' | 'POST', path: string): Promise<boolean> {
  const response = await fetch(`${gw.url}${path}`, { method, ...(method === 'POST' && { headers: { 'content-type': 'application/json' }, body: '{}' }) })
  const text = await response.text()
  return !(response.status === 404 && (text.includes(`No route ${method} ${path}`) || text.includes(`Route ${method}:${path} not found`)))
}
