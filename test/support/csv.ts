/**
 * Reads CSV as RFC 4180 defines it (quoted fields with doubled quotes, CRLF or LF records), for
 * tests that check an export field by field. Strict: an unterminated quote throws.
 */
export function parseCsv(text: string): string[][] {
  const records: string[][] = []
  let record: string[] = []
  let field = ''
  let quoted = false
  const endField = () => {
    record.push(field)
    field = ''
  }
  const endRecord = () => {
    endField()
    records.push(record)
    record = []
  }
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c !== '"') field += c
      else if (text[i + 1] === '"') {
        field += '"'
        i++
      } else quoted = false
    } else if (c === '"' && field === '') quoted = true
    else if (c === ',') endField()
    else if (c === '\n') endRecord()
    else if (c === '\r' && text[i + 1] === '\n') {
      endRecord()
      i++
    } else field += c
  }
  if (quoted) throw new Error('unterminated quoted field')
  if (field !== '' || record.length > 0) endRecord()
  return records
}

/** Records → objects keyed by the header row. */
export function csvObjects(text: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(text)
  return rows.map((row) => Object.fromEntries(header!.map((name, i) => [name, row[i] ?? ''])))
}
