/**
 * docs/configuration.md is the configuration reference a user reads: every key the schema accepts
 * is in it (a key added to the schema without a line here fails), no key it names is unknown to
 * the schema, and its examples load.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { parseConfig } from './load.js'
import { configFileSchema } from './schema.js'

const reference = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')

/** Every key path the schema accepts: `server.port`, `providers.targets[].timeout_ms`, … */
function keyPaths(schema: z.ZodType, prefix: string, out: Set<string>): Set<string> {
  const def = (schema as unknown as { _zod: { def: Record<string, any> } })._zod.def
  switch (def['type']) {
    case 'optional':
    case 'nullable':
    case 'default':
      return keyPaths(def['innerType'], prefix, out)
    case 'pipe':
      return keyPaths(def['in'], prefix, out)
    case 'array':
      return keyPaths(def['element'], `${prefix}[]`, out)
    case 'union':
      for (const option of def['options']) keyPaths(option, prefix, out)
      return out
    case 'object':
      for (const [key, value] of Object.entries(def['shape'] as Record<string, z.ZodType>)) {
        const path = prefix === '' ? key : `${prefix}.${key}`
        out.add(path)
        keyPaths(value, path, out)
      }
      return out
    default:
      return out
  }
}

/** The keys the reference's tables document (first column). */
function documentedKeys(): Set<string> {
  const keys = new Set<string>()
  for (const line of reference.split('\n')) {
    const m = /^\| `([a-z_.[\]0-9]+)` \|/.exec(line)
    if (m && !/^[A-Z]/.test(m[1]!)) keys.add(m[1]!)
  }
  return keys
}

describe('docs/configuration.md', () => {
  const accepted = keyPaths(configFileSchema, '', new Set())

  it('documents every key the schema accepts', () => {
    expect(accepted.size).toBeGreaterThan(60)
    const documented = documentedKeys()
    // A section (`server`, `budgets[].scope`) is documented by its keys; `{ env: NAME }` by its ref.
    const isSection = (key: string) => [...documented].some((d) => d.startsWith(`${key}.`) || d.startsWith(`${key}[].`))
    const missing = [...accepted].filter((key) => !documented.has(key) && !isSection(key) && !/_ref\.env$/.test(key))
    expect(missing).toEqual([])
  })

  it('documents no key the schema does not accept', () => {
    const unknown = [...documentedKeys()].filter((key) => !accepted.has(key))
    expect(unknown).toEqual([])
  })

  it('has examples that load', () => {
    const examples = [...reference.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!)
    expect(examples.length).toBeGreaterThan(0)
    const env = {
      OPENAI_API_KEY: 'sk-x',
      ANTHROPIC_API_KEY: 'sk-ant-x',
      SEARCH_SERVICE_KEY: 'tg_x',
      FINOPS_SLACK_WEBHOOK: 'https://hooks.slack.com/services/T/B/X',
    }
    for (const yaml of examples) expect(() => parseConfig(yaml, 'docs/configuration.md', { env, requireSecrets: true })).not.toThrow()
  })
})
