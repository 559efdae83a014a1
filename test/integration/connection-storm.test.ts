/**
 * Thousands of clients connecting at once, as when a fleet of workers starts its streams
 * together. The kernel completes their handshakes and queues them for accept() up to the listen
 * backlog; past it, it drops them and each client waits for a retransmission (one second, then
 * three). Node's default backlog (511) did that to 2,000 streams in the bench; the gateway now
 * listens with `server.listen_backlog` (4096).
 *
 * Method: a real gateway process is stopped (SIGSTOP) so it accepts nothing, and 2,000
 * connections each send GET /healthz. The kernel's accept queue of the gateway's socket
 * (/proc/net/tcp) must then hold all 2,000: none was dropped. Resumed, the gateway answers them all.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnGateway, type GatewayHandle } from '../support/processes.js'

const CLIENTS = 2_000

const somaxconn = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))
  } catch {
    return undefined
  }
})()
/** This process's open-file limit (Node raises the soft limit to the hard one at start-up). */
const openFilesMax = (() => {
  try {
    return Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1])
  } catch {
    return undefined
  }
})()
const kernelAllows = somaxconn !== undefined && somaxconn >= CLIENTS && openFilesMax !== undefined && openFilesMax >= CLIENTS + 500

/** Connections waiting in the accept queue of the IPv4 socket listening on `port` (/proc/net/tcp). */
function acceptQueue(port: number): number | undefined {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0')
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, , state, queues] = line.trim().split(/\s+/)
    // State 0A is LISTEN; for a listening socket rx_queue is the accept queue.
    if (state === '0A' && local?.endsWith(`:${portHex}`)) return Number.parseInt(queues!.split(':')[1]!, 16)
  }
  return undefined
}

let dir: string
let gateway: GatewayHandle

describe.skipIf(!kernelAllows)(
  `${CLIENTS} clients connecting at once (skipped where net.core.somaxconn < ${CLIENTS}, fewer than ${CLIENTS + 500} open files are allowed, or /proc is missing)`,
  () => {
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tollgate-storm-'))
      const config = join(dir, 'tollgate.yaml')
      writeFileSync(config, `storage: {sqlite: ${join(dir, 'tollgate.db')}}\n`)
      gateway = await spawnGateway({ config, env: { ...process.env, TOLLGATE_LOG_LEVEL: 'warn' } })
    })

    afterAll(async () => {
      if (gateway.pid !== undefined) process.kill(gateway.pid, 'SIGCONT')
      await gateway.kill('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    })

    it('are all queued while the gateway is busy, none dropped, and all answered', async () => {
      const pid = gateway.pid!
      const sockets: Socket[] = []
      process.kill(pid, 'SIGSTOP')
      try {
        const answered = Array.from(
          { length: CLIENTS },
          () =>
            new Promise<void>((resolve, reject) => {
              const socket = connect(gateway.port, '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'))
              sockets.push(socket)
              let head = ''
              socket.setEncoding('utf8')
              socket.on('data', (text: string) => {
                head += text
                if (head.includes('\r\n')) {
                  expect(head).toMatch(/^HTTP\/1\.1 200/)
                  resolve()
                  socket.destroy()
                }
              })
              socket.on('error', reject)
            }),
        )
        // Every handshake the kernel will complete is completed while the gateway is stopped.
        let queued: number | undefined
        for (let waited = 0; waited < 5_000 && queued !== CLIENTS; waited += 100) {
          await new Promise((resolve) => setTimeout(resolve, 100))
          queued = acceptQueue(gateway.port)
        }
        expect(queued).toBe(CLIENTS)
        process.kill(pid, 'SIGCONT')
        await Promise.all(answered)
      } finally {
        for (const socket of sockets) socket.destroy()
      }
    }, 30_000)
  },
)
