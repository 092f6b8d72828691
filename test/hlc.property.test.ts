import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { HLC_COUNTER_SPACE, HLC_MAX, HybridLogicalClock, hlcFromPhysicalMs, physicalMsOf } from '../src/state/hlc.js'

/** The last millisecond whose packed timestamps (all counters) stay below 2^53 (year 2248). */
const MAX_PHYSICAL_MS = Math.floor((Number.MAX_SAFE_INTEGER + 1) / HLC_COUNTER_SPACE) - 1
const NOW = 1_767_225_600_000

type Step = { readonly wall: number } | { readonly remote: number }

/** The last millisecond a wall clock can tick in while staying below the clock's ceiling. */
const MAX_WALL_MS = physicalMsOf(HLC_MAX) - 1

/**
 * Wall readings around NOW that jump forwards and backwards (NTP steps, VM
 * pauses), sometimes repeat exactly, and sometimes carry a fraction; remote
 * timestamps around the same range, ahead of and behind our clock.
 */
function stepsArb(lo: number, hi: number): fc.Arbitrary<Step[]> {
  const ms = fc.integer({ min: lo, max: hi })
  const mid = Math.floor((lo + hi) / 2)
  return fc.array(
    fc.oneof(
      { weight: 4, arbitrary: ms.map((wall) => ({ wall })) },
      { weight: 1, arbitrary: fc.constant({ wall: mid }) },
      { weight: 1, arbitrary: fc.double({ min: mid - 10, max: mid + 10, noNaN: true }).map((wall) => ({ wall })) },
      {
        weight: 2,
        arbitrary: fc.tuple(ms, fc.integer({ min: 0, max: HLC_COUNTER_SPACE - 1 })).map(([m, c]) => ({ remote: hlcFromPhysicalMs(m) + c })),
      },
    ),
    { maxLength: 80 },
  )
}

describe('HybridLogicalClock', () => {
  for (const [range, lo, hi] of [
    ['around now', NOW - 120_000, NOW + 120_000],
    ['anywhere up to the ceiling, year 2248', 0, MAX_WALL_MS - 100],
  ] as const) {
  test(`tick strictly increases, stays above every observed timestamp and never falls behind the wall clock (${range})`, () => {
    fc.assert(
      fc.property(stepsArb(lo, hi), (steps) => {
        const clock = new HybridLogicalClock()
        let lastTick = 0
        let maxObserved = 0
        for (const step of steps) {
          if ('remote' in step) {
            assert.ok(step.remote <= HLC_MAX, 'the generator stays below the ceiling')
            clock.observe(step.remote)
            maxObserved = Math.max(maxObserved, step.remote)
            assert.ok(clock.latest >= step.remote, 'latest covers the observed timestamp')
            continue
          }
          const ts = clock.tick(step.wall)
          assert.ok(Number.isSafeInteger(ts), `tick ${ts} is a safe integer`)
          assert.ok(ts > lastTick, `tick ${ts} after ${lastTick}`)
          assert.ok(ts > maxObserved, `tick ${ts} after observed ${maxObserved}`)
          assert.ok(physicalMsOf(ts) >= Math.floor(step.wall), 'never behind the wall clock')
          assert.equal(clock.latest, ts)
          // No more run-ahead than needed: the wall reading when it is ahead,
          // else one counter step past everything seen so far.
          assert.equal(ts, Math.max(hlcFromPhysicalMs(Math.floor(step.wall)), Math.max(lastTick, maxObserved) + 1))
          lastTick = ts
        }
      }),
      { numRuns: 1000 },
    )
  })
  }

  test('more ticks than the counter space within one millisecond borrow from the next millisecond', () => {
    const clock = new HybridLogicalClock()
    const first = clock.tick(NOW)
    let ts = first
    for (let i = 1; i <= HLC_COUNTER_SPACE + 5; i++) {
      const next = clock.tick(NOW)
      assert.equal(next, ts + 1)
      ts = next
    }
    assert.equal(physicalMsOf(ts), NOW + 1)
    // The wall clock catching up does not go back.
    assert.ok(clock.tick(NOW + 1) > ts)
    assert.equal(clock.tick(NOW + 2), hlcFromPhysicalMs(NOW + 2))
  })

  test('a wall clock stepping far back keeps the clock moving forward by counter steps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), fc.integer({ min: 1, max: 50 }), (back, n) => {
        const clock = new HybridLogicalClock()
        const high = clock.tick(NOW)
        for (let i = 1; i <= n; i++) assert.equal(clock.tick(NOW - back), high + i)
      }),
    )
  })

  test('physicalMsOf inverts hlcFromPhysicalMs, for every counter value, up to year 2248', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: MAX_PHYSICAL_MS }), fc.constantFrom(0, 1, NOW, MAX_PHYSICAL_MS)),
        fc.integer({ min: 0, max: HLC_COUNTER_SPACE - 1 }),
        (ms, counter) => {
          const packed = hlcFromPhysicalMs(ms)
          assert.equal(physicalMsOf(packed), ms)
          assert.ok(Number.isSafeInteger(packed + counter))
          assert.equal(physicalMsOf(packed + counter), ms)
          assert.equal(packed % HLC_COUNTER_SPACE, 0)
        },
      ),
      { numRuns: 2000 },
    )
  })

  test('remote timestamps above HLC_MAX are ignored, so ticks stay distinct safe integers whatever is observed', () => {
    const anyRemote = fc.oneof(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: HLC_MAX - 8, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: hlcFromPhysicalMs(NOW - 1000), max: hlcFromPhysicalMs(NOW + 1000) }),
    )
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.integer({ min: NOW - 1000, max: NOW + 1000 }).map((wall) => ({ wall })),
      anyRemote.map((remote) => ({ remote })),
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const clock = new HybridLogicalClock()
        let lastTick = 0
        let maxAbsorbed = 0
        for (const s of steps) {
          if ('remote' in s) {
            const before = clock.latest
            clock.observe(s.remote)
            if (s.remote <= HLC_MAX) maxAbsorbed = Math.max(maxAbsorbed, s.remote)
            else assert.equal(clock.latest, before, `${s.remote} above the ceiling is ignored`)
            continue
          }
          const ts = clock.tick(s.wall)
          assert.ok(Number.isSafeInteger(ts) && ts > lastTick && ts > maxAbsorbed, `tick ${ts} after ${lastTick} / ${maxAbsorbed}`)
          lastTick = ts
        }
      }),
      { numRuns: 1000 },
    )
    // At the ceiling itself there is room for 2^20 exact ticks.
    const clock = new HybridLogicalClock()
    clock.observe(HLC_MAX)
    let last = HLC_MAX
    for (let i = 0; i < 1000; i++) {
      const ts = clock.tick(NOW)
      assert.ok(Number.isSafeInteger(ts) && ts === last + 1)
      last = ts
    }
  })
})
