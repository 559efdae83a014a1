/**
 * Reading a proxied call's body: bounded, valid UTF-8, JSON, and not nested absurdly deep — so
 * hostile-but-valid input is a clear 4xx before anything is reserved. A body over the limit is
 * still read to its end (and thrown away, up to a bound) before the 413 goes out: a client
 * sending without pause then receives the answer instead of a reset connection.
 */
import { isUtf8 } from 'node:buffer'
import type { IncomingMessage } from 'node:http'

/** JSON nesting deeper than this is refused: no LLM request needs it, and walking it costs stack. */
export const JSON_DEPTH_MAX = 64

/** An over-limit body is read and discarded up to this multiple of the limit before the connection is cut. */
const DISCARD_FACTOR = 8

export type BodyError = { readonly status: 400 | 413; readonly code: 'invalid_json' | 'invalid_request' | 'body_too_large'; readonly message: string }

export type BodyResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: BodyError }

/** Reads the whole body (at most `limitBytes`), then checks and parses it. */
export function readJsonBody(stream: IncomingMessage, limitBytes: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let bytes = 0
    let tooLarge = false
    const declared = Number(stream.headers['content-length'])
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > limitBytes) {
        tooLarge = true
        chunks.length = 0
        // Past the discard bound the client is not sending a request any more: cut it.
        if (bytes > limitBytes * DISCARD_FACTOR) stream.destroy()
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      if (tooLarge || (Number.isFinite(declared) && declared > limitBytes)) {
        resolve({ ok: false, error: { status: 413, code: 'body_too_large', message: `The request body is larger than ${limitBytes} bytes.` } })
        return
      }
      resolve(parseJsonBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    }
    const onError = () => {
      cleanup()
      resolve({ ok: false, error: { status: 400, code: 'invalid_request', message: 'The request body could not be read.' } })
    }
    const cleanup = () => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onError)
    }
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', onError)
  })
}

export function parseJsonBody(body: Buffer): BodyResult {
  if (!isUtf8(body)) return { ok: false, error: { status: 400, code: 'invalid_request', message: 'The request body is not valid UTF-8.' } }
  if (nestingExceeds(body, JSON_DEPTH_MAX)) {
    return { ok: false, error: { status: 400, code: 'invalid_request', message: `The request body nests JSON deeper than ${JSON_DEPTH_MAX} levels.` } }
  }
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) }
  } catch {
    return { ok: false, error: { status: 400, code: 'invalid_json', message: 'The request body is not valid JSON.' } }
  }
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d

/** True when brackets outside strings nest deeper than `limit` (one pass over the bytes, no allocation). */
export function nestingExceeds(body: Buffer, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!
    if (inString) {
      if (byte === BACKSLASH) i++
      else if (byte === QUOTE) inString = false
      continue
    }
    if (byte === QUOTE) inString = true
    else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > limit) return true
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) depth--
  }
  return false
}
