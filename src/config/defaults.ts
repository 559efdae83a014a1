/**
 * Every default the loader applies, in one place (Fastify's `defaultInitOptions`), and the limits
 * the schema enforces. A key missing from the YAML takes the value written here; nothing else in
 * `config/` invents a default.
 */
import { deepFreeze } from './freeze.js'

export const DEFAULTS = {
  /** Configs may omit `version`; the only version there is. */
  version: '1',
  server: {
    /** Loopback: a gateway holding provider keys should not face the network until told to. */
    host: '127.0.0.1',
    port: 4100,
    /** Large enough for long chat histories and base64 images; bounded so one body cannot exhaust memory. */
    bodyLimitBytes: 4 * 1024 * 1024,
    /**
     * Connections the kernel holds for accept(): Node's 511 dropped connects when a few thousand
     * clients opened at once (the kernel caps it at net.core.somaxconn).
     */
    listenBacklog: 4096,
  },
  storage: {
    /** Embedded store used when `storage` is absent (`npm start` works with nothing installed). */
    sqlitePath: './data/tollgate.db',
  },
  target: {
    /** Long generations (reasoning models, big outputs) can legitimately take minutes. */
    timeoutMs: 600_000,
    /**
     * Open connections to one target's origin at most. LLM streams hold a connection for their
     * whole length (seconds to minutes), so this bounds concurrent calls per target and process:
     * high enough that 2,000+ concurrent streams never wait for a free connection.
     */
    connectionsMax: 8_192,
    /** OpenAI's own default for a project: `auto` is served at the standard tier unless the project says otherwise. */
    serviceTierDefault: 'default',
    /** Each follows its official SDK's convention: OpenAI's includes `/v1`, Anthropic's does not. */
    baseUrl: {
      openai: 'https://api.openai.com/v1',
      anthropic: 'https://api.anthropic.com',
    },
    /** The variable each official SDK reads; used when an openai/anthropic target has no `secret_key_ref`. */
    secretEnv: {
      openai: 'OPENAI_API_KEY',
      anthropic: 'ANTHROPIC_API_KEY',
    },
  },
  /**
   * When `providers` is absent (a config may hold only consumer groups and cost tracking) the targets
   * are the built-in ones: `openai` / `anthropic` when their key variable is set, otherwise `mock`.
   */
  builtInTargetIds: {
    openai: 'openai',
    anthropic: 'anthropic',
    mock: 'mock',
  },
  consumerGroup: {
    orgId: 'default',
    environment: 'prod',
    onInsufficientFunds: 'refuse',
    holdTimeoutMs: 30_000,
    failMode: 'closed',
    /** USD a consumer in fail-open mode may spend while the counter store is unreachable. */
    emergencyAllowanceUsd: 0,
    /** Calls may name an end user for attribution; the user's wallet and budgets must belong to the key's team. */
    allowNamedUsers: true,
  },
  costTracking: {
    enabled: true,
    /** Wallets are opt-in: a fresh install meters spend without refusing anything. */
    walletEnforcement: false,
    budgetAlerts: [],
  },
  budget: {
    timezone: 'UTC',
    /** Default 50/80/95. */
    alertThresholds: [50, 80, 95],
    hardLimit: false,
    shadow: false,
    categories: [],
  },
  notificationDelivery: {
    /** Attempts per (notification, channel), the first included; then the item is dead. */
    attemptsMax: 8,
    /** Capped exponential back-off with jitter: 5 s, 10 s, 20 s … at most 15 min between attempts. */
    backoffBaseMs: 5_000,
    backoffCapMs: 900_000,
    /** How often each process looks for due deliveries. */
    pollIntervalMs: 1_000,
  },
  reservations: {
    /** Not shorter than any target's timeout (the loader checks), so a live request is never expired under itself. */
    ttlMs: 600_000,
    sweepIntervalMs: 5_000,
    /**
     * Output cap for a request that sets none, when neither the config, the published limits nor
     * the catalogue know the model's maximum (a model priced only by a `models:` override).
     */
    defaultOutputTokens: 4096,
    tokenizerMaxBytes: 65_536,
  },
  exports: {
    /**
     * How long a process holds an export job without reporting progress. A process that dies is
     * replaced on the job after this; progress is reported about every second.
     */
    leaseMs: 30_000,
    /** A completed export's file is deleted this long after it was written (and the job shows `expired`). */
    retentionHours: 24,
    /** Queued + running export jobs per org: a token holder cannot queue the disk full. */
    jobsPendingMax: 10,
    /** Of those, a team-confined token's team may hold this many, so one team cannot take every place. */
    teamJobsPendingMax: 3,
    /**
     * Completed exports of one team still kept (not yet expired) before a team-confined token may
     * start another: files are kept for the retention, so without it a team could fill the disk.
     */
    teamFilesKeptMax: 20,
    /**
     * Bytes of one team's kept export files plus the file its running export writes. A GiB holds
     * months of a busy team's events (a few hundred bytes a row), while twenty teams at their quota
     * still fit an ordinary disk.
     */
    teamBytesKeptMax: 1024 ** 3,
    /**
     * Free space the exports folder's disk must keep: below it a job fails rather than filling the
     * disk the gateway's own database may share. Small, so a CI machine short of space still exports.
     */
    diskFreeMinBytes: 256 * 1024 ** 2,
  },
} as const

/** Bounds the schema enforces; each is named with its unit. */
export const LIMITS = {
  configFileBytesMax: 1024 * 1024,
  portMax: 65_535,
  bodyLimitBytesMin: 1024,
  bodyLimitBytesMax: 100 * 1024 * 1024,
  listenBacklogMin: 1,
  listenBacklogMax: 65_535,
  timeoutMsMin: 1_000,
  timeoutMsMax: 3_600_000,
  connectionsMaxMin: 1,
  connectionsMaxMax: 65_536,
  holdTimeoutMsMax: 300_000,
  thresholdPercentMin: 1,
  thresholdPercentMax: 1000,
  deliveryAttemptsMax: 50,
  deliveryBackoffMsMin: 10,
  deliveryBackoffMsMax: 86_400_000,
  deliveryPollMsMin: 10,
  deliveryPollMsMax: 60_000,
  reservationTtlMsMin: 1_000,
  reservationTtlMsMax: 86_400_000,
  sweepIntervalMsMin: 100,
  sweepIntervalMsMax: 3_600_000,
  exportLeaseMsMin: 1_000,
  exportLeaseMsMax: 3_600_000,
  exportRetentionHoursMin: 1,
  /** A year. */
  exportRetentionHoursMax: 8_760,
  exportJobsPendingMax: 1_000,
  /** A pebibyte: past any disk, inside safe integers. */
  exportBytesMax: 1024 ** 5,
  outputTokensMax: 10_000_000,
  /** Far above any real price; keeps µ$/Mtok products inside safe integers. */
  priceUsdPerMtokMax: 1_000_000,
  /** $1 a call: as µ$ per million calls a tool fee then stays inside the bound of a per-token price. */
  priceUsdPerKcallMax: 1_000,
  tokenizerMaxBytesMax: 64 * 1024 * 1024,
  /** Alias expansion cap for YAML anchors: stops a "billion laughs" file from eating memory. */
  yamlAliasCountMax: 100,
} as const

deepFreeze(DEFAULTS)
deepFreeze(LIMITS)
