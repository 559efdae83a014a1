/**
 * Everything the proxy sends to a client goes through a ResponseSink, which writes to the raw
 * Node response and, when the call carries an Idempotency-Key, keeps a copy (bounded) so a retry
 * can be answered with the first outcome instead of a second charge.
 */
import type { ServerResponse } from 'node:http'
import { IDEMPOTENCY_BODY_BYTES_MAX, type StoredResponse } from '../ledger/index.js'

export class ResponseSink {
  private captured: Buffer[] | undefined
  private capturedBytes = 0
  private status = 0
  private headers: Record<string, string> = {}
  private trailers: Record<string, string> = {}

  constructor(
    readonly raw: ServerResponse,
    capture: boolean,
  ) {
    if (capture) this.captured = []
  }

  private gone: AbortController | undefined
  /** Set when the answer ended early (the provider cut it): never stored for a replay. */
  private incomplete = false

  markIncomplete(): void {
    this.incomplete = true
  }

  /** True once the client hung up before the response ended. */
  get isClientGone(): boolean {
    return this.raw.destroyed && !this.raw.writableFinished
  }

  /** Aborts when the client hangs up before the response ended (made on first use: held requests need it). */
  clientGone(): AbortSignal {
    if (!this.gone) {
      const gone = new AbortController()
      this.gone = gone
      if (this.isClientGone) gone.abort()
      else this.raw.once('close', () => !this.raw.writableFinished && gone.abort())
    }
    return this.gone.signal
  }

  head(status: number, headers: Record<string, string>): void {
    this.status = status
    this.headers = headers
    this.raw.writeHead(status, headers)
  }

  write(chunk: Buffer): boolean {
    this.keep(chunk)
    return this.raw.write(chunk)
  }

  /** Sends a complete response in one write. */
  send(status: number, headers: Record<string, string>, body: Buffer): void {
    headers['content-length'] = String(body.length)
    this.head(status, headers)
    this.keep(body)
    this.raw.end(body)
  }

  sendJson(status: number, headers: Record<string, string>, body: unknown): void {
    headers['content-type'] = 'application/json'
    this.send(status, headers, Buffer.from(JSON.stringify(body)))
  }

  end(trailers?: Record<string, string>): void {
    if (trailers && !this.raw.destroyed) this.raw.addTrailers(trailers)
    if (trailers) this.trailers = trailers
    this.raw.end()
  }

  /**
   * What to store for idempotent replay; undefined when not capturing, the body was too large, or
   * the response was cut (destroyed, never ended): replaying a cut stream would hand the retry a
   * truncated answer that looks whole.
   */
  stored(): StoredResponse | undefined {
    if (this.captured === undefined || !this.isWhole || this.isTooLargeToStore) return undefined
    // A stream's cost arrived as trailers; a replay is one whole body, so they become headers.
    const headers = Object.assign({}, this.headers, this.trailers)
    delete headers['content-length']
    delete headers['trailer']
    return { status: this.status, headers, bodyBase64: Buffer.concat(this.captured).toString('base64') }
  }

  /** A whole response (ended, not cut) whose body is over IDEMPOTENCY_BODY_BYTES_MAX: delivered, but not kept for replay. */
  get isTooLargeToStore(): boolean {
    return this.isWhole && this.capturedBytes > IDEMPOTENCY_BODY_BYTES_MAX
  }

  private get isWhole(): boolean {
    return this.captured !== undefined && !this.incomplete && this.raw.writableEnded
  }

  private keep(chunk: Buffer): void {
    if (!this.captured) return
    this.capturedBytes += chunk.length
    if (this.capturedBytes <= IDEMPOTENCY_BODY_BYTES_MAX) this.captured.push(Buffer.from(chunk))
  }
}
