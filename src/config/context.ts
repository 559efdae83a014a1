/**
 * State shared by the normalising passes: where secrets come from, whether a missing one is an
 * error, and the issues found so far. Each pass records every problem it sees and carries on with
 * a placeholder, so one run of `tollgate config check` lists them all.
 */
import type { ConfigIssue } from './errors.js'
import { quote } from './describe.js'

export interface LoadOptions {
  /** Where `{ env: NAME }` references are resolved; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv
  /**
   * Default true: a referenced variable that is unset is an error. `tollgate config check` passes
   * false to validate a file on a machine without the secrets; unresolved secrets are then left
   * undefined (or `''` where the Config type needs a string — see `resolveSecret`).
   */
  readonly requireSecrets?: boolean
}

/**
 * Names a message may show: the conventional form of an environment variable name (uppercase
 * letters, digits and _, at most 64 characters, and an underscore in any name longer than 16).
 * The schema accepts any name of letters, digits and _, so a secret pasted where the name belongs
 * (`whsec_…`, `sk_live_…`, an all-caps access key id) passes it; such a name is never echoed.
 */
const SHOWN_ENV_NAME = /^[A-Z_][A-Z0-9_]{0,63}$/

export function envNameShown(name: string): boolean {
  return SHOWN_ENV_NAME.test(name) && (name.length <= 16 || name.includes('_'))
}

/**
 * How a message names environment variable `name`: `environment variable OPENAI_API_KEY`, or, for
 * a name that does not look like one, a phrase that says where it is named and why it is not shown.
 */
export function envVarLabel(name: string, where = 'here'): string {
  return envNameShown(name)
    ? `environment variable ${name}`
    : `the environment variable named ${where} (its name is not shown: it does not look like a variable name and may be a pasted secret)`
}

/** What to do about a name that is not shown; empty for a name that is. */
function envNameHint(name: string): string {
  return envNameShown(name)
    ? ''
    : '; if it is the secret itself, set it in a variable (export MY_SECRET=…), write { env: MY_SECRET } here, and rotate the secret: it was written in the file'
}

export class Context {
  readonly env: NodeJS.ProcessEnv
  readonly requireSecrets: boolean
  readonly issues: ConfigIssue[] = []

  constructor(options: LoadOptions = {}) {
    this.env = options.env ?? process.env
    this.requireSecrets = options.requireSecrets ?? true
  }

  report(path: string, message: string): void {
    this.issues.push({ path, message })
  }

  /**
   * The value of environment variable `name`, or undefined when it is unset or empty (reported
   * at `path` when secrets are required). The value itself never appears in a message, nor does
   * a name that looks like a secret (`envVarLabel`).
   */
  resolveSecret(name: string, path: string, note = ''): string | undefined {
    const value = this.env[name]
    if (value !== undefined && value !== '') return value
    if (this.requireSecrets) {
      const state = value === '' ? 'is empty' : 'is not set'
      this.report(path, `${envVarLabel(name)} ${state}${note}${envNameHint(name)}`)
    }
    return undefined
  }
}

/** Reports every entry whose key was already used by an earlier entry, naming where. */
export function checkUnique<T>(
  ctx: Context,
  items: readonly T[],
  keyOf: (item: T) => string | number | undefined,
  pathOf: (index: number) => string,
  what: string,
): void {
  const firstIndex = new Map<string | number, number>()
  items.forEach((item, index) => {
    const key = keyOf(item)
    if (key === undefined) return
    const first = firstIndex.get(key)
    if (first === undefined) {
      firstIndex.set(key, index)
      return
    }
    const shown = typeof key === 'string' ? quote(key) : String(key)
    ctx.report(pathOf(index), `duplicate ${what} ${shown} (already used at ${pathOf(first)})`)
  })
}

/**
 * Orders issues as the file reads: top-level sections in the order the file has them, then by
 * list index, so `consumer_groups[1]` comes before `consumer_groups[2]`. The sort is stable, so
 * issues on the same entry keep the order they were found in.
 */
export function sortIssues(issues: readonly ConfigIssue[], topLevelKeys: readonly string[]): ConfigIssue[] {
  const rank = (path: string): number[] => {
    const section = /^[^.[]*/.exec(path)?.[0] ?? ''
    const sectionIndex = topLevelKeys.indexOf(section)
    const indices = [...path.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]))
    return [sectionIndex === -1 ? topLevelKeys.length : sectionIndex, ...indices]
  }
  const compare = (a: number[], b: number[]): number => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const d = (a[i] ?? 0) - (b[i] ?? 0)
      if (d !== 0) return d
    }
    return a.length - b.length
  }
  return issues
    .map((issue, order) => ({ issue, key: rank(issue.path), order }))
    .sort((x, y) => compare(x.key, y.key) || x.order - y.order)
    .map((x) => x.issue)
}
