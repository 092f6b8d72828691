import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { compareVersions } from '../src/state/entry.js'
import type { Simulation } from '../src/sim/simulation.js'
import { simulate, timeUntilAll } from './helpers/sim.js'

const SECOND = 1000

function assertConverged(sim: Simulation, within: number): void {
  const took = sim.runUntilTrue(() => sim.converged(), within, 100)
  const hashes = sim.liveNodes().map((n) => `${n.name}=${n.engine.stateHash(sim.clockOf(n))}`)
  assert.notEqual(took, undefined, `live nodes did not converge within ${within} ms: ${hashes.slice(0, 12).join(' ')}`)
}

describe('simulated clusters (seeded, replayable)', () => {
  test('seed scenario: five nodes joining through a seed share state, an update and a delete', (t) => {
    simulate(t.name, 1, { engine: { tombstoneRetentionMs: 5 * SECOND } }, (sim) => {
      const nodes = [sim.addNode({ name: 'node1' })]
      for (let i = 2; i <= 5; i++) nodes.push(sim.addNode({ name: `node${i}` }))
      const node1 = nodes[0]!
      sim.set(node1, 'service_version', 'v1.2.0')
      sim.set(node1, 'config_hash', 'abcdef123')
      assert.notEqual(timeUntilAll(sim, 'config_hash', 'abcdef123', 20 * SECOND), undefined, 'initial state did not spread')
      sim.set(node1, 'service_version', 'v1.3.0')
      assert.notEqual(timeUntilAll(sim, 'service_version', 'v1.3.0', 10 * SECOND), undefined, 'update did not spread')
      sim.delete(nodes[3]!, 'config_hash')
      assert.notEqual(timeUntilAll(sim, 'config_hash', undefined, 10 * SECOND), undefined, 'delete did not spread')
      assert.ok(nodes.every((n) => n.engine.state.tombstones === 1), 'each node holds the tombstone')
      sim.runFor(8 * SECOND)
      assert.ok(nodes.every((n) => n.engine.state.tombstones === 0), 'tombstones collected after the retention')
      assertConverged(sim, 5 * SECOND)
      // Every node learned of every other through gossip (only node1 was a seed).
      for (const n of nodes) assert.equal(n.engine.membership.livePeers, 4, `${n.name} knows ${n.engine.membership.livePeers} live peers`)
    })
  })

  test('one update reaches 1,000 nodes by anti-entropy alone within 10 rounds', (t) => {
    simulate(t.name, 2, { engine: { eagerPush: false } }, (sim) => {
      const nodes = sim.addCluster(1000)
      sim.runFor(3 * SECOND)
      sim.set(nodes[17]!, 'service_version', 'v1.3.0')
      const took = timeUntilAll(sim, 'service_version', 'v1.3.0', 30 * SECOND, 100)
      assert.notEqual(took, undefined, 'update never reached every node')
      assert.ok(took! <= 10 * SECOND, `took ${took} ms`)
    })
  })

  test('30% message loss: updates still reach everyone and the cluster converges', (t) => {
    simulate(t.name, 3, {}, (sim) => {
      const nodes = sim.addCluster(60)
      sim.network.faults.loss = 0.3
      sim.network.faults.duplicate = 0.05
      sim.network.faults.maxLatencyMs = 20
      for (let i = 0; i < 20; i++) sim.set(nodes[i * 3]!, `key${i}`, `value${i}`)
      assertConverged(sim, 30 * SECOND)
      for (const n of nodes) assert.equal(n.engine.entries(sim.clockOf(n)).length, 20, `${n.name} holds all keys`)
      assert.ok(sim.network.lost > 0, 'loss was injected')
    })
  })

  test('a partition heals and both sides converge, keeping the writes of both', (t) => {
    simulate(t.name, 4, {}, (sim) => {
      const nodes = sim.addCluster(20)
      sim.runFor(2 * SECOND)
      sim.network.partition((i) => (i < 10 ? 0 : 1), nodes.length)
      sim.set(nodes[0]!, 'left', 'L')
      sim.set(nodes[15]!, 'right', 'R')
      sim.runFor(10 * SECOND)
      assert.equal(nodes[15]!.engine.get(sim.now, 'left'), undefined, 'partition holds')
      assert.equal(nodes[0]!.engine.get(sim.now, 'right'), undefined, 'partition holds')
      sim.network.heal()
      assertConverged(sim, 15 * SECOND)
      for (const n of nodes) {
        assert.equal(n.engine.get(sim.now, 'left')?.value, 'L')
        assert.equal(n.engine.get(sim.now, 'right')?.value, 'R')
      }
    })
  })

  test('concurrent writes of one key converge to the single highest version everywhere', (t) => {
    simulate(t.name, 5, {}, (sim) => {
      const nodes = sim.addCluster(30)
      sim.runFor(SECOND)
      sim.network.faults.maxLatencyMs = 50
      const versions = [3, 11, 19, 27].map((i) => ({ v: sim.set(nodes[i]!, 'leader', `node-${i}`), value: `node-${i}` }))
      const winner = versions.reduce((a, b) => (compareVersions(a.v, b.v) >= 0 ? a : b))
      assertConverged(sim, 15 * SECOND)
      for (const n of nodes) {
        const e = n.engine.get(sim.now, 'leader')
        assert.equal(e?.value, winner.value)
        assert.equal(e?.ts, winner.v.ts)
      }
    })
  })

  test('a delete during a partition is not undone when the partition heals', (t) => {
    simulate(t.name, 6, { engine: { tombstoneRetentionMs: 60 * SECOND } }, (sim) => {
      const nodes = sim.addCluster(20)
      sim.set(nodes[0]!, 'doomed', 'alive')
      assertConverged(sim, 10 * SECOND)
      sim.network.partition((i) => (i < 10 ? 0 : 1), nodes.length)
      sim.delete(nodes[2]!, 'doomed')
      sim.runFor(10 * SECOND)
      assert.equal(nodes[12]!.engine.get(sim.now, 'doomed')?.value, 'alive', 'the other side still has it')
      sim.network.heal()
      assertConverged(sim, 15 * SECOND)
      for (const n of nodes) assert.equal(n.engine.get(sim.now, 'doomed'), undefined, `${n.name} resurrected the key`)
    })
  })

  test('a node absent longer than the tombstone retention rejoins without resurrecting deleted keys', (t) => {
    simulate(t.name, 7, { engine: { tombstoneRetentionMs: 5 * SECOND } }, (sim) => {
      const nodes = sim.addCluster(10)
      for (let i = 0; i < 5; i++) sim.set(nodes[i]!, `k${i}`, `v${i}`)
      assertConverged(sim, 10 * SECOND)
      const away = nodes[9]!
      sim.crash(away) // frozen with its state: it still holds k0..k4
      sim.delete(nodes[1]!, 'k1')
      sim.delete(nodes[2]!, 'k3')
      sim.set(nodes[3]!, 'k4', 'v4-new')
      sim.runFor(20 * SECOND) // tombstones spread and are collected everywhere else
      assert.ok(
        nodes.slice(0, 9).every((n) => n.engine.state.tombstones === 0),
        'tombstones collected before the node returns',
      )
      sim.resume(away)
      assertConverged(sim, 20 * SECOND)
      for (const n of nodes) {
        assert.equal(n.engine.get(sim.now, 'k1'), undefined, `${n.name} resurrected k1`)
        assert.equal(n.engine.get(sim.now, 'k3'), undefined, `${n.name} resurrected k3`)
        assert.equal(n.engine.get(sim.now, 'k4')?.value, 'v4-new')
        assert.equal(n.engine.get(sim.now, 'k0')?.value, 'v0')
      }
      assert.ok(nodes.some((n) => n.engine.stats.resetsSent > 0), 'the returning node was reset by a full transfer')
    })
  })

  test('TTL: every node drops the key at the same instant, its expiry', (t) => {
    simulate(t.name, 8, {}, (sim) => {
      const nodes = sim.addCluster(10)
      sim.runFor(SECOND)
      sim.set(nodes[0]!, 'session', 'token', { ttlMs: 10 * SECOND })
      const expiresAt = nodes[0]!.engine.get(sim.now, 'session')!.expiresAt!
      assert.notEqual(timeUntilAll(sim, 'session', 'token', 5 * SECOND), undefined)
      const expiredAt = new Map<string, number>()
      sim.onChange = (n, c, now) => {
        if (c.key === 'session' && c.value === undefined) expiredAt.set(n.name, now)
      }
      sim.runUntil(expiresAt - 1)
      for (const n of nodes) assert.equal(n.engine.get(sim.now, 'session')?.value, 'token', 'still live just before')
      sim.runUntil(expiresAt)
      for (const n of nodes) assert.equal(n.engine.get(sim.now, 'session'), undefined, 'gone at the expiry instant')
      assert.equal(expiredAt.size, nodes.length)
      for (const [name, at] of expiredAt) assert.equal(at, expiresAt, `${name} reported expiry at ${at}`)
      assertConverged(sim, 5 * SECOND)
    })
  })

  test('a version from a clock far ahead is refused and counted', (t) => {
    simulate(t.name, 9, { engine: { maxClockDriftMs: 60 * SECOND } }, (sim) => {
      const nodes = sim.addCluster(5)
      sim.runFor(SECOND)
      const broken = nodes[4]!
      broken.clockOffsetMs = 10 * 60 * SECOND // ten minutes ahead
      sim.set(broken, 'pinned', 'forever')
      sim.set(nodes[0]!, 'normal', 'ok')
      sim.runFor(10 * SECOND)
      for (const n of nodes.slice(0, 4)) {
        assert.equal(n.engine.get(sim.now, 'pinned'), undefined, `${n.name} accepted a version 10 min ahead`)
        assert.equal(n.engine.get(sim.now, 'normal')?.value, 'ok')
      }
      const refused = nodes.slice(0, 4).reduce((s, n) => s + n.engine.stats.dropped('clock-drift'), 0)
      assert.ok(refused > 0, 'refusals are counted')
      // A small skew within the bound is accepted.
      const skewed = nodes[3]!
      skewed.clockOffsetMs = 5 * SECOND
      sim.set(skewed, 'slightly-ahead', 'fine')
      assert.notEqual(timeUntilAll(sim, 'slightly-ahead', 'fine', 10 * SECOND), undefined)
    })
  })

  test('the drift bound is measured from the wall clock: accepted writes do not ratchet it forward', (t) => {
    simulate(t.name, 13, { engine: { maxClockDriftMs: 60 * SECOND } }, (sim) => {
      const nodes = sim.addCluster(4)
      sim.runFor(SECOND)
      const fast = nodes[3]!
      fast.clockOffsetMs = 50 * SECOND
      sim.set(fast, 'a', 'within the bound')
      assert.notEqual(timeUntilAll(sim, 'a', 'within the bound', 5 * SECOND), undefined)
      // Receivers' hybrid clocks now run 50 s ahead; the bound must not follow them.
      fast.clockOffsetMs = 100 * SECOND
      sim.set(fast, 'b', 'beyond the bound')
      sim.runFor(5 * SECOND)
      for (const n of nodes.slice(0, 3)) assert.equal(n.engine.get(sim.clockOf(n), 'b'), undefined, `${n.name} accepted a write 100 s ahead`)
    })
  })

  test('a value larger than a datagram spreads by stream', (t) => {
    simulate(t.name, 10, {}, (sim) => {
      const nodes = sim.addCluster(8)
      sim.runFor(SECOND)
      const big = 'x'.repeat(60 * 1024)
      sim.set(nodes[0]!, 'blob', big)
      assert.notEqual(timeUntilAll(sim, 'blob', big, 10 * SECOND), undefined, 'large value did not spread')
      assert.equal(sim.network.oversizedDropped, 0, 'no datagram exceeded maxPacketBytes')
      assert.ok(sim.network.traffic.some((t) => t.streamsOut > 0), 'it went by stream')
    })
  })

  test('a restarted node (new generation, empty state) receives everything again', (t) => {
    simulate(t.name, 11, {}, (sim) => {
      const nodes = sim.addCluster(10)
      for (let i = 0; i < 10; i++) sim.set(nodes[i]!, `own-${i}`, `v${i}`)
      assertConverged(sim, 10 * SECOND)
      sim.restart(nodes[4]!)
      sim.set(nodes[4]!, 'after-restart', 'yes')
      assertConverged(sim, 15 * SECOND)
      assert.equal(nodes[4]!.engine.entries(sim.now).length, 11)
      assert.equal(nodes[0]!.engine.get(sim.now, 'own-4')?.value, 'v4', 'writes of the previous life stay')
    })
  })

  test('the same seed replays the same run exactly', () => {
    const run = (seed: number): string => {
      let trace = ''
      simulate('replay', seed, {}, (sim) => {
        const nodes = sim.addCluster(40)
        sim.network.faults.loss = 0.1
        sim.network.faults.maxLatencyMs = 30
        sim.onChange = (n, c, now) => {
          trace += `${now}:${n.name}:${c.key}:${String(c.value)};`
        }
        for (let i = 0; i < 5; i++) sim.set(nodes[i * 7]!, `k${i}`, `v${i}`)
        sim.runFor(10 * SECOND)
        trace += sim.nodes.map((n) => n.engine.stats.bytesOut).join(',')
      })
      return trace
    }
    const a = run(42)
    assert.equal(run(42), a)
    assert.notEqual(run(43), a)
  })

  test('idle cluster: probes only, and no reconciliation once converged', (t) => {
    simulate(t.name, 12, {}, (sim) => {
      const nodes = sim.addCluster(50)
      for (let i = 0; i < 10; i++) sim.set(nodes[i]!, `k${i}`, `v${i}`)
      assertConverged(sim, 10 * SECOND)
      sim.runFor(5 * SECOND) // let watermarks settle too
      const before = nodes.map((n) => n.engine.stats.reconciliations)
      const bytesBefore = sim.network.traffic.reduce((s, t) => s + t.datagramBytesOut, 0)
      sim.runFor(10 * SECOND)
      const after = nodes.map((n) => n.engine.stats.reconciliations)
      assert.deepEqual(after, before, 'a converged idle cluster opened reconciliations')
      const perNodePerSec = (sim.network.traffic.reduce((s, t) => s + t.datagramBytesOut, 0) - bytesBefore) / 50 / 10
      assert.ok(perNodePerSec < 300, `idle traffic ${perNodePerSec} B/node/s`)
    })
  })
})
