/**
 * Hybrid logical clock (Kulkarni et al., 2014) packed into one JavaScript
 * number: `physicalMs * 2^10 + counter`. Wall-clock milliseconds up to the
 * year 2248 times 1024 stay below 2^53, so timestamps compare and encode as
 * exact integers. More than 1024 events in one millisecond borrow from the
 * next millisecond, so the clock runs ahead only under that load.
 *
 * Invariant: `last` never decreases. A wall clock that steps back makes the
 * counter advance instead; a remote timestamp ahead of us is absorbed on
 * receipt (after the caller has checked it against the drift bound).
 */
export const HLC_COUNTER_SPACE = 1024

/** The highest timestamp a clock absorbs: room for 2^20 more ticks below 2^53. */
export const HLC_MAX = Number.MAX_SAFE_INTEGER - 2 ** 20

export function physicalMsOf(ts: number): number {
  return Math.floor(ts / HLC_COUNTER_SPACE)
}

export function hlcFromPhysicalMs(ms: number): number {
  return ms * HLC_COUNTER_SPACE
}

export class HybridLogicalClock {
  private last = 0

  /** A new timestamp for a local event, strictly greater than any before. */
  tick(wallMs: number): number {
    const physical = hlcFromPhysicalMs(Math.floor(wallMs))
    this.last = physical > this.last ? physical : this.last + 1
    return this.last
  }

  /**
   * Absorbs a timestamp seen from another node, so later local ones exceed
   * it. Timestamps above `HLC_MAX` are ignored: absorbing them would leave no
   * room for later ticks to stay exact integers (the engine refuses them
   * long before, as too far in the future).
   */
  observe(remoteTs: number): void {
    if (remoteTs > this.last && remoteTs <= HLC_MAX) this.last = remoteTs
  }

  get latest(): number {
    return this.last
  }
}
