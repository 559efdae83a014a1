/** The bench's `--name=value` options. */

/** The value of `--name=…`, or undefined when the option is absent. */
export function optionValue(argv: readonly string[], name: string): string | undefined {
  return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
}

/** `--name=N` as a whole number ≥ `min`, or `fallback` when absent; anything else is an error naming the option. */
export function wholeOption(argv: readonly string[], name: string, fallback: number, min: number): number {
  const n = Number(optionValue(argv, name) ?? fallback)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: a whole number ≥ ${min}`)
  return n
}
