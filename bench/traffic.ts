/**
 * Bytes each node sends per second (the simulator's per-node counters:
 * datagram bytes + stream bytes out), default engine settings, 1 ms links.
 *
 * Phases of one run on a formed cluster:
 * 1. idle, empty state (after every node has had its first rounds);
 * 2. writing: each second `writesPerSec` random nodes each write one new key
 *    at a random instant within the second;
 * 3. settle: run until every node holds the same state;
 * 4. idle again, with the written keys held everywhere ("settled idle").
 */
import type { NodeTraffic } from '../src/sim/network.js'
import { Simulation } from '../src/sim/simulation.js'
import { SeededRandom, randomInt } from '../src/util/random.js'
import { INTERVAL_MS, type TrafficPhase, type TrafficResult, type TrafficTask, progress } from './common.js'

interface Snapshot {
  readonly out: Float64Array
  readonly streamOut: Float64Array
  readonly datagrams: Float64Array
}

function snapshot(traffic: readonly NodeTraffic[]): Snapshot {
  const n = traffic.length
  const out = new Float64Array(n)
  const streamOut = new Float64Array(n)
  const datagrams = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t = traffic[i]!
    out[i] = t.datagramBytesOut + t.streamBytesOut
    streamOut[i] = t.streamBytesOut
    datagrams[i] = t.datagramsOut
  }
  return { out, streamOut, datagrams }
}

function phase(a: Snapshot, b: Snapshot, ms: number): TrafficPhase {
  const n = a.out.length
  const secs = ms / 1000
  let total = 0
  let max = 0
  let stream = 0
  let datagrams = 0
  for (let i = 0; i < n; i++) {
    const d = b.out[i]! - a.out[i]!
    total += d
    if (d > max) max = d
    stream += b.streamOut[i]! - a.streamOut[i]!
    datagrams += b.datagrams[i]! - a.datagrams[i]!
  }
  return {
    bytesPerNodePerSec: total / n / secs,
    maxNodeBytesPerSec: max / secs,
    datagramsPerNodePerSec: datagrams / n / secs,
    streamBytesShare: total === 0 ? 0 : stream / total,
  }
}

export function runTraffic(task: TrafficTask): TrafficResult {
  const wall0 = performance.now()
  const sim = new Simulation({ seed: task.seed, engine: { gossipIntervalMs: task.intervalMs ?? INTERVAL_MS, ...(task.fanout === undefined ? {} : { fanout: task.fanout }) } })
  sim.network.faults.minLatencyMs = 1
  sim.network.faults.maxLatencyMs = 1
  const nodes = sim.addCluster(task.n)
  const choice = new SeededRandom(task.seed * 31 + 7)
  const tag = `traffic n=${task.n}`

  sim.runFor(3 * INTERVAL_MS) // every node has started its rounds
  let s0 = snapshot(sim.network.traffic)
  sim.runFor(task.idleMs)
  let s1 = snapshot(sim.network.traffic)
  const idleEmpty = phase(s0, s1, task.idleMs)
  progress(`  ${tag}: idle ${idleEmpty.bytesPerNodePerSec.toFixed(1)} B/node/s; writing ${task.writeMs / 1000} s`)

  // Writes at random instants: scheduled up front, each on a random node.
  const start = sim.now
  const written: { key: string; origin: string }[] = []
  for (let sec = 0; sec < task.writeMs / 1000; sec++) {
    for (let w = 0; w < task.writesPerSec; w++) {
      const at = start + sec * 1000 + randomInt(choice, 1000)
      const node = nodes[randomInt(choice, nodes.length)]!
      const key = `bench/traffic/${written.length}`
      written.push({ key, origin: node.engine.origin })
      sim.at(at, () => sim.set(node, key, `value-${key}`))
    }
  }
  const keys = written.length
  // Origins in name order, as ClusterState.origins() sorts them.
  const origins = [...new Set(written.map((w) => w.origin))].sort()
  const missing = (): { total: number; byRank: Map<number, number> } => {
    const byRank = new Map<number, number>()
    let total = 0
    for (const node of sim.nodes) {
      for (const w of written) {
        if (node.engine.state.getEntry(w.key) !== undefined) continue
        total++
        const rank = origins.indexOf(w.origin)
        byRank.set(rank, (byRank.get(rank) ?? 0) + 1)
      }
    }
    return { total, byRank }
  }
  s0 = snapshot(sim.network.traffic)
  sim.runFor(task.writeMs)
  s1 = snapshot(sim.network.traffic)
  const writing = phase(s0, s1, task.writeMs)
  progress(`  ${tag}: writing ${writing.bytesPerNodePerSec.toFixed(1)} B/node/s; settling`)

  // Settle: check every 500 ms until all state hashes are equal; if that has
  // not happened 10 s after the last write, note which (node, key) pairs are
  // still missing and the name-order position of their origins.
  const missingAtEnd = missing().total
  const settle0 = sim.now
  let settleMs: number | null = null
  let later: { total: number; byRank: Map<number, number> } | undefined
  for (;;) {
    const elapsed = sim.now - settle0
    if (sim.converged()) {
      settleMs = elapsed
      break
    }
    if (later === undefined && elapsed >= 10 * INTERVAL_MS) later = missing()
    if (elapsed >= 120 * INTERVAL_MS) break
    sim.runFor(500)
  }
  sim.runFor(3 * INTERVAL_MS)
  s0 = snapshot(sim.network.traffic)
  sim.runFor(task.idleMs)
  s1 = snapshot(sim.network.traffic)
  const idleSettled = phase(s0, s1, task.idleMs)
  progress(`  ${tag}: settled in ${settleMs} ms; idle ${idleSettled.bytesPerNodePerSec.toFixed(1)} B/node/s`)
  return {
    kind: 'traffic',
    n: task.n,
    fanout: task.fanout ?? 3,
    intervalMs: task.intervalMs ?? INTERVAL_MS,
    idleMs: task.idleMs,
    writeMs: task.writeMs,
    writesPerSec: task.writesPerSec,
    idleEmpty,
    writing,
    idleSettled,
    settleMs,
    keys,
    origins: origins.length,
    missingAtEnd,
    missingAfter10s: later?.total ?? 0,
    missingByOriginRank: [...(later?.byRank ?? new Map<number, number>())].sort((x, y) => x[0] - y[0]),
    wallMs: performance.now() - wall0,
  }
}
