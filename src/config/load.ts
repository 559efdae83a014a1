/**
 * The three ways to get a Config: a YAML file (`tollgate serve --config`, `tollgate config check`),
 * YAML text, or the built-in config used when no file is given. All three go through the same
 * schema and normalisation, and fail only with a `ConfigError`.
 */
import { readFileSync, statSync } from 'node:fs'
import { LineCounter, parseDocument } from 'yaml'
import type { LoadOptions } from './context.js'
import { LIMITS } from './defaults.js'
import { ConfigError, type ConfigIssue } from './errors.js'
import { configFromData } from './normalize.js'
import { builtInTargets } from './normalize-providers.js'
import type { Config } from './types.js'

export type { LoadOptions } from './context.js'

export const BUILT_IN_SOURCE = '<built-in>'

export function loadConfigFile(path: string, options: LoadOptions = {}): Config {
  return parseConfig(readConfigText(path), path, options)
}

/** Parses YAML text; `source` names it in errors (a path, or e.g. `<stdin>`). */
export function parseConfig(yamlText: string, source: string, options: LoadOptions = {}): Config {
  return configFromData(parseYaml(yamlText, source), source, options)
}

/**
 * What `tollgate serve` runs with when given no --config: OpenAI and/or Anthropic targets when
 * OPENAI_API_KEY / ANTHROPIC_API_KEY are set, else the mock provider; no consumer groups (the
 * server creates a default key itself); every other setting at its default.
 */
export function builtInConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const targets = builtInTargets(env).map((t) => ({
    id: t.id,
    provider: t.provider,
    ...(t.apiKeyEnv === undefined ? {} : { secret_key_ref: { env: t.apiKeyEnv } }),
  }))
  return configFromData({ version: '1', providers: { targets } }, BUILT_IN_SOURCE, { env, requireSecrets: true })
}

function readConfigText(path: string): string {
  try {
    const size = statSync(path).size
    if (size > LIMITS.configFileBytesMax) {
      throw new ConfigError(path, [], `${path} is larger than ${LIMITS.configFileBytesMax} bytes; is it the right file?`)
    }
    return readFileSync(path, 'utf8')
  } catch (error) {
    if (error instanceof ConfigError) throw error
    throw new ConfigError(path, [], `cannot read ${path}: ${systemMessage(error)}`)
  }
}

/** `ENOENT: no such file or directory, open 'x.yaml'` → `ENOENT: no such file or directory`. */
function systemMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.replace(/, \w+ '.*'$/, '')
}

function parseYaml(text: string, source: string): unknown {
  const lineCounter = new LineCounter()
  // prettyErrors off: we print our own "line L, column C" and keep each issue on one line.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.map((error) => {
      const { line, col } = lineCounter.linePos(error.pos[0])
      return { path: `line ${line}, column ${col}`, message: `YAML syntax error: ${error.message}` }
    })
    throw new ConfigError(source, issues)
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: LIMITS.yamlAliasCountMax })
  } catch (error) {
    throw new ConfigError(source, [{ path: '', message: error instanceof Error ? error.message : String(error) }])
  }
  if (data === null || data === undefined) {
    throw new ConfigError(source, [{ path: '', message: 'the file is empty; expected a mapping such as "version: \'1\'"' }])
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(source, [
      { path: '', message: `expected a mapping of settings at the top level, got ${Array.isArray(data) ? 'a list' : typeof data}` },
    ])
  }
  return data
}
