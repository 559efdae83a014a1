export * from './keys.js'
export * from './types.js'
export * from './consumer-directory.js'
export * from './admin-auth.js'
