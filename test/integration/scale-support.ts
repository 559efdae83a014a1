/**
 * Fixtures for the scale-out tests: gateway YAML on PostgreSQL + Redis, a TCP proxy that
 * can cut a gateway off from Redis or PostgreSQL and let it back (an outage as the client sees
 * it: connections reset, new ones refused), bounded-concurrency fan-out, and direct reads of the
 * durable record.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { parse, stringify } from 'yaml'
import { capsConfig, MOCK_KEY_ENV, type AdminCall, type CapsConsumer } from './hard-caps-support.js'

export interface ScaleConsumer extends CapsConsumer {
  readonly failMode?: 'open' | 'closed'
  readonly emergencyAllowanceUsd?: number
}

export interface ScaleConfigSpec {
  readonly postgresUrl: string
  readonly redisUrl: string
  readonly mockBaseUrl: string
  readonly consumers: readonly ScaleConsumer[]
  readonly budgets?: ReadonlyArray<Record<string, unknown>>
  /** Extra models routed to the same target: `name` → upstream model (to tell teams apart upstream). */
  readonly extraModels?: ReadonlyArray<{ readonly name: string; readonly upstreamModel: string }>
  readonly targetTimeoutMs?: number
  readonly reservations?: { readonly ttlMs: number; readonly sweepIntervalMs: number }
}

/** The hard-caps gateway YAML (metered model, wallets enforced), moved onto PostgreSQL + Redis. */
export function scaleConfig(spec: ScaleConfigSpec): string {
  const doc = parse(
    capsConfig({
      consumers: spec.consumers,
      mockBaseUrl: spec.mockBaseUrl,
      ...(spec.targetTimeoutMs === undefined ? {} : { targetTimeoutMs: spec.targetTimeoutMs }),
      ...(spec.reservations === undefined ? {} : { reservations: spec.reservations }),
    }),
  ) as Record<string, any>
  doc.storage = { postgres: spec.postgresUrl, redis: spec.redisUrl }
  for (const [i, c] of spec.consumers.entries()) {
    if (c.failMode !== undefined) doc.consumer_groups[i].fail_mode = c.failMode
    if (c.emergencyAllowanceUsd !== undefined) doc.consumer_groups[i].emergency_allowance_usd = c.emergencyAllowanceUsd
  }
  const metered = doc.models[0]
  for (const m of spec.extraModels ?? []) doc.models.push({ ...metered, name: m.name, upstream_model: m.upstreamModel })
  if (spec.budgets !== undefined) doc.budgets = spec.budgets
  return stringify(doc)
}

export function writeConfig(dir: string, name: string, yaml: string): string {
  const path = join(dir, name)
  writeFileSync(path, yaml)
  return path
}

export function gatewayEnv(adminToken: string, mockKey: string, redisPrefix: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TOLLGATE_ADMIN_TOKEN: adminToken,
    [MOCK_KEY_ENV]: mockKey,
    TOLLGATE_LOG_LEVEL: 'error',
    TOLLGATE_REDIS_PREFIX: redisPrefix,
  }
}

export function adminAt(baseUrl: string, token: string): AdminCall {
  return async (method, path, body) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: response.status, body: await response.json() }
  }
}

/** One query against the test schema (the URL carries its search_path). */
export async function sql<T extends Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 })
  client.on('error', () => {})
  await client.connect()
  try {
    return (await client.query<T>(text, values)).rows
  } finally {
    await client.end().catch(() => {})
  }
}

export interface TcpProxy {
  readonly port: number
  /** Resets every connection and refuses new ones, as a stopped server would. */
  cut(): Promise<void>
  /** Listens again on the same port. */
  restore(): Promise<void>
  close(): Promise<void>
}

/** A loopback TCP proxy to `target` (host:port) that a test can cut and restore. */
export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, targetHost)
        sockets.add(client)
        sockets.add(upstream)
        const drop = (): void => {
          client.destroy()
          upstream.destroy()
          sockets.delete(client)
          sockets.delete(upstream)
        }
        client.on('error', drop).on('close', drop)
        upstream.on('error', drop).on('close', drop)
        client.pipe(upstream).pipe(client)
      })
      s.once('error', reject)
      s.listen({ host: '127.0.0.1', port }, () => {
        const address = s.address()
        if (address !== null && typeof address !== 'string') port = address.port
        server = s
        resolve()
      })
    })
  const stop = async (): Promise<void> => {
    const s = server
    server = undefined
    for (const socket of sockets) socket.destroy()
    sockets.clear()
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  await listen()
  return {
    get port() {
      return port
    },
    cut: stop,
    restore: listen,
    close: stop,
  }
}

/** host and port of a redis:// or postgres:// URL. */
export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port) }
}

/** The same URL, pointed at another port (a proxy in front of the server). */
export function viaPort(url: string, port: number): string {
  const u = new URL(url)
  u.port = String(port)
  return u.toString()
}
