/** Time is injected so that period, expiry and hold logic can be tested without sleeping. */
export interface Clock {
  nowMs(): number
}

export const systemClock: Clock = { nowMs: () => Date.now() }

/** A clock a test moves by hand. */
export class FakeClock implements Clock {
  constructor(private currentMs = Date.UTC(2026, 10, 15, 12, 0, 0)) {}
  nowMs(): number {
    return this.currentMs
  }
  advance(ms: number): void {
    this.currentMs += ms
  }
  set(ms: number): void {
    this.currentMs = ms
  }
}
