/**
 * docs/errors.md must list exactly the error codes the code can return (Fastify's Errors.md
 * check): a code added without docs, or docs for a code that is gone, fails here.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { PROXY_ERROR_CODES } from './proxy/refusal.js'
import { API_ERROR_CODES } from './api/errors.js'
import { INGEST_ERROR_CODES } from './ingest/payload.js'
import { EXPORT_FAILURE_CODES } from './exports/index.js'
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

  it('lists every code a failed export job’s error starts with, and no other', () => {
    expect(codesInSection('## Export jobs').sort()).toEqual([...EXPORT_FAILURE_CODES].sort())
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

describe('the repository', () => {
  it('cites no document outside itself: every reference a reader follows is in the repository', () => {
    const root = fileURLToPath(new URL('..', import.meta.url))
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((f) => /\.(ts|tsx|mjs|md|ya?ml|json)$/.test(f) && f !== 'package-lock.json' && existsSync(join(root, f)))
    expect(files.length).toBeGreaterThan(100)
    // Built from parts so this file does not match itself.
    const outside = new RegExp(['SPEC\\.md', 'SPEC [§]', 'STYLE\\.md', 'STYLE [§]', '\\.\\./shared/', '\\bseeds/'].join('|'))
    const citing = files.filter((f) => outside.test(readFileSync(join(root, f), 'utf8')))
    expect(citing).toEqual([])
  })
})
