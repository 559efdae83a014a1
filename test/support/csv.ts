/**
 * Reads CSV as RFC 4180 defines it (quoted fields with doubled quotes, CRLF or LF records), for
 * tests that check an export field by field. Strict: an unterminated quote throws.
 */
export function parseCsv(text: string): string[][] {
  const records: string[][] = []
  let record: string[] = []
  let field = ''
  let i = 0
  let quoted = false
  while (i < text.length) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), (i += 2)
      else if (c === '"') (quoted = false), i++
      else (field += c), i++
      continue
    }
    if (c === '"' && field === '') (quoted = true), i++
    else if (c === ',') record.push(field), (field = ''), i++
    else if (c === '\r' && text[i + 1] === '\n') record.push(field), records.push(record), (record = []), (field = ''), (i += 2)
    else if (c === '\n') record.push(field), records.push(record), (record = []), (field = ''), i++
    else (field += c), i++
  }
  if (quoted) throw new Error('unterminated quoted field')
  if (field !== '' || record.length > 0) record.push(field), records.push(record)
  return records
}

/** Records → objects keyed by the header row. */
export function csvObjects(text: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(text)
  return rows.map((row) => Object.fromEntries(header!.map((name, i) => [name, row[i] ?? ''])))
}
