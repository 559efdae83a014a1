/**
 * `@name` placeholders → PostgreSQL's `$n`, so SQL shared in shape with the SQLite adapters
 * reads the same. Names are matched as identifiers; `::casts` and string literals without `@`
 * are left alone.
 */
export function named(sql: string, params: Record<string, unknown>): { text: string; values: unknown[] } {
  const order = new Map<string, number>()
  const values: unknown[] = []
  const text = sql.replace(/@([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
    let index = order.get(name)
    if (index === undefined) {
      if (!(name in params)) throw new Error(`named SQL: missing parameter @${name}`)
      index = values.push(params[name])
      order.set(name, index)
    }
    return `$${index}`
  })
  return { text, values }
}
