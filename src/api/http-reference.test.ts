/**
 * docs/http-api.md lists every route the server answers, as the OpenAPI document describes it:
 * a route added, removed or changed without `npm run docs:api` fails here.
 */
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from '../../test/support/gateway.js'
import { REFERENCE_BEGIN, REFERENCE_END, renderHttpReference } from './http-reference.js'

let t: TestApp
let document: any
beforeAll(async () => {
  t = await buildTestApp()
  document = (await t.app.fastify.inject({ method: 'GET', url: '/v1/openapi.json' })).json()
})
afterAll(() => t.close())

it('docs/http-api.md holds the route reference the server’s OpenAPI document renders to (run `npm run docs:api`)', () => {
  const text = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8')
  const begin = text.indexOf(REFERENCE_BEGIN)
  const end = text.indexOf(REFERENCE_END)
  expect(begin, 'the generated section’s markers').toBeGreaterThan(-1)
  expect(text.slice(begin, end + REFERENCE_END.length)).toBe(renderHttpReference(document))
})

it('gives every route its own heading, with its credentials and its body fields', () => {
  const reference = renderHttpReference(document)
  for (const [path, ops] of Object.entries(document.paths as Record<string, object>)) {
    for (const method of Object.keys(ops)) expect(reference).toContain(`#### \`${method.toUpperCase()} ${path}\``)
  }
  expect(reference).toMatch(/#### `POST \/v1\/wallets\/allocate`\n\nAdd funds[^\n]* — admin token or console session\./)
  expect(reference).toContain('| `scope.kind` | `org` \\| `team`')
})
