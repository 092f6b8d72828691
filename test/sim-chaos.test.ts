import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { SimNode } from '../src/sim/simulation.js'
import { type Version, compareVersions } from '../src/state/entry.js'
import { describeDivergence, simulate } from './helpers/sim.js'

const SECOND = 1000

/**
 * Random writes, overwrites, deletes and TTL writes under loss, duplication,
 * reordering, partitions (healed within half the retention) and nodes frozen
 * for longer than the tombstone retention. After healing, every live node must hold exactly what an oracle
 * of all writes says: for each key the highest version ever written, absent
 * when that is a delete or an expired TTL. A node holding anything else has
 * lost a write or resurrected a delete.
 */
// GRAPEVINE_CHAOS_SEEDS=N runs seeds 1..N instead (a longer soak).
const soak = Number(process.env.GRAPEVINE_CHAOS_SEEDS ?? 0)
const seeds = soak > 0 ? Array.from({ length: soak }, (_, i) => i + 1) : [101, 202, 303, 404, 505, 606]
for (const seed of seeds) {
  test(`chaos seed ${seed}: no lost write, no resurrection, convergence`, (t) => {
    simulate(t.name, seed, { engine: { tombstoneRetentionMs: 6 * SECOND, gossipIntervalMs: 500 } }, (sim) => {
      const r = sim.random.fork()
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r.next() * xs.length)]!
      const nodes = sim.addCluster(16)
      const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`)
      // Oracle: the highest version written per key, and whether it leaves the key live.
      const oracle = new Map<string, { v: Version; value: string | undefined; expiresAt: number | undefined }>()
      const record = (key: string, v: Version | undefined, value: string | undefined, expiresAt?: number): void => {
        if (v === undefined) return
        const cur = oracle.get(key)
        if (cur === undefined || compareVersions(v, cur.v) > 0) oracle.set(key, { v, value, expiresAt })
      }
      sim.network.faults.loss = 0.2
      sim.network.faults.duplicate = 0.05
      sim.network.faults.maxLatencyMs = 40
      const frozen = new Set<SimNode>()
      let partitioned = false
      const end = sim.now + 40 * SECOND
      while (sim.now < end) {
        const up = nodes.filter((n) => n.up)
        const roll = r.next()
        if (roll < 0.5) {
          const n = pick(up)
          const key = pick(keys)
          const value = `${n.name}@${sim.now}`
          record(key, sim.set(n, key, value), value)
        } else if (roll < 0.65) {
          const n = pick(up)
          const key = pick(keys)
          record(key, sim.delete(n, key), undefined)
        } else if (roll < 0.72) {
          const n = pick(up)
          const key = pick(keys)
          const value = `ttl-${n.name}@${sim.now}`
          const v = sim.set(n, key, value, { ttlMs: 2 * SECOND + Math.floor(r.next() * 4 * SECOND) })
          record(key, v, value, n.engine.state.getEntry(key)!.expiresAt)
        } else if (roll < 0.8 && !partitioned) {
          // Splits heal within half the retention: a split that outlives the
          // retention with deletes on both sides is outside the guarantee
          // (ARCHITECTURE.md). A single node away for any time is inside it.
          const cut = Math.floor(r.next() * 16)
          sim.network.partition((i) => (i < cut ? 0 : 1), nodes.length)
          partitioned = true
          sim.at(sim.now + 500 + Math.floor(r.next() * 2500), () => {
            sim.network.heal()
            partitioned = false
          })
        } else if (roll < 0.83 && frozen.size < 3) {
          const n = pick(up)
          sim.crash(n) // frozen with its state, possibly beyond the retention
          frozen.add(n)
        } else if (roll < 0.88 && frozen.size > 0) {
          const n = pick([...frozen])
          frozen.delete(n)
          sim.resume(n)
        }
        sim.runFor(Math.floor(r.next() * 400))
      }
      for (const n of frozen) sim.resume(n)
      sim.network.heal()
      sim.network.faults.loss = 0
      const took = sim.runUntilTrue(() => sim.converged(), 60 * SECOND, 250)
      assert.notEqual(took, undefined, `the cluster did not converge after healing:\n${describeDivergence(sim)}`)
      for (const n of nodes) {
        const now = sim.clockOf(n)
        for (const key of keys) {
          const want = oracle.get(key)
          const wantValue = want === undefined || (want.expiresAt !== undefined && now >= want.expiresAt) ? undefined : want.value
          const got = n.engine.get(now, key)
          assert.equal(
            got?.value,
            wantValue,
            `${n.name} ${key}: holds ${JSON.stringify(got)} but the highest write is ${JSON.stringify(want)}`,
          )
        }
      }
    })
  })
}
