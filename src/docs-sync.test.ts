/**
 * docs/errors.md must list exactly the error codes the code can return (Fastify's Errors.md
 * check): a code added without docs, or docs for a code that is gone, fails here.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { PROXY_ERROR_CODES } from './proxy/refusal.js'
import { API_ERROR_CODES } from './api/errors.js'
import { INGEST_ERROR_CODES } from './ingest/payload.js'
import { parseConfig } from './config/index.js'

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')

function codesInSection(heading: string): string[] {
  const start = doc.indexOf(heading)
  const end = doc.indexOf('\n## ', start + heading.length)
  const section = doc.slice(start, end === -1 ? undefined : end)
  return [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!)
}

describe('docs/errors.md', () => {
  it('lists every proxy error code, and no other', () => {
    expect(codesInSection('## Proxy').sort()).toEqual([...PROXY_ERROR_CODES].sort())
  })

  it('lists every admin API error code, and no other', () => {
    expect(codesInSection('## Admin API').sort()).toEqual([...API_ERROR_CODES].sort())
  })

  it('lists every ingestion error code, and no other', () => {
    expect(codesInSection('## Ingestion').sort()).toEqual([...INGEST_ERROR_CODES].sort())
  })
})

describe('README.md', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!)

  it('has configuration examples', () => {
    expect(blocks.length).toBeGreaterThan(0)
  })

  it.each(blocks.map((block, index) => [index, block] as const))('configuration example %i loads as written', (_index, block) => {
    expect(() => parseConfig(block, 'README.md', { requireSecrets: false })).not.toThrow()
  })
})
