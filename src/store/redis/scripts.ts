/**
 * Runs the Lua scripts: EVALSHA, loading the script with EVAL when Redis does not know it yet.
 *
 * The scripts are the hot path of this store (two per enforced call), so they do not go through
 * ioredis's generic command path. That path, with auto-pipelining, builds each command as a
 * string of many small concatenations, copies it into a pipeline string, and flattens and
 * encodes it again on the socket; it also makes a pipeline command and two promises per script.
 * Here a script call is encoded once into one Buffer (outside V8's heap, so the young-generation
 * collector never copies it) and handed to ioredis as a ready command: ioredis still owns the
 * connection, the reply queue, the command timeout and the reply parsing. Scripts sent in one
 * event-loop turn still leave in one write: the socket is corked for the rest of the turn.
 */
import { Command, type Redis } from 'ioredis'
import type { LuaScript } from './lua.js'

export type Reply = unknown[]

export class ScriptRunner {
  /** Every command sent to Redis by the ledger is counted here (benchmarks report it per request). */
  roundTrips = 0
  private corked = false

  constructor(private readonly redis: Redis) {}

  async eval(lua: LuaScript, keys: readonly string[], args: readonly string[]): Promise<Reply> {
    this.roundTrips++
    try {
      return (await this.send(new EncodedCommand('evalsha', ['EVALSHA', lua.sha, String(keys.length), ...keys, ...args]))) as Reply
    } catch (error) {
      // After a Redis restart the script cache is empty: send the source once.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      this.roundTrips++
      return (await this.redis.eval(lua.lua, keys.length, ...keys, ...args)) as Reply
    }
  }

  private send(command: EncodedCommand): Promise<unknown> {
    // Corked only while connected: a command refused for want of a connection writes nothing.
    if (!this.corked && this.redis.status === 'ready') {
      const stream = this.redis.stream
      stream.cork()
      this.corked = true
      setImmediate(() => {
        this.corked = false
        stream.uncork()
      })
    }
    void this.redis.sendCommand(command)
    return command.promise
  }
}

/** A command whose wire form (RESP: an array of bulk strings) is built once, into one Buffer. */
class EncodedCommand extends Command {
  private readonly wire: Buffer

  constructor(name: string, parts: readonly string[]) {
    super(name, [], { replyEncoding: 'utf8' })
    this.wire = encodeRespArray(parts)
  }

  override toWritable(): Buffer {
    return this.wire
  }
}

const CR = 13
const LF = 10
const DOLLAR = 36
const STAR = 42

/** `*<n>\r\n` then `$<bytes>\r\n<part>\r\n` for each part. */
export function encodeRespArray(parts: readonly string[]): Buffer {
  const lengths = new Array<number>(parts.length)
  let size = 1 + digits(parts.length) + 2
  for (let i = 0; i < parts.length; i++) {
    const length = Buffer.byteLength(parts[i]!, 'utf8')
    lengths[i] = length
    size += 1 + digits(length) + 2 + length + 2
  }
  const buffer = Buffer.allocUnsafe(size)
  buffer[0] = STAR
  let at = writeDigits(buffer, 1, parts.length)
  buffer[at++] = CR
  buffer[at++] = LF
  for (let i = 0; i < parts.length; i++) {
    buffer[at++] = DOLLAR
    at = writeDigits(buffer, at, lengths[i]!)
    buffer[at++] = CR
    buffer[at++] = LF
    at += buffer.write(parts[i]!, at, lengths[i]!, 'utf8')
    buffer[at++] = CR
    buffer[at++] = LF
  }
  return buffer
}

function digits(n: number): number {
  let count = 1
  while (n >= 10) {
    n = Math.floor(n / 10)
    count++
  }
  return count
}

function writeDigits(buffer: Buffer, at: number, n: number): number {
  const end = at + digits(n)
  for (let i = end - 1; i >= at; i--) {
    buffer[i] = 48 + (n % 10)
    n = Math.floor(n / 10)
  }
  return end
}

/** A Redis connection or timeout error, as opposed to a script's own error reply. */
export function isUnavailable(error: unknown): boolean {
  return !(error instanceof Error && error.name === 'ReplyError')
}
