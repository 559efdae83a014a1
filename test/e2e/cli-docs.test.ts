/**
 * docs/cli.md shows every command the CLI has: a command added without an example there, or
 * renamed, fails here. How: walk the built CLI's own `--help` output, group by group, in child
 * processes, and look for `tollgate <command path>` in the doc.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../support/processes.js'
import { expectOk, runCli } from './cli-harness.js'

const doc = readFileSync(`${repoRoot}docs/cli.md`, 'utf8')

/** The subcommand names listed under "Commands:" in one help text (commander's `help` left out). */
function subcommandsIn(help: string): string[] {
  const section = help.split(/^Commands:\n/m)[1]
  if (section === undefined) return []
  const lines = section.split('\n\n')[0]!.split('\n')
  return lines.map((line) => /^ {2}(\S+)/.exec(line)?.[1]).filter((name): name is string => name !== undefined && name !== 'help')
}

async function commandPaths(prefix: string[] = []): Promise<string[][]> {
  const help = expectOk(await runCli([...prefix, '--help'])).stdout
  const children = subcommandsIn(help).map((name) => [...prefix, name])
  const nested = await Promise.all(children.map((path) => commandPaths(path)))
  return [...children, ...nested.flat()]
}

describe('docs/cli.md', () => {
  it('has an example of every command', async () => {
    const paths = await commandPaths()
    expect(paths.map((p) => p.join(' '))).toEqual(expect.arrayContaining(['spend budget create', 'usage top', 'export-jobs create', 'config check']))
    const missing = paths.map((path) => `tollgate ${path.join(' ')}`).filter((line) => !doc.includes(line))
    expect(missing).toEqual([])
  })

  it('is linked from the README', () => {
    expect(readFileSync(`${repoRoot}README.md`, 'utf8')).toContain('(docs/cli.md)')
  })
})
