export * from './types.js'
export * from './ledger-store.js'
export * from './idempotency.js'
export * from './expiry-sweeper.js'
