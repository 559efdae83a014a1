export { EVENTS_PER_REQUEST_MAX, EventPayload, INGEST_STATUSES, parseEvent, type EventProblem, type IngestStatus } from './payload.js'
export { Ingestor, attributionOf, priceOf, usageOf, type IngestDeps, type IngestProblem, type IngestResult } from './ingestor.js'
export { ingestRoutes, type IngestRouteDeps } from './routes.js'
