import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MessageType, encodeMessage } from '../src/codec/messages.js'
import { applySegments, deltaFor, openingDigestPage } from '../src/engine/reconciliation.js'
import { ClusterState } from '../src/state/cluster-state.js'
import { hlcFromPhysicalMs } from '../src/state/hlc.js'
import { SeededRandom } from '../src/util/random.js'

const NOW = 1_767_225_600_000

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
