/**
 * Durations as people write them in config and API bodies: a whole number and one unit
 * (`90s`, `30m`, `2h`, `1d`). One unit only, so `1h30m` is refused rather than half-read.
 */
const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION = /^(\d{1,6})(s|m|h|d)$/

/** Milliseconds, or undefined when `text` is not `<whole number><s|m|h|d>` or is zero. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim())
  if (!match) return undefined
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!
  return ms > 0 ? ms : undefined
}

/** The shortest exact way to write `ms` (`7200000` → `2h`); milliseconds not a whole second read as `Ns` rounded up. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) {
    if (ms % UNIT_MS[unit]! === 0) return `${ms / UNIT_MS[unit]!}${unit}`
  }
  return `${Math.ceil(ms / 1000)}s`
}
