/**
 * Control characters (U+0000–U+001F and U+007F) in the strings callers give us. What is stored is
 * shown later in the console, CLI tables, CSV exports, Slack and email, where an escape sequence,
 * a carriage return or a NUL can forge, hide or cut what a reader sees. Names, ids, labels and
 * tags are one line of printable text; free text (descriptions, notes) may also hold line breaks
 * (`\n`) and tabs, and nothing else below U+0020 (not even `\r`).
 */
import type { z } from 'zod'

/** `line`: names, ids, labels, tags. `free`: descriptions, notes, reasons. */
export type TextKind = 'line' | 'free'

/** The first control character `value` may not hold, written `U+001B`; undefined when there is none. */
export function controlCharOf(value: string, kind: TextKind = 'line'): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code >= 0x20 && code !== 0x7f) continue
    if (kind === 'free' && (code === 0x0a || code === 0x09)) continue
    return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`
  }
  return undefined
}

/** Why a value with the control character `char` is refused (the caller names the field). */
export function controlCharMessage(char: string, kind: TextKind = 'line'): string {
  return kind === 'line'
    ? `must not contain control characters (found ${char}): send one line of printable text`
    : `must not contain control characters other than line breaks (\\n) and tabs (found ${char})`
}

/** `schema`, refusing a value that holds a control character (the one shared check every string schema uses). */
export function printable<S extends z.ZodString>(schema: S, kind: TextKind = 'line'): S {
  return schema.superRefine((value, ctx) => {
    const char = controlCharOf(value, kind)
    if (char !== undefined) ctx.addIssue({ code: 'custom', message: controlCharMessage(char, kind) })
  })
}
