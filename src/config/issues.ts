/**
 * Zod issues → readable `ConfigIssue`s. `messageFor` is installed as the parse-time error map, so
 * every message is written here in one voice ("expected number, got string \"50%\""); schema-level
 * messages in `schema.ts` take precedence where a field needs its own wording.
 */
import type * as z from 'zod'
import { describeValue, quote } from './describe.js'
import type { ConfigIssue } from './errors.js'

type RawIssue = z.core.$ZodRawIssue

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  int: 'integer',
  number: 'number',
  string: 'string',
  boolean: 'boolean (true or false)',
}

export function messageFor(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required'
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`
    case 'invalid_value':
      return oneOf(issue.values, issue.input)
    case 'invalid_union':
      return unionMessage(issue)
    case 'too_small':
      return tooSmall(issue.origin, Number(issue.minimum), issue.inclusive ?? true, issue.input)
    case 'too_big':
      return tooBig(issue.origin, Number(issue.maximum), issue.inclusive ?? true, issue.input)
    case 'unrecognized_keys':
      // One line per key, split again in toConfigIssues.
      return issue.keys.map((key) => unknownKeyMessage(key, unusedKeys(issue.inst, issue.input))).join('\n')
    case 'invalid_format':
      return `expected ${issue.format}, got ${describeValue(issue.input)}`
    default:
      return undefined
  }
}

/** Keys the object schema allows that the input does not already use: the candidates for a typo. */
function unusedKeys(inst: unknown, input: unknown): string[] {
  const def = (inst as { _zod?: { def?: { type?: string; shape?: Record<string, unknown> } } } | undefined)?._zod?.def
  if (def?.type !== 'object' || def.shape === undefined) return []
  const used = typeof input === 'object' && input !== null ? Object.keys(input) : []
  return Object.keys(def.shape).filter((key) => !used.includes(key))
}

const SUGGESTION = / \(did you mean "([^"]+)"\?\)$/

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const suggestion = closestKey(key, allowed)
  return `unknown key ${quote(key)}${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}`
}

/**
 * The allowed key a typo most likely meant: the same letters ignoring case and `-`/`_`
 * (`apiKey`), a truncation (`wallet_team` → `wallet_team_id`), or 1–2 edits away.
 */
export function closestKey(key: string, allowed: readonly string[]): string | undefined {
  const loose = (text: string) => text.toLowerCase().replace(/[-_]/g, '')
  const same = allowed.find((candidate) => loose(candidate) === loose(key))
  if (same !== undefined) return same
  const PREFIX_CHARS_MIN = 5
  const truncation = allowed.find((c) => Math.min(c.length, key.length) >= PREFIX_CHARS_MIN && (c.startsWith(key) || key.startsWith(c)))
  if (truncation !== undefined) return truncation
  const distanceMax = key.length <= 4 ? 1 : 2
  let best: { key: string; distance: number } | undefined
  for (const candidate of allowed) {
    const distance = editDistance(key, candidate)
    if (distance <= distanceMax && (best === undefined || distance < best.distance)) best = { key: candidate, distance }
  }
  return best?.key
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

function oneOf(values: readonly unknown[], input: unknown): string {
  const got = typeof input === 'string' ? quote(input) : describeValue(input)
  if (input === undefined) return `required: one of ${values.map(String).join(' | ')}`
  if (values.length === 1) return `expected ${String(values[0])}, got ${got}`
  return `expected one of ${values.map(String).join(' | ')}, got ${got}`
}

/** A discriminated union reports the bad discriminator with the path already pointing at it. */
function unionMessage(issue: Extract<RawIssue, { code: 'invalid_union' }>): string {
  const extra = issue as { discriminator?: unknown; options?: unknown }
  const input = issue.input
  if (typeof extra.discriminator === 'string' && Array.isArray(extra.options)) {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      return `expected a mapping, got ${describeValue(input)}`
    }
    return oneOf(extra.options, (input as Record<string, unknown>)[extra.discriminator])
  }
  return `does not match any allowed form, got ${describeValue(input)}`
}

function tooSmall(origin: string, minimum: number, inclusive: boolean, input: unknown): string {
  switch (origin) {
    case 'string':
      return minimum <= 1 ? 'must not be empty' : `must be at least ${minimum} characters`
    case 'array':
      return `must have at least ${minimum} ${minimum === 1 ? 'entry' : 'entries'}`
    default:
      return inclusive ? `must be at least ${minimum}, got ${describeNumber(input)}` : `must be greater than ${minimum}, got ${describeNumber(input)}`
  }
}

function tooBig(origin: string, maximum: number, inclusive: boolean, input: unknown): string {
  switch (origin) {
    case 'string':
      return `must be at most ${maximum} characters`
    case 'array':
      return `must have at most ${maximum} entries`
    default:
      return inclusive ? `must be at most ${maximum}, got ${describeNumber(input)}` : `must be less than ${maximum}, got ${describeNumber(input)}`
  }
}

function describeNumber(input: unknown): string {
  return typeof input === 'number' ? String(input) : describeValue(input)
}

/** `['providers', 'targets', 1, 'provider']` → `providers.targets[1].provider`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = ''
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`
    else if (typeof key === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) text += text === '' ? key : `.${key}`
    else text += `[${JSON.stringify(String(key))}]`
  }
  return text
}

/**
 * One ConfigIssue per problem; an object with two unknown keys yields two lines. When an unknown
 * key is a likely typo of a required key, the "required" line for that key is dropped: the
 * "did you mean" already says what to fix.
 */
export function toConfigIssues(issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = []
  const explained = new Set<string>()
  for (const issue of issues) {
    const path = formatPath(issue.path)
    if (issue.code !== 'unrecognized_keys') {
      out.push({ path, message: issue.message })
      continue
    }
    const lines = issue.message.split('\n')
    issue.keys.forEach((key, i) => {
      const message = lines[i] ?? `unknown key ${quote(key)}`
      const meant = SUGGESTION.exec(message)?.[1]
      if (meant !== undefined) explained.add(formatPath([...issue.path, meant]))
      out.push({ path, message })
    })
  }
  return out.filter((issue) => !(explained.has(issue.path) && issue.message.startsWith('required')))
}
