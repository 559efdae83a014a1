/**
 * A deterministic upstream speaking the OpenAI and Anthropic wire formats, for `npm start`, the
 * demo, tests and benchmarks. Plain `node:http` on purpose: benchmarks measure the gateway against
 * it, so the mock must add as little as possible. What it answers is decided in mock-reply.ts.
 *
 * Routes (under /v1): POST chat/completions, responses, embeddings, messages; GET models.
 * OpenAI routes want `Authorization: Bearer KEY`, messages wants `x-api-key: KEY` or a Bearer key
 * (any non-empty key, or exactly `options.apiKey` when set), else 401 in that API's error shape.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { anthropicErrorBody, anthropicModelsBody, messageBody, messageStreamEvents, planMessagesReply } from './mock-anthropic.js'
import {
  chatCompletionBody,
  chatCompletionChunks,
  embeddingsBody,
  modelsBody,
  newResponseParts,
  openaiErrorBody,
  planChatReply,
  planResponsesReply,
  responseBody,
  responseStreamEvents,
  type MockIds,
} from './mock-openai.js'
import { scriptedPlan, type MockReplyPlan, type MockScript } from './mock-reply.js'

export interface RecordedRequest {
  method: string
  /** Path and query, as received (`/v1/chat/completions`). */
  path: string
  /** Lower-cased names, as Node delivers them. */
  headers: IncomingHttpHeaders
  /** The parsed JSON body; undefined when there was none (or it was not JSON). */
  body: unknown
  /** The body's bytes as text, as sent: what a provider's own parser would read. */
  rawBody: string
}

export interface MockUpstreamOptions {
  /** 0 (the default) picks a free port. */
  port?: number
  host?: string
  /** Waited before answering each request. */
  latencyMs?: number
  /** Waited between the SSE events of a stream; 0 sends the whole stream in one write. */
  streamChunkDelayMs?: number
  /** When set, the only key accepted; otherwise any non-empty key is. */
  apiKey?: string
  /** Oldest recorded requests are dropped beyond this, so long benchmarks do not grow memory. */
  requestsRecordedMax?: number
}

/** The next `times` requests (any route) are answered with `status` and `body` as JSON. */
export interface MockFailure {
  status: number
  body: unknown
  times: number
}

export interface MockUpstream {
  /** `http://127.0.0.1:PORT`, without a path: OpenAI base URLs are `${url}/v1`, Anthropic's is `url`. */
  url: string
  close(): Promise<void>
  requests: RecordedRequest[]
  setFailure(failure: MockFailure | undefined): void
  /** The next `script.times` requests follow `script` (chosen usage, no usage, cut, hang). */
  setScript(script: MockScript | undefined): void
}

const requestBodyBytesMax = 32 * 1024 * 1024
const requestsRecordedMaxDefault = 1000

interface MockState {
  readonly options: Required<Pick<MockUpstreamOptions, 'latencyMs' | 'streamChunkDelayMs' | 'requestsRecordedMax'>> & Pick<MockUpstreamOptions, 'apiKey'>
  readonly requests: RecordedRequest[]
  readonly ids: MockIds
  failure: MockFailure | undefined
  script: MockScript | undefined
}

export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  let counter = 0
  const state: MockState = {
    options: {
      latencyMs: options.latencyMs ?? 0,
      streamChunkDelayMs: options.streamChunkDelayMs ?? 0,
      requestsRecordedMax: options.requestsRecordedMax ?? requestsRecordedMaxDefault,
      ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
    },
    requests: [],
    ids: { next: (prefix) => `${prefix}mock${(++counter).toString(36).padStart(6, '0')}` },
    failure: undefined,
    script: undefined,
  }
  const server = createServer((req, res) => {
    handleRequest(state, req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, openaiErrorBody(String(error), 'server_error', null))
      else res.destroy()
    })
  })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // A backlog as large as the gateway's: thousands of streams may connect to it at once.
    server.listen({ port: options.port ?? 0, host, backlog: 4096 }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${urlHost}:${address.port}`,
    requests: state.requests,
    setFailure: (failure) => {
      state.failure = failure === undefined || failure.times <= 0 ? undefined : { ...failure }
    },
    setScript: (script) => {
      state.script = script === undefined || script.times <= 0 ? undefined : { ...script }
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()))
        server.closeAllConnections()
      }),
  }
}

async function handleRequest(state: MockState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const rawBody = await readBody(req)
  if (rawBody === undefined) {
    sendJson(res, 413, openaiErrorBody('Request body too large', 'invalid_request_error', null))
    return
  }
  const body = rawBody.length === 0 ? undefined : parseJsonOrUndefined(rawBody)
  const path = req.url ?? '/'
  record(state, { method: req.method ?? 'GET', path, headers: req.headers, body, rawBody })

  const failure = state.failure
  if (failure !== undefined) {
    failure.times -= 1
    if (failure.times <= 0) state.failure = undefined
    sendJson(res, failure.status, failure.body)
    return
  }
  const script = state.script
  if (script !== undefined) {
    script.times -= 1
    if (script.times <= 0) state.script = undefined
    if (script.hang === true) return
  }
  if (state.options.latencyMs > 0) await sleep(state.options.latencyMs)

  const route = `${req.method ?? 'GET'} ${path.split('?', 1)[0]}`
  if (route === 'POST /v1/messages') return serveMessages(state, req, res, body, rawBody, script)
  if (route === 'GET /v1/models' && req.headers['anthropic-version'] !== undefined) {
    if (!isAuthorizedAnthropic(state, req, res)) return
    sendJson(res, 200, anthropicModelsBody(), anthropicHeaders(state))
    return
  }
  if (!isAuthorizedOpenAI(state, req, res)) return
  switch (route) {
    case 'POST /v1/chat/completions':
      return serveChat(state, res, body, script)
    case 'POST /v1/responses':
      return serveResponses(state, res, body, script)
    case 'POST /v1/embeddings':
      return serveEmbeddings(state, res, body, script)
    case 'GET /v1/models':
      sendJson(res, 200, modelsBody(), openaiHeaders(state))
      return
    default:
      sendJson(res, 404, openaiErrorBody(`Unknown request URL: ${route}.`, 'invalid_request_error', 'unknown_url'))
  }
}

function serveChat(state: MockState, res: ServerResponse, body: unknown, script: MockScript | undefined): void {
  const request = requireOpenAIBody(res, body)
  if (request === undefined) return
  const plan = scriptedPlan(planChatReply(request), script)
  const id = state.ids.next('chatcmpl-')
  const createdS = Math.floor(Date.now() / 1000)
  if (request['stream'] !== true) {
    sendJson(res, 200, chatCompletionBody(plan, id, createdS), openaiHeaders(state), plan.shouldCutBody)
    return
  }
  const streamOptions = request['stream_options']
  const includeUsage = typeof streamOptions === 'object' && streamOptions !== null && (streamOptions as Record<string, unknown>)['include_usage'] === true
  const blocks = chatCompletionChunks(plan, id, createdS, includeUsage).map((data) => `data: ${data}\n\n`)
  blocks.push('data: [DONE]\n\n')
  sendSse(state, res, blocks, plan, openaiHeaders(state), script?.chunkDelayMs)
}

function serveResponses(state: MockState, res: ServerResponse, body: unknown, script: MockScript | undefined): void {
  const request = requireOpenAIBody(res, body)
  if (request === undefined) return
  const plan = scriptedPlan(planResponsesReply(request), script)
  const parts = newResponseParts(plan, request, state.ids, Math.floor(Date.now() / 1000))
  if (request['stream'] !== true) {
    sendJson(res, 200, responseBody(parts), openaiHeaders(state), plan.shouldCutBody)
    return
  }
  const blocks = responseStreamEvents(parts).map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  sendSse(state, res, blocks, plan, openaiHeaders(state), script?.chunkDelayMs)
}

function serveEmbeddings(state: MockState, res: ServerResponse, body: unknown, script: MockScript | undefined): void {
  const request = requireOpenAIBody(res, body)
  if (request === undefined) return
  if (request['input'] === undefined) {
    sendJson(res, 400, openaiErrorBody("'input' is a required property", 'invalid_request_error', null, 'input'))
    return
  }
  const reply = embeddingsBody(request).body
  const inputTokens = script?.usage?.inputTokens
  if (inputTokens !== undefined) reply['usage'] = { prompt_tokens: inputTokens, total_tokens: inputTokens }
  if (script?.omitUsage === true) delete reply['usage']
  sendJson(res, 200, reply, openaiHeaders(state), script?.cut === 'body')
}

function serveMessages(state: MockState, req: IncomingMessage, res: ServerResponse, body: unknown, rawBody: string, script: MockScript | undefined): void {
  if (!isAuthorizedAnthropic(state, req, res)) return
  const headers = anthropicHeaders(state)
  const request = asBody(body)
  const invalid =
    request === undefined
      ? 'The request body is not valid JSON.'
      : typeof request['model'] !== 'string'
        ? 'model: Field required'
        : typeof request['max_tokens'] !== 'number'
          ? 'max_tokens: Field required'
          : !Array.isArray(request['messages'])
            ? 'messages: Field required'
            : undefined
  if (request === undefined || invalid !== undefined) {
    sendJson(res, 400, anthropicErrorBody('invalid_request_error', invalid ?? 'invalid request', headers['request-id']!), headers)
    return
  }
  const plan = scriptedPlan(planMessagesReply(request, rawBody), script)
  const id = state.ids.next('msg_')
  if (request['stream'] !== true) {
    sendJson(res, 200, messageBody(plan, id), headers, plan.shouldCutBody)
    return
  }
  const blocks = messageStreamEvents(plan, id).map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  sendSse(state, res, blocks, plan, headers, script?.chunkDelayMs)
}

function requireOpenAIBody(res: ServerResponse, body: unknown): Record<string, unknown> | undefined {
  const request = asBody(body)
  if (request === undefined) {
    sendJson(res, 400, openaiErrorBody('We could not parse the JSON body of your request.', 'invalid_request_error', null))
    return undefined
  }
  if (typeof request['model'] !== 'string' || request['model'].length === 0) {
    sendJson(res, 400, openaiErrorBody('you must provide a model parameter', 'invalid_request_error', null, 'model'))
    return undefined
  }
  return request
}

/**
 * Writes the SSE blocks: in one write when there is no chunk delay, else one block per delay.
 * A cut reply (mockCutStreamMarker in the prompt) writes the first half, lets it reach the
 * socket, then destroys it: the client sees a connection closed mid-stream, with no `[DONE]`.
 */
function sendSse(
  state: MockState,
  res: ServerResponse,
  blocks: string[],
  plan: MockReplyPlan,
  headers: Record<string, string>,
  chunkDelayMs = state.options.streamChunkDelayMs,
): void {
  res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
  const sendCount = plan.shouldCutStream ? Math.floor(blocks.length / 2) : blocks.length
  const finish = (): void => {
    if (plan.shouldCutStream) res.destroy()
    else res.end()
  }
  const delayMs = chunkDelayMs
  if (delayMs <= 0) {
    res.write(blocks.slice(0, sendCount).join(''), finish)
    return
  }
  res.flushHeaders()
  let index = 0
  let isClosed = false
  res.once('close', () => {
    isClosed = true
  })
  const writeNext = (): void => {
    if (isClosed) return
    if (index >= sendCount) {
      finish()
      return
    }
    res.write(blocks[index]!)
    index += 1
    setTimeout(writeNext, delayMs)
  }
  writeNext()
}

function isAuthorizedOpenAI(state: MockState, req: IncomingMessage, res: ServerResponse): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
  const key = match?.[1]
  if (key === undefined) {
    const message =
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
    sendJson(res, 401, openaiErrorBody(message, 'invalid_request_error', null), openaiHeaders(state))
    return false
  }
  if (state.options.apiKey !== undefined && key !== state.options.apiKey) {
    const message = `Incorrect API key provided: ${redactKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`
    sendJson(res, 401, openaiErrorBody(message, 'invalid_request_error', 'invalid_api_key'), openaiHeaders(state))
    return false
  }
  return true
}

function isAuthorizedAnthropic(state: MockState, req: IncomingMessage, res: ServerResponse): boolean {
  // Current @anthropic-ai/sdk versions send the API key as `Authorization: Bearer`; older ones
  // and most other clients send `x-api-key`. The Messages API accepts both.
  const header = req.headers['x-api-key']
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1]
  const key = typeof header === 'string' && header.trim().length > 0 ? header.trim() : (bearer ?? '')
  const message =
    key.length === 0 ? 'x-api-key header is required' : state.options.apiKey !== undefined && key !== state.options.apiKey ? 'invalid x-api-key' : undefined
  if (message === undefined) return true
  const headers = anthropicHeaders(state)
  sendJson(res, 401, anthropicErrorBody('authentication_error', message, headers['request-id']!), headers)
  return false
}

function redactKey(key: string): string {
  return key.length <= 8 ? '***' : `${key.slice(0, 3)}***${key.slice(-4)}`
}

function openaiHeaders(state: MockState): Record<string, string> {
  return { 'x-request-id': state.ids.next('req_') }
}

function anthropicHeaders(state: MockState): Record<string, string> {
  return { 'request-id': state.ids.next('req_') }
}

/** `cut`: the status, the headers and half the body, then the socket closes (an upstream dying mid-reply). */
function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, cut = false): void {
  const text = JSON.stringify(body) ?? 'null'
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  })
  if (!cut) {
    res.end(text)
    return
  }
  res.write(text.slice(0, Math.floor(text.length / 2)), () => res.destroy())
}

function record(state: MockState, request: RecordedRequest): void {
  const max = state.options.requestsRecordedMax
  if (max <= 0) return
  if (state.requests.length >= max) state.requests.splice(0, state.requests.length - max + 1)
  state.requests.push(request)
}

/** Undefined when the body exceeds requestBodyBytesMax. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length
    if (bytes > requestBodyBytesMax) return undefined
    chunks.push(chunk)
  }
  return chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function asBody(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
