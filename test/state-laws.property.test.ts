import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { ClusterState, MergeOutcome } from '../src/state/cluster-state.js'
import { type Entry, compareVersions } from '../src/state/entry.js'
import { HLC_COUNTER_SPACE, HybridLogicalClock, hlcFromPhysicalMs, physicalMsOf } from '../src/state/hlc.js'

const NOW = 1_767_225_600_000
const BASE_TS = hlcFromPhysicalMs(NOW - 10_000)

/** Entries over few keys and origins, so that keys collide and versions compete. */
const entryArb: fc.Arbitrary<Entry> = fc
  .record({
    key: fc.constantFrom('a', 'b', 'c', 'd', 'é', '🍇'),
    tsOffset: fc.integer({ min: 0, max: 40 }),
    origin: fc.constantFrom('n1~1', 'n2~1', 'n3~k2'),
    kind: fc.constantFrom('string', 'bytes', 'tombstone'),
    text: fc.string({ maxLength: 8 }),
    bytes: fc.uint8Array({ maxLength: 8 }),
    // Some expire before NOW (already dead), some after.
    ttl: fc.option(fc.integer({ min: -5_000, max: 5_000 }), { nil: undefined }),
  })
  .map(({ key, tsOffset, origin, kind, text, bytes, ttl }) => ({
    key,
    ts: BASE_TS + tsOffset * HLC_COUNTER_SPACE,
    origin,
    // Equal versions must denote the same write: derive the value from the version.
    value: kind === 'tombstone' ? undefined : kind === 'string' ? `${text}` : bytes,
    expiresAt: ttl === undefined ? undefined : NOW + ttl,
  }))
  .map((e) => normalise(e))

// The generator may produce two different writes with the same version; in a
// real cluster that cannot happen (a version names one write), so the content
// is made a function of the version.
const canonical = new Map<string, Entry>()
function normalise(e: Entry): Entry {
  const id = `${e.key}|${e.ts}|${e.origin}`
  const known = canonical.get(id)
  if (known !== undefined) return known
  canonical.set(id, e)
  return e
}

function stateOf(entries: readonly Entry[]): ClusterState {
  const s = new ClusterState(60_000)
  for (const e of entries) s.merge(e, NOW)
  s.advance(NOW)
  return s
}

function snapshot(s: ClusterState): string {
  const rows = [...s.allEntries()].map((e) => `${e.key}:${e.ts}:${e.origin}`).sort()
  return `${s.stateHash}|${s.syncFingerprint.toHex()}|${rows.join(',')}`
}

describe('merge is a join-semilattice', () => {
  test('commutative: any order of the same deliveries gives the same state', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 30 }), fc.func(fc.integer()), (entries, order) => {
        const shuffled = entries
          .map((e, i) => ({ e, k: order(i) }))
          .sort((a, b) => a.k - b.k)
          .map((x) => x.e)
        assert.equal(snapshot(stateOf(shuffled)), snapshot(stateOf(entries)))
      }),
      { numRuns: 300 },
    )
  })

  test('idempotent: duplicated deliveries change nothing, and a second merge is Stale', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 30 }), (entries) => {
        const once = stateOf(entries)
        const twice = stateOf([...entries, ...entries, ...entries.slice().reverse()])
        assert.equal(snapshot(twice), snapshot(once))
        for (const e of entries) assert.equal(once.merge(e, NOW), MergeOutcome.Stale)
      }),
      { numRuns: 300 },
    )
  })

  test('associative: merging groups separately, then together, equals merging all', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 30 }), fc.array(entryArb, { maxLength: 30 }), fc.array(entryArb, { maxLength: 30 }), (a, b, c) => {
        // (a ⊔ b) ⊔ c, with a ⊔ b formed as a state and then shipped as its entries.
        const ab = [...stateOf([...a, ...b]).allEntries()]
        const bc = [...stateOf([...b, ...c]).allEntries()]
        assert.equal(snapshot(stateOf([...ab, ...c])), snapshot(stateOf([...a, ...bc])))
      }),
      { numRuns: 200 },
    )
  })

  test('the winner of each key is the highest version; stateHash sees only live entries', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 30 }), (entries) => {
        const s = stateOf(entries)
        for (const key of new Set(entries.map((e) => e.key))) {
          const best = entries.filter((e) => e.key === key).reduce((x, y) => (compareVersions(x, y) >= 0 ? x : y))
          const held = s.getEntry(key)
          assert.ok(held !== undefined && compareVersions(held, best) === 0, `key ${key}`)
          const live = best.value !== undefined && (best.expiresAt === undefined || NOW < best.expiresAt)
          assert.equal(s.get(key, NOW) !== undefined, live)
        }
        // Two states with the same live entries but different dead ones share a stateHash.
        const liveOnly = stateOf([...s.allEntries()].filter((e) => s.get(e.key, NOW) !== undefined))
        assert.equal(liveOnly.stateHash, s.stateHash)
      }),
      { numRuns: 300 },
    )
  })

  test('different live data gives different state hashes', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 20 }), entryArb, (entries, extra) => {
        const s = stateOf(entries)
        const t = stateOf([...entries, extra])
        const same = [...s.allEntries()].length === [...t.allEntries()].length && snapshot(s) === snapshot(t)
        const liveChanged = s.get(extra.key, NOW) !== t.get(extra.key, NOW)
        if (liveChanged && !same) assert.notEqual(s.stateHash, t.stateHash)
      }),
      { numRuns: 300 },
    )
  })
})

describe('hybrid logical clock', () => {
  test('timestamps strictly increase whatever the wall clock and remote timestamps do', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ wall: fc.integer({ min: NOW - 100_000, max: NOW + 100_000 }) }),
            fc.record({ remote: fc.integer({ min: BASE_TS - 1e9, max: BASE_TS + 1e9 }) }),
          ),
          { maxLength: 60 },
        ),
        (steps) => {
          const clock = new HybridLogicalClock()
          let last = 0
          let maxSeen = 0
          for (const step of steps) {
            if ('wall' in step) {
              const ts = clock.tick(step.wall)
              assert.ok(ts > last && ts > maxSeen, 'strictly increasing, above everything observed')
              assert.ok(physicalMsOf(ts) >= step.wall, 'never behind the wall clock')
              last = ts
              maxSeen = ts
            } else {
              clock.observe(step.remote)
              maxSeen = Math.max(maxSeen, step.remote)
            }
          }
        },
      ),
    )
  })

  test('physical time round-trips through the packing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8_796_093_022_207 }) /* 2^53 / 1024 - 1 ms: year 2248 */, (ms) => {
        assert.equal(physicalMsOf(hlcFromPhysicalMs(ms)), ms)
        assert.ok(Number.isSafeInteger(hlcFromPhysicalMs(ms) + HLC_COUNTER_SPACE - 1))
      }),
    )
  })
})
