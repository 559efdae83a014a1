export * from './types.js'
export * from './usage-store.js'
export * from './usage-recorder.js'
