/**
 * "A wallet got money": a top-up or an approved ticket's grant in this process wakes the held
 * requests of that org at once (other processes' held requests notice on their next retry).
 */
import { EventEmitter } from 'node:events'

export class FundsSignal {
  private readonly emitter = new EventEmitter()

  constructor() {
    this.emitter.setMaxListeners(0)
  }

  /** Call after funds were added to a wallet of `orgId`. */
  added(orgId: string): void {
    this.emitter.emit(orgId)
  }

  /** Resolves on the next `added(orgId)`, or after `timeoutMs`, or when `signal` aborts; listeners are always removed. */
  next(orgId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.emitter.off(orgId, done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      this.emitter.once(orgId, done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }
}
