/**
 * Resolves a presented consumer key to its consumer group: config groups plus API-created keys,
 * looked up by hash in a Map (the hot path: one sha256 and one Map lookup per request). API keys
 * are replaced as a whole when the store changes, so a revoked key stops working in every process.
 */
import { userFromKeyOf, type Consumer } from './types.js'
import { hashKey } from './keys.js'

export class ConsumerDirectory {
  private byHash = new Map<string, Consumer>()

  constructor(
    private readonly configured: readonly Consumer[],
    apiKeys: readonly Consumer[] = [],
  ) {
    this.replaceApiKeys(apiKeys)
  }

  /** Adds one API key (created in this process); the next `replaceApiKeys` keeps it if the store has it. */
  add(consumer: Consumer): void {
    this.byHash.set(consumer.apiKeyHash, consumer)
  }

  /** The active API keys as the store lists them now; config groups always stay. */
  replaceApiKeys(apiKeys: readonly Consumer[]): void {
    const next = new Map<string, Consumer>()
    for (const consumer of apiKeys) next.set(consumer.apiKeyHash, consumer)
    // Config groups win over a stored key with the same hash.
    for (const consumer of this.configured) next.set(consumer.apiKeyHash, consumer)
    this.byHash = next
  }

  authenticate(key: string | undefined): Consumer | undefined {
    if (key === undefined) return undefined
    // Found by its hash, the consumer's hash is this one: timing can tell about the hash, never the key.
    return this.byHash.get(hashKey(key))
  }

  /** The user each key name is bound to (`user_id`), for replay: events do not store whether their user was the key's own. */
  boundUsers(): Map<string, string> {
    const bound = new Map<string, string>()
    for (const consumer of this.byHash.values()) {
      if (consumer.userId !== undefined && userFromKeyOf(consumer)) bound.set(consumer.name, consumer.userId)
    }
    return bound
  }

  get size(): number {
    return this.byHash.size
  }
}
