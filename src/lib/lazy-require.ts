/**
 * A CommonJS package loaded on first use instead of at start-up. Start-up is mostly module
 * loading; a package that only some requests need (the tokenizer, the HTTP client for upstream
 * calls and webhooks) is left for later, and warmed in the background just after the server
 * listens (server.ts), so the first request that needs it usually finds it ready. A request that
 * comes sooner loads it itself, synchronously, once.
 *
 * `require`, not `import()`: callers use the package synchronously, mid-request. The ESM
 * `import` of the same CommonJS package shares this module instance.
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export interface LazyModule<T> {
  /** The package, loaded now if it was not yet (blocks the event loop for the load, once). */
  get(): T
  readonly loaded: boolean
}

export function lazyRequire<T>(id: string): LazyModule<T> {
  let module: T | undefined
  return {
    get: () => (module ??= require(id) as T),
    get loaded() {
      return module !== undefined
    },
  }
}
