/** How a config value is shown in an error message: its YAML type and, for scalars, the value. */

const PREVIEW_CHARS_MAX = 60

export function describeValue(input: unknown): string {
  if (input === undefined) return 'nothing'
  if (input === null) return 'null'
  if (Array.isArray(input)) return 'a list'
  switch (typeof input) {
    case 'string':
      return `string ${quote(input)}`
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof input} ${String(input)}`
    case 'object':
      return input instanceof Date ? `date ${input.toISOString()}` : 'a mapping'
    default:
      return typeof input
  }
}

/** JSON-quoted and cut to a readable length, so a pasted blob does not flood the terminal. */
export function quote(text: string): string {
  const cut = text.length > PREVIEW_CHARS_MAX ? `${text.slice(0, PREVIEW_CHARS_MAX)}…` : text
  return JSON.stringify(cut)
}
