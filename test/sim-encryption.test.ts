/**
 * Encryption in the simulator: the same packet security as on real sockets,
 * with session salts drawn from the seed, so an encrypted run replays
 * exactly and a key rotation can be checked over many nodes and seeds.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Simulation } from '../src/sim/simulation.js'
import { parseKey } from '../src/security/keyring.js'
import { simulate } from './helpers/sim.js'

const SECOND = 1000
const K1 = 'q8S4VOf4U5ir0Qd8s6r2l6X5H3mJzYb1cF6T2nKp0Ws='
const K2 = 'wC1n3Jf2qXb8T6mY0sR5dV9kL4hA7gE2pZ1uN8oI3c0='

/** A 40-node encrypted cluster writing once per 100 ms while every node rotates K1 to K2. */
function rotate(sim: Simulation): string[] {
  const nodes = sim.addCluster(40)
  sim.runFor(2 * SECOND)
  const keys: string[] = []
  for (let i = 0; i < 80; i++) {
    sim.at(sim.now + i * 100, () => {
      const n = nodes[i % nodes.length]!
      if (!n.up) return
      sim.set(n, `w/${i}`, String(i))
      keys.push(`w/${i}`)
    })
  }
  const t0 = sim.now
  for (const [i, n] of nodes.entries()) {
    sim.at(t0 + 1 * SECOND + i * 10, () => n.security!.keyring.install(parseKey(K2)))
    sim.at(t0 + 3 * SECOND + i * 50, () => n.security!.keyring.use(parseKey(K2)))
    sim.at(t0 + 7 * SECOND + i * 10, () => n.security!.keyring.remove(parseKey(K1)))
  }
  sim.runFor(9 * SECOND)
  return keys
}

describe('simulated encrypted clusters', () => {
  test('a key rotation over 40 nodes with writes flowing loses no write and drops nothing', (t) => {
    simulate(t.name, 11, { encryption: { keys: [K1] }, engine: { label: 'sim' } }, (sim) => {
      sim.network.faults.maxLatencyMs = 20
      const keys = rotate(sim)
      assert.equal(keys.length, 80)
      const took = sim.runUntilTrue(() => sim.converged(), 20 * SECOND)
      assert.notEqual(took, undefined, 'converged after the rotation')
      for (const n of sim.nodes) {
        const missing = keys.filter((k) => n.engine.get(sim.clockOf(n), k) === undefined)
        assert.deepEqual(missing, [], `${n.name} holds every write`)
        assert.equal(n.engine.stats.dropped('decrypt-failed') + n.engine.stats.dropped('unknown-key'), 0, `${n.name} dropped nothing`)
        assert.equal(n.engine.membership.livePeers, 39)
        assert.deepEqual(n.security!.keyring.list().map((k) => k.key), [K2])
      }
    })
  })

  test('an encrypted run replays exactly from its seed', () => {
    const run = (): string => {
      const sim = new Simulation({ seed: 5, encryption: { keys: [K1] } })
      rotate(sim)
      return sim.nodes.map((n) => `${n.engine.stateHash(sim.clockOf(n))}/${n.engine.stats.messagesOut}/${n.engine.stats.bytesOut}`).join(',')
    }
    assert.equal(run(), run())
  })

  test('a node whose process restarts without the new key is kept out until it has it', (t) => {
    simulate(t.name, 12, { encryption: { keys: [K1] } }, (sim) => {
      const nodes = sim.addCluster(10)
      sim.runFor(2 * SECOND)
      for (const n of nodes.slice(1)) {
        n.security!.keyring.install(parseKey(K2))
        n.security!.keyring.use(parseKey(K2))
        n.security!.keyring.remove(parseKey(K1))
      }
      // nodes[0] still has only K1: it can read nothing of the others', nor they of its.
      sim.set(nodes[1]!, 'after', 'rotation')
      sim.runFor(5 * SECOND)
      assert.equal(nodes[0]!.engine.get(sim.clockOf(nodes[0]!), 'after'), undefined, 'the node without the key learned nothing')
      assert.ok(nodes[1]!.engine.stats.dropped('unknown-key') > 0, 'its packets are refused as under an unknown key')
      nodes[0]!.security!.keyring.install(parseKey(K2))
      nodes[0]!.security!.keyring.use(parseKey(K2))
      assert.notEqual(
        sim.runUntilTrue(() => nodes[0]!.engine.get(sim.clockOf(nodes[0]!), 'after') !== undefined, 10 * SECOND),
        undefined,
        'with the key it catches up',
      )
    })
  })
})
