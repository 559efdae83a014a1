/**
 * Rows → bytes. CSV follows RFC 4180: a header row, CRLF line ends, a field quoted when it holds
 * a comma, a quote, CR or LF (quotes doubled); null is an empty field, nested data is its JSON.
 * NDJSON is one JSON object per line, LF-terminated.
 */
import type { ExportFormat, ExportRow } from './types.js'

export interface RowEncoder {
  /** What the file starts with (the CSV header; nothing for NDJSON). */
  readonly head: string
  encode(row: ExportRow): string
}

export function encoderFor(format: ExportFormat, columns: readonly string[]): RowEncoder {
  if (format === 'ndjson') return { head: '', encode: (row) => `${JSON.stringify(row)}\n` }
  return {
    head: `${columns.map(csvField).join(',')}\r\n`,
    encode: (row) => `${columns.map((name) => csvField(row[name])).join(',')}\r\n`,
  }
}

export function csvField(value: ExportRow[string] | undefined): string {
  if (value === null || value === undefined) return ''
  const plain = typeof value === 'object' ? JSON.stringify(value) : String(value)
  return /[",\r\n]/.test(plain) ? `"${plain.replace(/"/g, '""')}"` : plain
}

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
}
