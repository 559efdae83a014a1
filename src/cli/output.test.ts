/** Output for people: aligned tables with display widths, USD text, one-line API errors, plain progress lines. */
import { describe, expect, it } from 'vitest'
import { apiErrorBodyOf, formatApiError } from './errors.js'
import { plainProgress, renderFields, renderTable, startProgress, timeText, usdText } from './output.js'

describe('renderTable', () => {
  it('aligns columns by display width (wide characters count twice), right-aligns numbers, shows - for nothing', () => {
    const rows = [
      { name: 'marketing', usd: 500, owner: null },
      { name: '営業', usd: 0.000123, owner: 'ana' },
    ]
    const text = renderTable(
      rows,
      [
        { header: 'NAME', value: (r) => r.name },
        { header: 'USD', value: (r) => usdText(r.usd), align: 'right' },
        { header: 'OWNER', value: (r) => r.owner },
      ],
      'none',
    )
    expect(text.split('\n')).toEqual(['NAME            USD  OWNER', 'marketing    500.00  -', '営業       0.000123  ana'])
  })

  it('prints the empty message instead of a header with no rows', () => {
    expect(renderTable([], [{ header: 'ID', value: () => 'x' }], 'No budgets yet.')).toBe('No budgets yet.')
  })

  it('renderFields pads labels to one width', () => {
    expect(
      renderFields([
        ['id', 'bud_1'],
        ['this period', null],
      ]),
    ).toBe('id:          bud_1\nthis period: -')
  })
})

describe('usdText and timeText', () => {
  it.each([
    [500, '500.00'],
    [0.5, '0.50'],
    [0.000001, '0.000001'],
    [12.34567, '12.34567'],
    [-0.0527, '-0.0527'],
    [null, '-'],
  ])('%j USD reads %j', (usd, text) => expect(usdText(usd)).toBe(text))

  it('shortens ISO times, keeping UTC visible', () => expect(timeText('2026-05-01T09:30:00.000Z')).toBe('2026-05-01 09:30:00Z'))
})

describe('formatApiError', () => {
  it('shows code, status, message and request id from the admin envelope', () => {
    const body = apiErrorBodyOf(
      404,
      JSON.stringify({ error: { type: 'not_found_error', code: 'not_found', message: 'budget bud_x does not exist', request_id: 'req_1' } }),
    )
    expect(formatApiError(404, body)).toBe('not_found (HTTP 404): budget bud_x does not exist [request req_1]')
  })

  it('adds the issues whose path the message does not already name, on the same line', () => {
    const body = apiErrorBodyOf(
      400,
      JSON.stringify({
        error: {
          code: 'invalid_request',
          message: 'limit: expected an integer\nfrom 1 to 1000',
          issues: [
            { path: 'limit', message: 'out of range' },
            { path: 'scope.kind', message: 'expected one of org | team' },
          ],
          request_id: 'req_2',
        },
      }),
    )
    expect(formatApiError(400, body)).toBe(
      'invalid_request (HTTP 400): limit: expected an integer from 1 to 1000 (scope.kind: expected one of org | team) [request req_2]',
    )
  })

  it('makes one line of a body that is not the envelope: an unknown route, an HTML page', () => {
    expect(formatApiError(404, apiErrorBodyOf(404, '{"message":"Route GET:/v1/keys not found","error":"Not Found","statusCode":404}'))).toBe(
      'not_found (HTTP 404): Route GET:/v1/keys not found: this gateway does not serve that route (is it older than this CLI?)',
    )
    expect(formatApiError(502, apiErrorBodyOf(502, '<html>\n<body>Bad gateway</body>\n</html>'))).toBe(
      'error (HTTP 502): <html> <body>Bad gateway</body> </html>',
    )
    expect(formatApiError(500, apiErrorBodyOf(500, ''))).toBe('error (HTTP 500): the gateway answered HTTP 500 with no body')
  })
})

describe('plainProgress', () => {
  function recorder() {
    const lines: string[] = []
    return { lines, stream: { write: (chunk: string) => lines.push(chunk) > 0 } }
  }

  it('prints at most one line per interval, always the last one, and stop prints what was not shown', () => {
    const { lines, stream } = recorder()
    const progress = plainProgress('events', 3000, stream, 60_000)
    progress.update(1000, '1000/3000 events')
    progress.update(2000, '2000/3000 events')
    progress.update(3000, '3000/3000 events')
    progress.stop()
    expect(lines).toEqual(['events: 33% 1000/3000 events\n', 'events: 100% 3000/3000 events\n'])

    const stopped = recorder()
    const early = plainProgress('export', 100, stopped.stream, 60_000)
    early.update(10, '10 rows')
    early.update(40, '40 rows')
    early.stop()
    early.stop()
    expect(stopped.lines).toEqual(['export: 10% 10 rows\n', 'export: 40% 40 rows\n'])
  })
})

describe('startProgress', () => {
  it('draws a bar in place on a terminal, and plain lines elsewhere', () => {
    const tty: string[] = []
    const bar = startProgress('events', 2000, { isTTY: true, write: (chunk: string) => tty.push(chunk) > 0 })
    bar.update(1000, '1000/2000 events')
    bar.update(2000, '2000/2000 events')
    bar.stop()
    const drawn = tty.join('')
    expect(drawn).toMatch(/events \[=+-*\] 100% 2000\/2000 events/)
    expect(drawn).toContain('\u001b[')

    const plain: string[] = []
    const lines = startProgress('events', 2000, { isTTY: false, write: (chunk: string) => plain.push(chunk) > 0 })
    lines.update(2000, '2000/2000 events')
    lines.stop()
    expect(plain).toEqual(['events: 100% 2000/2000 events\n'])
  })
})
