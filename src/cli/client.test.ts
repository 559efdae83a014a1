/** The file name a download takes from the server's Content-Disposition: a plain name or none. */
import { describe, expect, it } from 'vitest'
import { suggestedFileName } from './client.js'

describe('suggestedFileName', () => {
  it.each([
    ['attachment; filename="tollgate-events-20260501-20260601-exp_1.csv"', 'tollgate-events-20260501-20260601-exp_1.csv'],
    ['attachment; filename=report.ndjson', 'report.ndjson'],
    ['attachment; filename="../../etc/passwd"', 'passwd'],
    ['attachment; filename="C:\\\\tmp\\\\x y.csv"', 'x_y.csv'],
    ['attachment; filename=".."', undefined],
    ['inline', undefined],
    [undefined, undefined],
  ])('%j → %j', (header, name) => expect(suggestedFileName(header)).toBe(name))
})
