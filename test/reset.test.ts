import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MessageType, encodeMessage } from '../src/codec/messages.js'
import { engineConfig } from '../src/engine/config.js'
import { GossipEngine } from '../src/engine/engine.js'
import { ClusterState } from '../src/state/cluster-state.js'
import { hlcFromPhysicalMs } from '../src/state/hlc.js'
import { SeededRandom } from '../src/util/random.js'

const NOW = 1_767_225_600_000
const TS = hlcFromPhysicalMs(NOW - 1000)

test('a reset keeps our entry for a key the sender holds even when its newer entry was refused', () => {
  const s = new ClusterState(60_000)
  s.merge({ key: 'k', ts: TS, origin: 'a~1', value: 'v1', expiresAt: undefined }, NOW)
  s.raiseWatermark('a~1', TS)
  // The sender saw our write (watermark >= TS) and holds a newer k that the
  // caller refused (too far ahead): k must stay, not be dropped as "seen and deleted".
  s.reset([], new Map([['a~1', TS]]), new Map(), NOW, 'peer', new Set(['k']))
  assert.equal(s.get('k', NOW)?.value, 'v1')
  // Without the key in the sender's set, the same reset drops it: the sender saw it and let it go.
  s.reset([], new Map([['a~1', TS]]), new Map(), NOW, 'peer', new Set())
  assert.equal(s.get('k', NOW), undefined)
})

test('full-state replies are rate limited per source host and in all, and go only to the requesting member', () => {
  const engine = new GossipEngine(engineConfig({ name: 'n', address: 'sim:0', generation: 1, gossipIntervalMs: 1000 }), new SeededRandom(1), NOW)
  engine.set(NOW, 'k', 'v')
  for (let i = 0; i < 100; i++) engine.addPeer(`p${i}`, `sim:${i}`)
  engine.takeOutbox()
  const request = (from: string, fromAddress: string): Buffer => encodeMessage({ label: '', from, fromAddress, type: MessageType.ResetRequest })
  // Reflection: a request naming another address (a third party, or a member's) gets no stream.
  engine.receive(NOW, 'sim:attacker', request('x', 'sim:victim'), false)
  engine.receive(NOW, 'sim:attacker', request('p1', 'sim:1'), false)
  assert.equal(engine.takeOutbox().filter((o) => o.stream).length, 0, 'no full state to an address that is not the requester')
  assert.equal(engine.stats.dropped('unproven-destination'), 2)
  for (let i = 0; i < 100; i++) engine.receive(NOW + i, 'sim:7', request('p7', 'sim:7'), false)
  assert.equal(engine.takeOutbox().filter((o) => o.stream).length, 1, 'one stream per source per interval')
  for (let i = 0; i < 100; i++) engine.receive(NOW + 200, `sim:${i}`, request(`p${i}`, `sim:${i}`), false)
  assert.equal(engine.takeOutbox().filter((o) => o.stream).length, 3, 'and a few per interval in all')
  assert.ok(engine.stats.dropped('rate-limited') >= 190)
  engine.receive(NOW + 1500, 'sim:7', request('p7', 'sim:7'), false)
  assert.equal(engine.takeOutbox().filter((o) => o.stream).length, 1, 'allowed again in the next interval')
})
