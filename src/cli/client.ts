/**
 * The CLI's HTTP client for a running gateway: one undici Pool to the gateway's origin, JSON in
 * and out, and failures turned into the CLI's errors — ApiError for any 4xx/5xx (exit 1),
 * UnreachableError when no HTTP answer came (exit 3). The credential (admin token or consumer
 * key) goes only into the Authorization header; no message this file builds contains it.
 */
import { createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Pool } from 'undici'
import { ApiError, UnreachableError, UsageError, apiErrorBodyOf } from './errors.js'

/** A gateway that accepts the connection but does not answer within this is reported unreachable. */
const HEADERS_TIMEOUT_MS = 60_000
/** The longest pause between two chunks of a body (an export download streams for longer in total). */
const BODY_TIMEOUT_MS = 60_000
const CONNECT_TIMEOUT_MS = 10_000
/** Connections to the gateway; the CLI sends one request at a time, a download may overlap a poll. */
const CONNECTIONS_MAX = 2

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE'

export interface RequestOptions {
  readonly body?: unknown
  readonly query?: Readonly<Record<string, string | number | undefined>>
}

export class GatewayClient {
  private readonly pool: Pool
  private readonly basePath: string
  /** The URL as shown in messages: no user name or password, even if one was given. */
  readonly displayUrl: string

  private constructor(
    url: URL,
    private readonly credential: string | undefined,
  ) {
    this.pool = new Pool(url.origin, {
      connections: CONNECTIONS_MAX,
      headersTimeout: HEADERS_TIMEOUT_MS,
      bodyTimeout: BODY_TIMEOUT_MS,
      connect: { timeout: CONNECT_TIMEOUT_MS },
    })
    this.basePath = url.pathname.replace(/\/+$/, '')
    this.displayUrl = `${url.origin}${this.basePath}`
  }

  /** Refuses (UsageError) a URL that is not http(s) before anything is sent. */
  static connect(rawUrl: string, credential: string | undefined): GatewayClient {
    let url: URL
    try {
      url = new URL(rawUrl)
    } catch {
      // Without any user name or password the URL carries: the error is printed.
      throw new UsageError(`--url: expected an http(s) URL such as http://127.0.0.1:4100, got "${rawUrl.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1')}"`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url: expected an http(s) URL, got "${url.protocol}"`)
    return new GatewayClient(url, credential)
  }

  /** The parsed JSON body of a 2xx answer (undefined for 204); throws ApiError for 4xx/5xx. */
  async json<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options)
    const text = await response.body.text()
    if (response.statusCode >= 400) throw new ApiError(response.statusCode, apiErrorBodyOf(response.statusCode, text))
    if (text === '') return undefined as T
    try {
      return JSON.parse(text) as T
    } catch {
      throw new ApiError(response.statusCode, {
        code: undefined,
        message: `the gateway answered HTTP ${response.statusCode} with a body that is not JSON`,
        issues: [],
        requestId: undefined,
      })
    }
  }

  /**
   * Streams a 2xx body to a file through `FILE.partial`, renamed at the end, so an interrupted
   * download never leaves a partial file under the final name. `fileFor` picks the file once the
   * answer's headers are in, from the name the server suggests (Content-Disposition), if any.
   */
  async download(path: string, fileFor: (suggested: string | undefined) => string): Promise<{ file: string; bytes: number }> {
    const response = await this.send('GET', path, {})
    if (response.statusCode >= 400) {
      const text = await response.body.text()
      throw new ApiError(response.statusCode, apiErrorBodyOf(response.statusCode, text))
    }
    const file = fileFor(suggestedFileName(response.headers['content-disposition']))
    const partial = `${file}.partial`
    try {
      await pipeline(response.body, createWriteStream(partial))
      const { size } = await stat(partial)
      await rename(partial, file)
      return { file, bytes: size }
    } catch (error) {
      await rm(partial, { force: true })
      throw isHttpFailure(error) ? new UnreachableError(`the download from ${this.displayUrl} broke off: ${reasonOf(error)}`) : error
    }
  }

  async close(): Promise<void> {
    await this.pool.close()
  }

  private async send(method: Method, path: string, options: RequestOptions) {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.credential !== undefined) headers.authorization = `Bearer ${this.credential}`
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    try {
      return await this.pool.request({
        method,
        path: `${this.basePath}${path}${queryString(options.query)}`,
        headers,
        ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
      })
    } catch (error) {
      throw new UnreachableError(`cannot reach the gateway at ${this.displayUrl} (${reasonOf(error)}); is it running? Set --url or TOLLGATE_URL`)
    }
  }
}

/**
 * The file name in `Content-Disposition: attachment; filename="…"`, reduced to a plain name: the
 * server's word must not steer the file into another folder.
 */
export function suggestedFileName(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header
  const quoted = value === undefined ? undefined : /filename="([^"]+)"|filename=([^;\s]+)/.exec(value)
  const name = quoted?.[1] ?? quoted?.[2]
  if (name === undefined) return undefined
  const plain = basename(name.replace(/\\/g, '/')).replace(/[^\w.-]/g, '_')
  return plain === '' || plain === '.' || plain === '..' ? undefined : plain
}

function queryString(query: RequestOptions['query']): string {
  if (query === undefined) return ''
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value))
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}

/** `ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, or the message: never the request itself. */
function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') return code
  const nested = (error as { errors?: unknown[] }).errors?.[0] as { code?: unknown } | undefined
  if (typeof nested?.code === 'string') return nested.code
  return error instanceof Error ? error.message : String(error)
}

function isHttpFailure(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && (code.startsWith('UND_ERR') || code.startsWith('ECONN') || code === 'EPIPE')
}
