#!/usr/bin/env node
/**
 * `npm start` runs this first (scripts/start.mjs imports it): it builds (`npm run build`) only when a source is newer than the
 * last build, so a second start skips the full TypeScript + Vite build (about a minute).
 * Plain JavaScript on purpose: it runs before anything is compiled.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const STAMP = 'dist/.build-stamp'
const SOURCES = ['src', 'console', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']
const OUTPUTS = ['dist/cli/main.js', 'dist/console/index.html']

function newestMtimeMs(path) {
  if (!existsSync(path)) return 0
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  let newest = stat.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, entry)))
  return newest
}

const fresh = existsSync(STAMP) && OUTPUTS.every((output) => existsSync(output)) && statSync(STAMP).mtimeMs >= Math.max(...SOURCES.map(newestMtimeMs))

if (fresh) {
  console.log('tollgate: dist/ is up to date, not rebuilding')
} else {
  const started = Date.now()
  const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit', shell: process.platform === 'win32' })
  if (build.status !== 0) process.exit(build.status ?? 1)
  writeFileSync(STAMP, `built ${new Date(started).toISOString()}\n`)
  // Stamped with the time the build started: a source saved during the build is still newer.
  utimesSync(STAMP, started / 1000, started / 1000)
}
