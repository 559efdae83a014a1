export * from './micros.js'
