/**
 * The demo's clock: real time shifted by an offset the history generator sets, so weeks of
 * traffic can be sent through the real gateway — reservations, budget periods, thresholds and
 * notifications all happen at their simulated instants — and then catch up with the present for
 * the live part.
 */
import type { Clock } from '../../lib/clock.js'

export class DemoClock implements Clock {
  private offsetMs = 0

  nowMs(): number {
    return Date.now() + this.offsetMs
  }

  /** From now on the clock reads `atMs` (to the whole millisecond, as every clock) and runs on from there. */
  travelTo(atMs: number): void {
    this.offsetMs = Math.round(atMs) - Date.now()
  }

  /** Back to real time. */
  present(): void {
    this.offsetMs = 0
  }
}
