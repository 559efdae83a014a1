/**
 * "A wallet got money": a top-up or an approved ticket's grant in this process wakes the held
 * requests of that org at once (other processes' held requests notice on their next retry).
 */
import { EventEmitter } from 'node:events'

const CLOSING = Symbol('closing')

export class FundsSignal {
  private readonly emitter = new EventEmitter()
  private closing = false

  constructor() {
    this.emitter.setMaxListeners(0)
  }

  /** Call after funds were added to a wallet of `orgId`. */
  added(orgId: string): void {
    this.emitter.emit(orgId)
  }

  /**
   * The process is shutting down: every wait ends now and no new one starts, so held requests are
   * answered (refused, their tickets left open) instead of keeping the server from closing.
   */
  close(): void {
    this.closing = true
    this.emitter.emit(CLOSING)
  }

  get isClosing(): boolean {
    return this.closing
  }

  /** Resolves on the next `added(orgId)`, or after `timeoutMs`, or when `signal` aborts, or on close; listeners are always removed. */
  next(orgId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closing) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.emitter.off(orgId, done)
        this.emitter.off(CLOSING, done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      this.emitter.once(orgId, done)
      this.emitter.once(CLOSING, done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }
}
