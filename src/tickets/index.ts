export * from './types.js'
export * from './ticket-service.js'
