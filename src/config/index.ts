/** The public surface of `config/`: the Config types, the loaders and ConfigError. */
export type * from './types.js'
export { builtInConfig, loadConfigFile, parseConfig, BUILT_IN_SOURCE, type LoadOptions } from './load.js'
export { ConfigError, type ConfigIssue } from './errors.js'
export { hashApiKey } from './normalize-consumers.js'
export { envVarLabel } from './context.js'
export { DEFAULTS, LIMITS } from './defaults.js'
