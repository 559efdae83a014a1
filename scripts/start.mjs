#!/usr/bin/env node
/**
 * `npm start [-- options]`: rebuilds when a source changed (build-if-stale.mjs), then runs
 * `tollgate serve [options]` in this same process — one Node start-up instead of two (a
 * `prestart` script was a second process, about 0.1–0.2 s of a one-second start).
 * Plain JavaScript on purpose: it runs before anything is compiled.
 */
import './build-if-stale.mjs'

// `node scripts/start.mjs --port 4100` → the CLI sees `serve --port 4100`.
process.argv.splice(2, 0, 'serve')
await import('../dist/cli/main.js')
