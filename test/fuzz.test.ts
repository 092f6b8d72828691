/**
 * Hostile input: 100,000 random and mutated packets fed to one node of a
 * running cluster. Nothing may throw out of the receive path, memory must
 * stay bounded, and once the hostile sender stops the real nodes agree again
 * on their data and on each other. Encrypted, the same flood changes nothing
 * at all: every mutated sealed packet is dropped.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Simulation } from '../src/sim/simulation.js'
import { type FuzzReport, fuzzCluster } from './helpers/fuzz-harness.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const KEY = 'q8S4VOf4U5ir0Qd8s6r2l6X5H3mJzYb1cF6T2nKp0Ws='

function run(seed: number, inputs: number, encryption?: { keys: string[] }): FuzzReport {
  let last: { index: number; mutator: string; bytes: Buffer } | undefined
  try {
    return fuzzCluster({ seed, inputs, gc, ...(encryption ? { encryption } : {}), onInput: (index, mutator, bytes) => (last = { index, mutator, bytes }) })
  } catch (err) {
    const e = err as Error
    e.message = `fuzz seed ${seed}: input ${last?.index} (${last?.mutator}) threw: ${e.message}\n  input: ${last?.bytes.toString('hex')}`
    throw e
  }
}

describe('hostile input', () => {
  test('100,000 random and mutated packets: no exception, bounded memory, the cluster converges after', (t) => {
    const report = run(Number(process.env.GRAPEVINE_SEED ?? 1), 100_000)
    t.diagnostic(JSON.stringify(report))
    assert.equal(report.inputs, 100_000)
    assert.ok(Object.keys(report.byMutator).length >= 8, 'every mutator was used')
    const dropped = Object.values(report.drops).reduce((s, n) => s + (n ?? 0), 0)
    assert.ok(dropped > 50_000, `most inputs were dropped and counted (${dropped})`)
    assert.ok(report.heapGrowthBytes < 256 * 1024 * 1024, `heap grew ${report.heapGrowthBytes} bytes`)
    assert.notEqual(report.convergedAfterMs, undefined, 'the real nodes converge again once the flood stops')
  })

  test('encrypted: 20,000 mutated sealed packets change nothing and are all dropped', (t) => {
    const report = run(Number(process.env.GRAPEVINE_SEED ?? 2), 20_000, { keys: [KEY] })
    t.diagnostic(JSON.stringify(report))
    assert.notEqual(report.convergedAfterMs, undefined)
    assert.ok(report.victimMemberNames.every((n) => /^(n|corpus-)\d$/.test(n)), `no made-up member got in: ${report.victimMemberNames.join(' ')}`)
    const dropped = Object.values(report.drops).reduce((s, n) => s + (n ?? 0), 0)
    const asIs = report.byMutator['as-is'] ?? 0
    // Only unmodified (replayed) packets and mutations that leave the sealed bytes intact (e.g. a swap of equal bytes) pass.
    assert.ok(dropped >= report.inputs - asIs - report.inputs * 0.02, `dropped ${dropped} of ${report.inputs}, ${asIs} replays`)
  })

  test('replayed old packets change nothing, after overwrites, deletes and tombstone collection', () => {
    const sim = new Simulation({ seed: 21, engine: { tombstoneRetentionMs: 2000 } })
    const nodes = sim.addCluster(5)
    const captured: { from: string; to: (typeof nodes)[number]; bytes: Buffer; stream: boolean }[] = []
    sim.onDeliver = (from, to, bytes, stream) => captured.push({ from, to, bytes, stream })
    for (let i = 0; i < 10; i++) sim.set(nodes[i % 5]!, `k${i}`, 'old')
    sim.runFor(3000)
    sim.onDeliver = undefined
    for (let i = 0; i < 10; i++) {
      if (i % 2 === 0) sim.set(nodes[(i + 1) % 5]!, `k${i}`, 'new')
      else sim.delete(nodes[(i + 2) % 5]!, `k${i}`)
    }
    sim.runFor(6000)
    assert.ok(sim.converged())
    assert.ok(nodes.every((n) => n.engine.state.tombstones === 0), 'the tombstones were collected')
    const before = nodes.map((n) => n.engine.stateHash(sim.clockOf(n)))
    assert.ok(captured.length > 100, `packets captured: ${captured.length}`)
    for (const c of captured) sim.inject(c.to, c.from, c.bytes, c.stream)
    sim.runFor(5000)
    assert.deepEqual(nodes.map((n) => n.engine.stateHash(sim.clockOf(n))), before, 'no state changed')
    for (const n of nodes) {
      for (let i = 1; i < 10; i += 2) assert.equal(n.engine.get(sim.clockOf(n), `k${i}`), undefined, `k${i} stays deleted on ${n.name}`)
    }
  })
})
