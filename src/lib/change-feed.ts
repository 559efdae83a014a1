/**
 * How a change made in one gateway process reaches the others (budgets, consumer keys): the
 * writer bumps a version per topic in the shared store and reloads its own cache before it
 * answers; every process polls the versions (one tiny read every `pollIntervalMs`) and reloads a
 * topic whose version moved. So a change is enforced by its own process at once and by every
 * other process within one poll interval plus a reload.
 */
export interface ChangeVersionStore {
  bumpVersion(topic: string): Promise<void>
  /** Every topic's current version (topics never bumped are absent). */
  versions(): Promise<ReadonlyMap<string, number>>
}

export interface ChangeFeedOptions {
  readonly pollIntervalMs: number
}

export const CHANGE_FEED_DEFAULTS: ChangeFeedOptions = { pollIntervalMs: 50 }

export class ChangeFeed<Topic extends string> {
  private readonly seen = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private polling: Promise<void> | undefined

  constructor(
    private readonly store: ChangeVersionStore,
    private readonly reloaders: Readonly<Record<Topic, () => Promise<void>>>,
    private readonly onError: (error: unknown, topic: string | undefined) => void,
    private readonly options: ChangeFeedOptions = CHANGE_FEED_DEFAULTS,
  ) {}

  /** After a write of `topic`: tells the other processes, and reloads this one before returning. */
  async announce(topic: Topic): Promise<void> {
    await this.store.bumpVersion(topic)
    await this.reloaders[topic]()
  }

  /** Remembers the current versions (call once the caches are loaded), then polls. */
  async start(): Promise<void> {
    for (const [topic, version] of await this.store.versions()) this.seen.set(topic, version)
    this.timer = setInterval(() => void this.poll(), this.options.pollIntervalMs)
    this.timer.unref()
  }

  /** One poll: reloads every topic whose version moved since the last look. */
  async poll(): Promise<void> {
    if (this.polling) return this.polling
    this.polling = (async () => {
      let versions: ReadonlyMap<string, number>
      try {
        versions = await this.store.versions()
      } catch (error) {
        this.onError(error, undefined)
        return
      }
      for (const [topic, version] of versions) {
        if (this.seen.get(topic) === version || !(topic in this.reloaders)) continue
        try {
          await this.reloaders[topic as Topic]()
          this.seen.set(topic, version)
        } catch (error) {
          this.onError(error, topic)
        }
      }
    })().finally(() => {
      this.polling = undefined
    })
    return this.polling
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.polling
  }
}
