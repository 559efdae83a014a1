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
   * at `path` when secrets are required). The value itself never appears in a message.
   */
  resolveSecret(name: string, path: string, note = ''): string | undefined {
    const value = this.env[name]
    if (value !== undefined && value !== '') return value
    if (this.requireSecrets) {
      const state = value === '' ? 'is empty' : 'is not set'
      this.report(path, `environment variable ${name} ${state}${note}`)
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
