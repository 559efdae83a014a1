/**
 * Resolves a presented consumer key to its consumer group: config groups plus API-created keys,
 * looked up by hash in a Map (the hot path: one sha256 and one Map lookup per request).
 */
import type { Consumer } from './types.js'
import { hashKey, sameHash } from './keys.js'

export class ConsumerDirectory {
  private readonly byHash = new Map<string, Consumer>()

  constructor(consumers: readonly Consumer[]) {
    for (const consumer of consumers) this.add(consumer)
  }

  add(consumer: Consumer): void {
    this.byHash.set(consumer.apiKeyHash, consumer)
  }

  authenticate(key: string | undefined): Consumer | undefined {
    if (key === undefined) return undefined
    const hash = hashKey(key)
    const consumer = this.byHash.get(hash)
    return consumer && sameHash(consumer.apiKeyHash, hash) ? consumer : undefined
  }

  get size(): number {
    return this.byHash.size
  }
}
