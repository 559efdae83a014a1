/**
 * `Idempotency-Key`: a retry with the same key within the window returns the first
 * outcome and is not charged twice. The first request claims the key atomically; a concurrent
 * retry sees `in_progress` (409) instead of racing it to the provider.
 */
export interface StoredResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly bodyBase64: string
}

export type IdempotencyClaim =
  | { readonly kind: 'claimed' }
  | { readonly kind: 'in_progress' }
  | { readonly kind: 'replay'; readonly response: StoredResponse }
  /** Same key, different request body: a client bug, refused with 422. */
  | { readonly kind: 'mismatch' }

export interface IdempotencyStore {
  claim(key: string, requestHash: string, nowMs: number, windowMs: number): Promise<IdempotencyClaim>
  complete(key: string, response: StoredResponse): Promise<void>
  /** Forgets a claim whose request produced nothing worth replaying (refused before dispatch). */
  release(key: string): Promise<void>
}

export const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000
/** Responses above this are not stored for replay; the retry then gets 409 `idempotency_replay_too_large`. */
export const IDEMPOTENCY_BODY_BYTES_MAX = 4 * 1024 * 1024
