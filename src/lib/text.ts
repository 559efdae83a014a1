/**
 * Control characters in the strings callers give us: C0 (U+0000–U+001F), DEL and C1
 * (U+007F–U+009F), the Unicode line and paragraph separators (U+2028, U+2029), and the
 * bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069). What is
 * stored is shown later in the console, CLI tables, CSV exports, Slack and email, where an escape
 * sequence (C1's U+009B starts one in some terminals), a carriage return, a NUL or a right-to-left
 * override can forge, hide, reorder or cut what a reader sees. Names, ids, labels and tags are one
 * line of such text; free text (descriptions, notes) may also hold line breaks (`\n`) and tabs,
 * and none of the rest (not even `\r`).
 */
import type { z } from 'zod'

/** `line`: names, ids, labels, tags. `free`: descriptions, notes, reasons. */
export type TextKind = 'line' | 'free'

/** The first control character `value` may not hold, written `U+001B`; undefined when there is none. */
export function controlCharOf(value: string, kind: TextKind = 'line'): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    // Printable ASCII, the common case, first.
    if (code >= 0x20 && code < 0x7f) continue
    if (kind === 'free' && (code === 0x0a || code === 0x09)) continue
    if (code > 0x9f && !isLayoutControl(code)) continue
    return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`
  }
  return undefined
}

/** The separators and bidirectional controls that move or hide text around them. */
function isLayoutControl(code: number): boolean {
  return code === 0x2028 || code === 0x2029 || (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069)
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
