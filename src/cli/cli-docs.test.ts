/**
 * docs/cli.md shows every command the CLI has: a command added without an example there, or
 * renamed, fails here. How: register every `register…` export of commands/*.ts on a fresh
 * commander program (so a new command file is covered without listing it here), walk the tree,
 * and look for `tollgate <command path>` in the doc. cli-basics.test.ts checks that main.ts
 * registers every group.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { Command } from 'commander'
import { describe, expect, it } from 'vitest'

const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8')
const commandsDir = new URL('./commands/', import.meta.url)

async function allCommands(): Promise<Command> {
  const program = new Command('tollgate')
  const files = readdirSync(commandsDir).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))
  for (const file of files) {
    const module = (await import(new URL(file, commandsDir).href)) as Record<string, unknown>
    for (const [name, value] of Object.entries(module)) {
      if (name.startsWith('register') && typeof value === 'function') (value as (program: Command) => void)(program)
    }
  }
  return program
}

function paths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((child) => [[...prefix, child.name()], ...paths(child, [...prefix, child.name()])])
}

describe('docs/cli.md', () => {
  it('has an example of every command', async () => {
    const all = paths(await allCommands()).map((path) => path.join(' '))
    expect(all).toEqual(
      expect.arrayContaining([
        'spend budget create',
        'usage top',
        'keys revoke',
        'tokens list',
        'events send',
        'export-jobs download',
        'config check',
        'db migrate',
      ]),
    )
    expect(all.filter((path) => !doc.includes(`tollgate ${path}`))).toEqual([])
  })

  it('is linked from the README', () => {
    expect(readFileSync(new URL('../../README.md', import.meta.url), 'utf8')).toContain('(docs/cli.md)')
  })
})
