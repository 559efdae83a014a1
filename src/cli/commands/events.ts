/**
 * `tollgate events send FILE.ndjson`: ingest usage events recorded elsewhere (POST /v1/events,
 * with a consumer key). The file is read twice: first to check that every line is a JSON object
 * (a bad file sends nothing, exit 2) and to count them, then to send them in batches of 1,000.
 * Each batch answers per event (created, duplicate, rejected); rejected events are reported by
 * their line number, and any rejection makes the exit code 1. Sending the same file again is
 * safe: events already accepted come back as duplicates.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import { contextOf, withSharedOptions } from '../context.js'
import { CliError, EXIT_REFUSED, UsageError } from '../errors.js'
import { plural, startProgress } from '../output.js'

/** Events per POST /v1/events: the route's batch size. */
export const EVENTS_PER_BATCH = 1000
/** Rejections kept for the report; past this they are counted only (a file of millions must not fill memory). */
const REJECTIONS_KEPT_MAX = 10_000
/** Rejections listed in the table-mode report; `--json` lists every kept one. */
const REJECTIONS_SHOWN_MAX = 50

export interface EventResult {
  readonly index: number
  readonly status: 'created' | 'duplicate' | 'rejected'
  readonly id?: string
  readonly error?: { readonly code: string; readonly message: string; readonly field?: string }
}

export interface EventBatchAnswer {
  readonly results: readonly EventResult[]
  readonly created: number
  readonly duplicates: number
  readonly rejected: number
}

export interface Rejection {
  readonly line: number
  readonly code: string
  readonly message: string
  readonly field: string | null
}

export interface SendSummary {
  readonly file: string
  readonly events: number
  readonly created: number
  readonly duplicates: number
  readonly rejected: number
  readonly rejections: Rejection[]
}

class RejectedEventsError extends CliError {
  readonly exitCode = EXIT_REFUSED
}

export function registerEventCommands(program: Command): void {
  const events = program.command('events').description('Usage events recorded outside the gateway')

  withSharedOptions(events.command('send').argument('<file>', 'NDJSON file: one event (a JSON object) per line'), { token: false })
    .description('Send usage events to the gateway in batches of 1,000 (with a consumer key)')
    .option('--key <key>', 'consumer key the events are ingested with (env TOLLGATE_KEY)')
    .action(async (file: string, flags: { key?: string }, command: Command) => {
      const ctx = contextOf(command)
      const client = ctx.consumer(flags.key)
      const total = await countEvents(file)
      if (total === 0) throw new UsageError(`${file}: no events in it (one JSON object per line)`)

      const summary: SendSummary = { file, events: total, created: 0, duplicates: 0, rejected: 0, rejections: [] }
      const progress = startProgress('events', total)
      let sent = 0
      try {
        for await (const batch of batchesOf(file, EVENTS_PER_BATCH)) {
          const answer = await client.json<EventBatchAnswer>('POST', '/v1/events', { body: { events: batch.events } })
          addAnswer(summary, answer, batch.lines)
          sent += batch.events.length
          progress.update(sent, `${sent}/${total} events`)
        }
      } catch (error) {
        progress.stop()
        if (sent > 0)
          ctx.output.say(
            `Stopped after ${sent} of ${plural(total, 'event')} (${summary.created} created, ${plural(summary.duplicates, 'duplicate')}, ${summary.rejected} rejected). Sending the file again is safe: accepted events come back as duplicates.`,
          )
        throw error
      }
      progress.stop()
      ctx.output.result(summary, () => renderSummary(summary))
      if (summary.rejected > 0) {
        const lines = summary.rejections.slice(0, 10).map((r) => r.line)
        throw new RejectedEventsError(
          `${summary.rejected} of ${plural(total, 'event')} ${summary.rejected === 1 ? 'was' : 'were'} rejected (line${lines.length > 1 ? 's' : ''} ${lines.join(', ')}${summary.rejected > lines.length ? ', …' : ''})`,
        )
      }
    })
}

/** Counts the events in `file`, refusing (UsageError) a line that is not a JSON object, by its number. */
export async function countEvents(file: string): Promise<number> {
  await readable(file)
  let count = 0
  for await (const { line, text } of linesOf(file)) {
    if (text.trim() === '') continue
    parseEvent(file, line, text)
    count++
  }
  return count
}

interface Batch {
  readonly events: unknown[]
  /** The file line of each event, in order (1-based). */
  readonly lines: number[]
}

async function* batchesOf(file: string, size: number): AsyncGenerator<Batch> {
  let batch: Batch = { events: [], lines: [] }
  for await (const { line, text } of linesOf(file)) {
    if (text.trim() === '') continue
    batch.events.push(parseEvent(file, line, text))
    batch.lines.push(line)
    if (batch.events.length === size) {
      yield batch
      batch = { events: [], lines: [] }
    }
  }
  if (batch.events.length > 0) yield batch
}

/** Adds one batch's answer to the summary; `lines[i]` is the file line of the batch's event `i`. */
export function addAnswer(summary: SendSummary, answer: EventBatchAnswer, lines: readonly number[]): void {
  const mutable = summary as { created: number; duplicates: number; rejected: number }
  for (const result of answer.results) {
    if (result.status === 'created') mutable.created++
    else if (result.status === 'duplicate') mutable.duplicates++
    else {
      mutable.rejected++
      if (summary.rejections.length < REJECTIONS_KEPT_MAX) {
        summary.rejections.push({
          line: lines[result.index] ?? -1,
          code: result.error?.code ?? 'rejected',
          message: result.error?.message ?? 'rejected',
          field: result.error?.field ?? null,
        })
      }
    }
  }
}

export function renderSummary(summary: SendSummary): string {
  const lines = [
    `Sent ${plural(summary.events, 'event')} from ${summary.file}: ${summary.created} created, ${plural(summary.duplicates, 'duplicate')}, ${summary.rejected} rejected`,
  ]
  if (summary.rejections.length > 0) {
    lines.push('Rejected:')
    for (const r of summary.rejections.slice(0, REJECTIONS_SHOWN_MAX)) {
      lines.push(`  line ${r.line}: ${r.code}${r.field === null ? '' : ` (${r.field})`}: ${r.message}`)
    }
    const more = summary.rejected - Math.min(summary.rejections.length, REJECTIONS_SHOWN_MAX)
    if (more > 0) lines.push(`  … and ${more} more (--json lists them)`)
  }
  return lines.join('\n')
}

async function readable(file: string): Promise<void> {
  try {
    const info = await stat(file)
    if (!info.isFile()) throw new UsageError(`${file}: not a file`)
  } catch (error) {
    if (error instanceof UsageError) throw error
    throw new UsageError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

async function* linesOf(file: string): AsyncGenerator<{ line: number; text: string }> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY })
  let line = 0
  for await (const text of lines) {
    line++
    yield { line, text }
  }
}

function parseEvent(file: string, line: number, text: string): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`${file}:${line}: not valid JSON (${(error as Error).message}); nothing was sent`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UsageError(`${file}:${line}: expected a JSON object (one event per line); nothing was sent`)
  return value
}
