/**
 * ClusterState.merge is the join of a semilattice over writes: the state
 * reached depends only on the SET of writes delivered, not on their order,
 * their duplication or how they were grouped into intermediate states.
 *
 * Writes are drawn from a small alphabet of keys, timestamps and origins so
 * that keys collide and versions tie on ts (broken by origin). Each version
 * (key, ts, origin) names exactly one write, as in a real cluster: the write
 * table is unique by version, and deliveries are drawn from that table.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { ClusterState, MergeOutcome } from '../src/state/cluster-state.js'
import { type Entry, compareVersions, isLiveAt } from '../src/state/entry.js'
import { hlcFromPhysicalMs } from '../src/state/hlc.js'

/** The fixed time of every merge (2026-01-01T00:00:00Z). */
const NOW = 1_767_225_600_000
/** A retention long enough that nothing is ever collected in these tests. */
const RETENTION_MS = 365 * 24 * 3_600_000
const BASE_TS = hlcFromPhysicalMs(NOW - 60_000)
const KEYS = ['a', 'b', 'c', 'ключ', '🍇'] as const
const ORIGINS = ['a~1', 'b~1', 'a~2', 'b~10', 'b~2'] as const

/**
 * One write. `expiry` picks how expiresAt relates to NOW: 'future' writes
 * expire after NOW, 'mixed' writes may expire before, at or after it.
 */
function writeArb(expiry: 'future' | 'mixed'): fc.Arbitrary<Entry> {
  const offset = expiry === 'future' ? fc.integer({ min: 1, max: 120_000 }) : fc.integer({ min: -120_000, max: 120_000 })
  return fc
    .record({
      key: fc.constantFrom(...KEYS),
      // Small integers times 4096 plus a counter: ts collide across origins.
      small: fc.integer({ min: 0, max: 6 }),
      counter: fc.integer({ min: 0, max: 2 }),
      origin: fc.constantFrom(...ORIGINS),
      value: fc.oneof(
        fc.constant(undefined),
        fc.string({ unit: 'grapheme', maxLength: 6 }),
        fc.uint8Array({ maxLength: 6 }),
      ),
      expiresAt: fc.option(
        offset.map((d) => NOW + d),
        { nil: undefined, freq: 2 },
      ),
      edgeExpiry: fc.boolean(),
    })
    .map(({ key, small, counter, origin, value, expiresAt, edgeExpiry }) => ({
      key,
      ts: BASE_TS + small * 4096 + counter,
      origin,
      value,
      // In the mixed case, sometimes expire exactly at NOW (dead: live means now < expiresAt).
      expiresAt: expiry === 'mixed' && edgeExpiry && expiresAt !== undefined ? NOW : expiresAt,
    }))
}

/** A table of distinct writes (one per version). */
function writesArb(expiry: 'future' | 'mixed'): fc.Arbitrary<Entry[]> {
  return fc.uniqueArray(writeArb(expiry), {
    minLength: 1,
    maxLength: 24,
    selector: (e) => `${e.key}|${e.ts}|${e.origin}`,
  })
}

/**
 * A delivery schedule over a write table: every write at least once, some
 * several times, in an arbitrary order, split into 1..4 groups.
 */
interface Schedule {
  readonly writes: Entry[]
  readonly deliveries: Entry[]
  readonly groups: Entry[][]
}

function scheduleArb(expiry: 'future' | 'mixed'): fc.Arbitrary<Schedule> {
  return writesArb(expiry).chain((writes) =>
    fc
      .record({
        extra: fc.array(fc.nat({ max: writes.length - 1 }), { maxLength: 2 * writes.length }),
        groupCount: fc.integer({ min: 1, max: 4 }),
      })
      .chain(({ extra, groupCount }) => {
        const all = [...writes, ...extra.map((i) => writes[i]!)]
        return fc
          .tuple(
            fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
            fc.array(fc.nat({ max: groupCount - 1 }), { minLength: all.length, maxLength: all.length }),
          )
          .map(([deliveries, groupOf]) => {
            const groups: Entry[][] = Array.from({ length: groupCount }, () => [])
            deliveries.forEach((e, i) => groups[groupOf[i]!]!.push(e))
            return { writes, deliveries, groups }
          })
      }),
  )
}

function stateOf(entries: Iterable<Entry>, nowMs = NOW): ClusterState {
  const s = new ClusterState(RETENTION_MS)
  for (const e of entries) s.merge(e, nowMs)
  return s
}

/** Merges the stored entries of `from` into `into` (state-to-state join). */
function join(into: ClusterState, from: ClusterState): ClusterState {
  for (const e of from.allEntries()) into.merge(e, NOW)
  return into
}

/** Everything observable about a state at NOW. */
function observe(s: ClusterState): object {
  return {
    stateHash: s.stateHash,
    sync: s.syncFingerprint.toHex(),
    size: s.size,
    liveSize: s.liveSize,
    tombstones: s.tombstones,
    entries: KEYS.map((k) => s.getEntry(k)),
    live: KEYS.map((k) => s.get(k, NOW)),
    liveEntries: s.liveEntries(NOW),
  }
}

function assertSameState(actual: ClusterState, expected: ClusterState, what: string): void {
  assert.deepEqual(observe(actual), observe(expected), what)
}

/** The highest version per key, by compareVersions. */
function winners(writes: readonly Entry[]): Map<string, Entry> {
  const best = new Map<string, Entry>()
  for (const e of writes) {
    const cur = best.get(e.key)
    if (cur === undefined || compareVersions(e, cur) > 0) best.set(e.key, e)
  }
  return best
}

for (const expiry of ['future', 'mixed'] as const) {
  const label = expiry === 'future' ? 'all expiries after now' : 'some expiries at or before now'

  describe(`ClusterState.merge is a join-semilattice (${label})`, () => {
    test('commutative and idempotent under delivery: any permutation with any duplication gives the same state', () => {
      fc.assert(
        fc.property(scheduleArb(expiry), ({ writes, deliveries }) => {
          const reference = stateOf(writes)
          assertSameState(stateOf(deliveries), reference, 'shuffled, duplicated deliveries')
          assertSameState(stateOf([...writes].reverse()), reference, 'reversed deliveries')
        }),
        { numRuns: 400 },
      )
    })

    test('associative: groups merged separately, then joined in any nesting, give the same state', () => {
      fc.assert(
        fc.property(scheduleArb(expiry), ({ writes, groups }) => {
          const reference = stateOf(writes)
          const parts = () => groups.map((g) => stateOf(g))
          // ((g0 ⊔ g1) ⊔ g2) ⊔ ...
          const left = parts().reduce((acc, s) => join(acc, s), new ClusterState(RETENTION_MS))
          // g0 ⊔ (g1 ⊔ (g2 ⊔ ...))
          const right = parts().reduceRight((acc, s) => join(s, acc), new ClusterState(RETENTION_MS))
          // Joined into the last group's state directly (no empty start).
          const ps = parts()
          const intoLast = ps.slice(0, -1).reduce((acc, s) => join(acc, s), ps[ps.length - 1]!)
          assertSameState(left, reference, 'left fold')
          assertSameState(right, reference, 'right fold')
          assertSameState(intoLast, reference, 'joined into the last group')
        }),
        { numRuns: 300 },
      )
    })

    test('idempotent: merging the same writes again returns Stale, changes nothing and reports no change', () => {
      fc.assert(
        fc.property(scheduleArb(expiry), ({ writes, deliveries }) => {
          const s = stateOf(writes)
          const before = observe(s)
          s.takeChanges()
          for (const e of deliveries) assert.equal(s.merge(e, NOW), MergeOutcome.Stale, `re-merge of ${e.key}@${e.ts}/${e.origin}`)
          // A structurally equal copy (as decoded from the wire) is the same write, so also Stale.
          for (const e of writes) {
            const copy: Entry = { ...e, value: e.value instanceof Uint8Array ? new Uint8Array(e.value) : e.value }
            assert.equal(s.merge(copy, NOW), MergeOutcome.Stale)
          }
          assert.deepEqual(observe(s), before)
          assert.deepEqual(s.takeChanges(), [])
        }),
        { numRuns: 300 },
      )
    })

    test('the stored entry of each key is the maximum by compareVersions, and liveness follows it', () => {
      fc.assert(
        fc.property(scheduleArb(expiry), ({ writes, deliveries }) => {
          const s = stateOf(deliveries)
          const best = winners(writes)
          for (const key of KEYS) {
            const w = best.get(key)
            assert.equal(s.getEntry(key), w, `winner of ${key}`)
            assert.equal(s.get(key, NOW), w !== undefined && isLiveAt(w, NOW) ? w : undefined, `liveness of ${key}`)
          }
          const live = [...best.values()].filter((e) => isLiveAt(e, NOW))
          assert.equal(s.size, best.size)
          assert.equal(s.liveSize, live.length)
          assert.equal(s.tombstones, best.size - live.length)
          // The fingerprints are functions of the winners alone: a state built
          // from the winners only (no losers ever seen) hashes the same.
          const fromWinners = stateOf(best.values())
          assert.equal(s.stateHash, fromWinners.stateHash)
          assert.equal(s.syncFingerprint.toHex(), fromWinners.syncFingerprint.toHex())
          // ...and the live hash sees only live entries.
          assert.equal(s.stateHash, stateOf(live).stateHash)
        }),
        { numRuns: 400 },
      )
    })

    test('merge times do not matter: merging at earlier times, then advancing to now, equals merging at now', () => {
      fc.assert(
        fc.property(
          scheduleArb(expiry),
          fc.array(fc.integer({ min: -200_000, max: 0 }), { minLength: 1 }),
          ({ writes, deliveries }, offsets) => {
            const s = new ClusterState(RETENTION_MS)
            let t = NOW - 200_000
            deliveries.forEach((e, i) => {
              // Non-decreasing local time, as a real node's.
              t = Math.max(t, NOW + offsets[i % offsets.length]!)
              s.merge(e, t)
            })
            s.advance(NOW)
            assertSameState(s, stateOf(writes), 'merged over time, then advanced')
          },
        ),
        { numRuns: 300 },
      )
    })
  })
}

describe('merge ordering details', () => {
  test('a tie on ts is broken by origin, in both arrival orders', () => {
    const lo: Entry = { key: 'k', ts: BASE_TS, origin: 'b~10', value: 'x', expiresAt: undefined }
    const hi: Entry = { key: 'k', ts: BASE_TS, origin: 'b~2', value: 'y', expiresAt: undefined }
    assert.equal(compareVersions(lo, hi), -1)
    for (const order of [
      [lo, hi],
      [hi, lo],
    ]) {
      const s = new ClusterState(RETENTION_MS)
      const outcomes = order.map((e) => s.merge(e, NOW))
      assert.equal(s.getEntry('k'), hi)
      assert.deepEqual(outcomes, order[0] === lo ? [MergeOutcome.Applied, MergeOutcome.Applied] : [MergeOutcome.Applied, MergeOutcome.Stale])
    }
  })

  test('a tombstone with a higher version hides a live value; an older tombstone does not', () => {
    const live: Entry = { key: 'k', ts: BASE_TS + 4096, origin: 'a~1', value: new Uint8Array([1, 2]), expiresAt: undefined }
    const newer: Entry = { key: 'k', ts: BASE_TS + 8192, origin: 'a~1', value: undefined, expiresAt: undefined }
    const older: Entry = { key: 'k', ts: BASE_TS, origin: 'b~1', value: undefined, expiresAt: undefined }
    const s = stateOf([live, older])
    assert.equal(s.get('k', NOW), live)
    const hashWithLive = s.stateHash
    s.merge(newer, NOW)
    assert.equal(s.get('k', NOW), undefined)
    assert.equal(s.getEntry('k'), newer)
    assert.notEqual(s.stateHash, hashWithLive)
    assert.equal(s.stateHash, new ClusterState(RETENTION_MS).stateHash, 'no live entries: the empty live hash')
  })

  test('a string and bytes value with the same content hash differently', () => {
    const str: Entry = { key: 'k', ts: BASE_TS, origin: 'a~1', value: 'AB', expiresAt: undefined }
    const bytes: Entry = { ...str, value: new Uint8Array([0x41, 0x42]) }
    assert.notEqual(stateOf([str]).stateHash, stateOf([bytes]).stateHash)
    // The version fingerprint identifies the write only: both are the same version.
    assert.equal(stateOf([str]).syncFingerprint.toHex(), stateOf([bytes]).syncFingerprint.toHex())
  })
})
