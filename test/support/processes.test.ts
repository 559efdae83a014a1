import { describe, expect, it } from 'vitest'
import { freePort } from './free-port.js'
import { killAllChildren, runningChildren, spawnChild, waitForHttpOk } from './processes.js'

/** A tiny HTTP server: /healthz answers 200 after `delayMs`; logs to stdout and stderr. */
const serverScript = (port: number, delayMs: number): string => `
  const http = require('node:http')
  const ready = Date.now() + ${delayMs}
  console.log('starting on ${port}')
  console.error('a line on stderr')
  http.createServer((req, res) => {
    res.statusCode = req.url === '/healthz' && Date.now() >= ready ? 200 : 503
    res.end()
  }).listen(${port}, '127.0.0.1')
  process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(0) })
`

describe('processes', () => {
  it('spawns, waits for /healthz, captures output, kills with a signal', async () => {
    const port = await freePort()
    const child = spawnChild(process.execPath, ['-e', serverScript(port, 300)], { name: 'fake server' })
    await child.waitForHttp(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 5000 })
    expect(child.exitStatus()).toBeUndefined()
    expect(runningChildren()).toContain(child)
    const status = await child.kill('SIGTERM')
    expect(status).toEqual({ code: 0, signal: null })
    expect(child.output()).toContain(`starting on ${port}`)
    expect(child.output()).toContain('a line on stderr')
    expect(child.output()).toContain('got SIGTERM')
    expect(runningChildren()).not.toContain(child)
  })

  it('fails fast with the output when the child exits before answering', async () => {
    const port = await freePort()
    const child = spawnChild(process.execPath, ['-e', 'console.error("config is broken"); process.exit(3)'], { name: 'broken' })
    const started = Date.now()
    await expect(child.waitForHttp(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 10_000 })).rejects.toThrow(
      /broken exited \(code 3\)[\s\S]*config is broken/,
    )
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('gives up after the timeout, naming the last error', async () => {
    const port = await freePort()
    await expect(waitForHttpOk(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 400 })).rejects.toThrow(/did not answer 200 within 400 ms/)
  })

  it('escalates to SIGKILL when the child ignores the signal; killAllChildren cleans up', async () => {
    const stubborn = spawnChild(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); console.log("up"); setInterval(() => {}, 1000)'])
    await expect.poll(() => stubborn.output(), { timeout: 5000 }).toContain('up')
    expect(await stubborn.kill('SIGTERM', 300)).toEqual({ code: null, signal: 'SIGKILL' })

    const idle = spawnChild(process.execPath, ['-e', 'setInterval(() => {}, 1000)'])
    expect(runningChildren()).toContain(idle)
    await killAllChildren()
    expect(idle.exitStatus()).toEqual({ code: null, signal: 'SIGTERM' })
    expect(runningChildren()).toHaveLength(0)
  })

  it('reports a command that cannot be spawned', async () => {
    const child = spawnChild('/nonexistent/tollgate-binary', [])
    expect(await child.exited).toEqual({ code: null, signal: null })
    expect(child.output()).toContain('ENOENT')
  })
})
