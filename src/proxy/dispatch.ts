/**
 * Sends one call upstream and relays the answer byte for byte. It measures (usage from the body
 * or the stream) but never prices or reserves: when the outcome is known it calls `resolve`,
 * which makes the call's cost durable (settle or void, and the usage event) and returns the cost
 * headers; only then do the last bytes (or the trailer) go out.
 */
import type { Dispatcher } from 'undici'
import type { Usage, UsageSource } from '../providers/index.js'
import { SseParser, createStreamUsageTracker, usageFromBody } from '../providers/index.js'
import type { ProxyCall, RoutedModel } from './call.js'
import type { ResponseSink } from './response-sink.js'
import type { UpstreamPools } from './upstream.js'
import { H, forwardedUpstreamHeaders } from './headers.js'
import { errorBody } from './refusal.js'

export type DispatchKind = 'ok' | 'upstream_error' | 'cut' | 'unreachable'

/** What dispatch learned; `resolve` turns it into money. */
export interface Measured {
  readonly kind: DispatchKind
  readonly status: number
  /** Undefined: nothing was produced (void). */
  readonly usage: Usage | undefined
  readonly usageSource: UsageSource
  readonly modelServed: string | undefined
}

export interface DispatchInput {
  readonly call: ProxyCall
  readonly routed: RoutedModel
  readonly upstreamBody: Record<string, unknown>
  /** The client did not ask for stream usage: drop the usage-only chunk Tollgate asked for. */
  readonly dropInjectedUsage: boolean
  /** Scale of the tokenizer's count of delivered text (100 for o200k models). */
  readonly countScalePercent: number
  /** Counted lazily: only a stream cut before its usage arrived needs it. */
  readonly promptTokensEstimate: () => Promise<number>
  readonly sink: ResponseSink
  /** Headers known before dispatch: request id, reserved cost, wallet, capped/degraded notes. */
  readonly headers: Record<string, string>
  readonly pools: UpstreamPools
  readonly upstream: { origin: string; path: string; headers: Record<string, string> }
  /**
   * Called exactly once, as soon as the outcome is known: commits the cost (settle or void, and
   * the usage event) and resolves to the cost headers. Dispatch awaits it before the answer ends.
   */
  readonly resolve: (measured: Measured) => Promise<Record<string, string>>
  /** Relay failures that are not a plain hang-up are logged here. */
  readonly onRelayError: (error: unknown) => void
}

const COST_TRAILERS = `${H.cost}, ${H.walletRemaining}, ${H.usageSource}, ${H.streamOutcome}`

export async function dispatch(input: DispatchInput): Promise<Measured> {
  const { call, sink } = input
  let response: Dispatcher.ResponseData
  try {
    response = await input.pools.get(input.routed.target, input.upstream.origin).request({
      method: 'POST',
      path: input.upstream.path,
      headers: input.upstream.headers,
      // Serialised from what was parsed and priced, never the client's bytes: a body with a key twice
      // (`"model"`, `"max_tokens"`) reads as its last value here, and a provider whose parser kept
      // the first would serve another model or cap than the one reserved for.
      body: JSON.stringify(input.upstreamBody),
    })
  } catch (error) {
    // A timeout may have been reached after the provider started working: it is a `cut` (charged
    // its worst case, flagged); a refused connection spent nothing and is voided.
    const timedOut = isTimeout(error)
    const measured: Measured = {
      kind: timedOut ? 'cut' : 'unreachable',
      status: timedOut ? 504 : 502,
      usage: undefined,
      usageSource: 'none',
      modelServed: undefined,
    }
    const costHeaders = await input.resolve(measured)
    const message = timedOut
      ? `Upstream ${input.routed.target.id} did not answer within ${input.routed.target.timeoutMs} ms.`
      : `Upstream ${input.routed.target.id} could not be reached: ${(error as Error).message}`
    const code = timedOut ? 'upstream_timeout' : 'upstream_unreachable'
    sink.sendJson(
      measured.status,
      Object.assign({}, input.headers, costHeaders),
      errorBody(call.flavor, { status: measured.status, code, message }, call.requestId),
    )
    return measured
  }

  // A new object, this call's own: the relays add to it in place. Header objects are merged with
  // Object.assign, never a second object spread (`{ ...a, ...b }`): V8 copies the second spread
  // through a slow path, about 4 µs per spread for these objects (measured on Node 20).
  const upstreamHeaders = forwardedUpstreamHeaders(response.headers)
  const isEventStream = String(response.headers['content-type'] ?? '').startsWith('text/event-stream')
  if (response.statusCode >= 400 || !call.isStream || !isEventStream) {
    return relayWhole(input, response, upstreamHeaders)
  }
  return relayStream(input, response, upstreamHeaders)
}

/**
 * The whole body, by 'data' events: an async iterator over the stream cost a promise per chunk
 * and a round of listener set-up per call, a measurable part of a small response's relay.
 * undici's own `body.bytes()` does the same but copies even a lone chunk; in `--ab` runs it was
 * never the cheaper (1.02–1.25× CPU per call, three runs), so this stays.
 */
function readAll(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let ended = false
    body.on('data', (chunk: Buffer) => chunks.push(chunk))
    body.once('end', () => {
      ended = true
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
    })
    body.once('error', reject)
    // Destroyed without an error (for-await raised a premature close then): still a cut body.
    body.once('close', () => ended || reject(new Error('The upstream body closed before its end.')))
  })
}

async function relayWhole(input: DispatchInput, response: Dispatcher.ResponseData, upstreamHeaders: Record<string, string>): Promise<Measured> {
  let body: Buffer
  try {
    body = await readAll(response.body)
  } catch (error) {
    // The upstream hung up (or timed out) mid-body after its status: nothing usable reached the
    // client, but the provider has worked and bills it, so it is a cut call (charged its worst case).
    const timedOut = isTimeout(error)
    if (!timedOut) input.onRelayError(error)
    const status = timedOut ? 504 : 502
    const measured: Measured = {
      kind: response.statusCode >= 400 ? 'upstream_error' : 'cut',
      status,
      usage: undefined,
      usageSource: 'none',
      modelServed: undefined,
    }
    const costHeaders = await input.resolve(measured)
    const message = timedOut
      ? `Upstream ${input.routed.target.id} stopped sending within ${input.routed.target.timeoutMs} ms.`
      : `Upstream ${input.routed.target.id} closed the connection mid-response.`
    const code = timedOut ? 'upstream_timeout' : 'upstream_unreachable'
    input.sink.sendJson(status, Object.assign({}, input.headers, costHeaders), errorBody(input.call.flavor, { status, code, message }, input.call.requestId))
    return measured
  }
  let measured: Measured
  if (response.statusCode >= 400) {
    // Upstream errors pass through unchanged; the call spent nothing, so it is voided.
    measured = { kind: 'upstream_error', status: response.statusCode, usage: undefined, usageSource: 'none', modelServed: undefined }
  } else {
    const found = usageFromBody(input.call.endpoint, parseJson(body))
    measured = {
      kind: 'ok',
      status: response.statusCode,
      usage: found?.usage,
      usageSource: found ? 'reported' : 'none',
      modelServed: found?.model,
    }
  }
  const costHeaders = await input.resolve(measured)
  input.sink.send(response.statusCode, Object.assign(upstreamHeaders, input.headers, costHeaders), body)
  return measured
}

async function relayStream(input: DispatchInput, response: Dispatcher.ResponseData, upstreamHeaders: Record<string, string>): Promise<Measured> {
  const { sink } = input
  const tracker = createStreamUsageTracker(input.call.endpoint, input.countScalePercent)!
  upstreamHeaders['cache-control'] = 'no-cache'
  sink.head(response.statusCode, Object.assign(upstreamHeaders, input.headers, { trailer: COST_TRAILERS }))
  // Events parsed from one upstream chunk are written to the client in one write: one chunked
  // frame per upstream read, as a plain pass-through proxy would, instead of one per event.
  const outgoing: Buffer[] = []
  const parser = new SseParser((eventName, data, raw) => {
    tracker.onEvent(eventName, data)
    if (input.dropInjectedUsage && data.length > 0 && tracker.isInjectedUsageChunk(data)) return
    outgoing.push(raw)
  })
  const flush = () => {
    if (outgoing.length === 0) return
    sink.write(outgoing.length === 1 ? outgoing[0]! : joined(outgoing))
    outgoing.length = 0
  }
  // A client that hangs up stops the upstream too: the provider stops generating, and the call
  // is settled for what was delivered.
  const onClientGone = () => {
    if (!sink.raw.writableFinished) response.body.destroy()
  }
  sink.raw.on('close', onClientGone)
  // The client may have hung up while the upstream had not answered yet: stop it now.
  if (sink.isClientGone) onClientGone()
  let complete = false
  try {
    for await (const chunk of response.body) {
      parser.push(chunk as Buffer)
      flush()
      if (sink.raw.writableNeedDrain && !sink.isClientGone) await drainOrClose(sink)
    }
    parser.end()
    flush()
    complete = true
  } catch (error) {
    complete = false
    // A client hanging up destroys the upstream body on purpose; anything else is worth a log line.
    if (!sink.isClientGone) input.onRelayError(error)
  } finally {
    sink.raw.off('close', onClientGone)
  }
  // Usage not reported (cut, or an upstream that ignored the ask): the input is counted, never 0.
  if (!tracker.hasReportedUsage()) {
    tracker.setPromptTokensEstimate(await input.promptTokensEstimate())
    await tracker.countDelivered()
  }
  const counted = tracker.usage()
  const measured: Measured = {
    kind: complete && !sink.isClientGone ? 'ok' : 'cut',
    status: response.statusCode,
    usage: counted.source === 'none' ? undefined : counted.usage,
    usageSource: counted.source,
    modelServed: counted.model,
  }
  const costHeaders = await input.resolve(measured)
  if (measured.kind === 'ok') {
    sink.end(Object.assign({}, costHeaders, { [H.streamOutcome]: 'complete' }))
  } else if (!sink.isClientGone) {
    // Cut by the provider with the client still there: it gets an error event (its SDK raises
    // rather than mistake the part for a whole answer), then the cost of what was billed.
    sink.markIncomplete()
    sink.write(streamErrorEvent(input.call.flavor, input.call.requestId))
    sink.end(Object.assign({}, costHeaders, { [H.streamOutcome]: 'cut' }))
  }
  return measured
}

/**
 * The events' bytes as one buffer. Usually they lie end to end in the chunk just read (nothing was
 * dropped or carried over from the previous read): then a view of it, not a copy.
 */
function joined(parts: readonly Buffer[]): Buffer {
  const first = parts[0]!
  let end = first.byteOffset + first.length
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!
    if (part.buffer !== first.buffer || part.byteOffset !== end) return Buffer.concat(parts)
    end += part.length
  }
  return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset)
}

/** The SSE error event each API's clients raise on, in that API's envelope. */
function streamErrorEvent(flavor: 'openai' | 'anthropic', requestId: string): Buffer {
  const error = { status: 502, code: 'upstream_unreachable' as const, message: 'The provider ended the stream before it was complete.' }
  const body = JSON.stringify(errorBody(flavor, error, requestId))
  return Buffer.from(flavor === 'anthropic' ? `event: error\ndata: ${body}\n\n` : `data: ${body}\n\n`)
}

/** undici's headers/body timeouts (the target's `timeout_ms`). */
function isTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
}

/**
 * Resolves on whichever comes first, and takes both listeners off then: a long stream to a slow
 * client waits here many times, and a listener left behind on each wait would pile up until the
 * response closed.
 */
function drainOrClose(sink: ResponseSink): Promise<void> {
  const raw = sink.raw
  return new Promise((resolve) => {
    const done = () => {
      raw.off('drain', done)
      raw.off('close', done)
      resolve()
    }
    raw.on('drain', done)
    raw.on('close', done)
  })
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
}
