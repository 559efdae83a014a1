/**
 * undici (upstream calls, webhooks), loaded at the first use or just after the server listens
 * rather than at start-up, where it was a sixth of the module loading (lib/lazy-require.ts).
 */
import { lazyRequire } from './lazy-require.js'

export const undici = lazyRequire<typeof import('undici')>('undici')
