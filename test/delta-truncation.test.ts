import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_LIMITS } from '../src/codec/limits.js'
import { MessageType, decodeMessage, encodeMessage } from '../src/codec/messages.js'
import { applySegments, deltaFor, digestPage, openingDigestPage } from '../src/engine/reconciliation.js'
import { ClusterState } from '../src/state/cluster-state.js'
import { hlcFromPhysicalMs } from '../src/state/hlc.js'
import { SeededRandom } from '../src/util/random.js'

const NOW = 1_767_225_600_000

/** A state written by several origins: overwrites across origins, tombstones, TTLs, values up to 80 bytes. */
function sourceState(): ClusterState {
  const s = new ClusterState(3_600_000)
  const r = new SeededRandom(7)
  let ts = hlcFromPhysicalMs(NOW - 60_000)
  const wm = new Map<string, number>()
  for (let i = 0; i < 300; i++) {
    const origin = `node-${i % 7}~1`
    ts += 1 + Math.floor(r.next() * 50)
    const key = `key-${Math.floor(r.next() * 120)}`
    const roll = r.next()
    const value = roll < 0.15 ? undefined : roll < 0.3 ? new Uint8Array(Math.floor(r.next() * 80)) : 'v'.repeat(Math.floor(r.next() * 80))
    const expiresAt = roll > 0.9 ? NOW + 60_000 : undefined
    s.merge({ key, ts, origin, value, expiresAt }, NOW)
    wm.set(origin, ts)
  }
  for (const [o, t] of wm) s.raiseWatermark(o, t)
  return s
}

test('a delta cut at any budget is a valid prefix: repeated exchanges converge', () => {
  const source = sourceState()
  const header = { label: '', from: 'src', fromAddress: 'sim:0' }
  const headerBytes = encodeMessage({ ...header, type: MessageType.Delta, segments: [] }).length
  for (let budget = 120; budget <= 3000; budget += 7) {
    const target = new ClusterState(3_600_000)
    const random = new SeededRandom(budget)
    let rounds = 0
    while (!target.syncFingerprint.equals(source.syncFingerprint.hi, source.syncFingerprint.lo)) {
      assert.ok(++rounds < 2000, `no convergence at budget ${budget}`)
      const page = digestPage(target, '', undefined, 1 << 20)
      const delta = deltaFor(source, page, budget, random)
      const bytes = encodeMessage({ ...header, type: MessageType.Delta, segments: delta.segments })
      assert.ok(bytes.length <= budget + headerBytes, `budget ${budget}: message of ${bytes.length} bytes`)
      const decoded = decodeMessage(bytes, DEFAULT_LIMITS, DEFAULT_LIMITS.maxStreamBytes)
      assert.equal(decoded.type, MessageType.Delta)
      if (decoded.type !== MessageType.Delta) return
      const result = applySegments(target, decoded.segments, NOW, Number.MAX_SAFE_INTEGER, () => false, () => {})
      assert.equal(result.refused, 0)
    }
    assert.equal(target.stateHash, source.stateHash, `budget ${budget}`)
    for (const o of source.origins()) assert.equal(target.watermark(o), source.watermark(o), `watermark of ${o} at budget ${budget}`)
  }
})

test('the receiver never claims a watermark beyond what it was sent', () => {
  const source = sourceState()
  const target = new ClusterState(3_600_000)
  const page = digestPage(target, '', undefined, 1 << 20)
  const delta = deltaFor(source, page, 400, new SeededRandom(1))
  assert.ok(delta.truncated)
  applySegments(target, delta.segments, NOW, Number.MAX_SAFE_INTEGER, () => false, () => {})
  for (const seg of delta.segments) {
    const last = seg.entries[seg.entries.length - 1]?.ts ?? 0
    // Every entry of the origin up to the new watermark is held or superseded.
    for (const e of source.entriesAfter(seg.origin, 0)) {
      if (e.ts > target.watermark(seg.origin)) break
      const held = target.getEntry(e.key)
      assert.ok(held !== undefined && held.ts >= e.ts, `${seg.origin} claims ${e.key}@${e.ts} (last sent ${last})`)
    }
  }
})

test('digest pages wrap around the name circle: with many origins, every origin is reconciled', () => {
  // Both know 400 origins (too many for one digest page); the source holds a newer write of each.
  const source = new ClusterState(3_600_000)
  const target = new ClusterState(3_600_000)
  const ts = hlcFromPhysicalMs(NOW - 1000)
  const origins = 400
  for (let i = 0; i < origins; i++) {
    const origin = `node-${String(i).padStart(4, '0')}~1`
    for (const s of [source, target]) {
      s.merge({ key: `key-${i}`, ts: ts + i, origin, value: 'v1', expiresAt: undefined }, NOW)
      s.raiseWatermark(origin, ts + i)
    }
    source.merge({ key: `key-${i}`, ts: ts + 1000 + i, origin, value: 'v2', expiresAt: undefined }, NOW)
    source.raiseWatermark(origin, ts + 1000 + i)
  }
  const random = new SeededRandom(3)
  const budget = 1400 - 40
  let rounds = 0
  while (!target.syncFingerprint.equals(source.syncFingerprint.hi, source.syncFingerprint.lo)) {
    rounds++
    // As in the exchange: the responder (target) opens with a page; the initiator (source) answers its range.
    const page = openingDigestPage(target, budget, random)
    assert.ok(encodeMessage({ label: '', from: 't', fromAddress: '', type: MessageType.Digest, page }).length <= 1400)
    const delta = deltaFor(source, page, budget, random)
    applySegments(target, delta.segments, NOW, Number.MAX_SAFE_INTEGER, () => false, () => {})
    assert.ok(rounds < 100, `not converged after ${rounds} rounds`)
  }
  // Pages hold ~60 rows and 400 origins need at least 7 pages; random windows that wrap need a few more.
  assert.ok(rounds >= 7)
})
