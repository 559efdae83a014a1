/**
 * `npm run docs:api`: rewrites the route reference in docs/http-api.md from the OpenAPI document
 * of a gateway built in memory (src/api/http-reference.ts). The hand-written prose is kept.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { buildTestApp } from '../test/support/gateway.js'
import { REFERENCE_BEGIN, REFERENCE_END, renderHttpReference } from '../src/api/http-reference.js'

const FILE = new URL('../docs/http-api.md', import.meta.url)

const app = await buildTestApp()
try {
  const document = (await app.app.fastify.inject({ method: 'GET', url: '/v1/openapi.json' })).json()
  const text = readFileSync(FILE, 'utf8')
  const begin = text.indexOf(REFERENCE_BEGIN)
  const end = text.indexOf(REFERENCE_END)
  if (begin === -1 || end === -1) throw new Error(`docs/http-api.md must hold the markers:\n${REFERENCE_BEGIN}\n${REFERENCE_END}`)
  writeFileSync(FILE, text.slice(0, begin) + renderHttpReference(document) + text.slice(end + REFERENCE_END.length))
  console.log('docs/http-api.md: route reference rewritten')
} finally {
  await app.close()
}
