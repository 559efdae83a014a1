/**
 * `ConfigError`: everything that can be wrong with a config file, collected (not just the first
 * problem) and printed as the file, each key path and what was expected — never a stack trace
 * `tollgate serve` and `tollgate config check` print `format()` and exit.
 */

export interface ConfigIssue {
  /** `providers.targets[1].provider`; `''` for the top level; `line 3, column 5` for YAML syntax. */
  readonly path: string
  readonly message: string
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'invalid_config'
  readonly source: string
  readonly issues: readonly ConfigIssue[]
  /** Replaces "FILE is not valid" when the file could not be read at all. */
  readonly headline: string

  constructor(source: string, issues: readonly ConfigIssue[], headline?: string) {
    const head = headline ?? `${source} is not valid`
    super([head, ...issues.map(issueLine)].join('\n'))
    this.source = source
    this.issues = Object.freeze([...issues])
    this.headline = head
  }

  /** The text a user sees: one headline, then one indented line per issue. */
  format(): string {
    return [`tollgate: ${this.headline}`, ...this.issues.map((issue) => `  ${issueLine(issue)}`)].join('\n')
  }
}

function issueLine(issue: ConfigIssue): string {
  return `${issue.path === '' ? '(top level)' : issue.path}: ${issue.message}`
}
