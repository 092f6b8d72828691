import { MemberStatus } from '../membership/member.js'
import { PRESETS, type PresetName } from '../membership/presets.js'
import { percentile } from '../util/percentile.js'
import { SeededRandom, randomInt } from '../util/random.js'
import { type SimNode, Simulation } from './simulation.js'

/**
 * An experiment on the real engine under the simulator's virtual clock: a
 * formed cluster, a network with loss and latency, scripted partitions,
 * crashes, restarts and writes, and measurements taken as it runs. What
 * `grapevine sim` runs. Everything but `wallMs` and `peakRssBytes` follows
 * from the spec and its seed: the same spec gives the same result, byte for
 * byte.
 */
export interface ExperimentSpec {
  readonly nodes: number
  readonly fanout: number
  readonly intervalMs: number
  readonly preset: PresetName
  /** Probability a datagram is lost. */
  readonly loss: number
  /** One-way latency, uniform in [min, max] ms. */
  readonly latencyMs: readonly [number, number]
  readonly eagerPush: boolean
  /** Writes per second to random live nodes, from 1 s on; the first write is the one `roundsToAll` follows. */
  readonly writesPerSec: number
  readonly durationMs: number
  readonly seed: number
  readonly events: readonly ScenarioEvent[]
  /** Virtual ms between two time-series rows. */
  readonly sampleMs?: number
}

/** Something that happens at a virtual time (ms from the start). */
export type ScenarioEvent =
  /** The first `fraction` of the nodes (by index) are cut off from the rest until a `heal`. */
  | { readonly at: number; readonly kind: 'partition'; readonly fraction: number }
  | { readonly at: number; readonly kind: 'heal' }
  /** `count` live nodes, drawn from the seed, stop abruptly. */
  | { readonly at: number; readonly kind: 'crash'; readonly count: number }
  /** Every crashed node restarts as a new process (empty state, rejoins through node 0). */
  | { readonly at: number; readonly kind: 'restart' }
  /** One write of `key` (at node `node`, else a random live node). */
  | { readonly at: number; readonly kind: 'write'; readonly key: string; readonly value: string; readonly node?: number }

export interface TimeSeriesRow {
  readonly tMs: number
  /** Share of live nodes holding the first write (0 before it). */
  readonly informedFirst: number
  /** Share of live nodes holding every write made so far. */
  readonly informedAll: number
  /** Datagrams and stream messages, and their bytes, sent in this sample, per live node per second. */
  readonly messagesPerNodePerSec: number
  readonly bytesPerNodePerSec: number
  /** Members by status, summed over the live nodes' views. */
  readonly alive: number
  readonly suspect: number
  readonly dead: number
  readonly partitioned: boolean
}

export interface ExperimentResult {
  readonly nodes: number
  readonly fanout: number
  readonly intervalMs: number
  readonly preset: PresetName
  readonly loss: number
  readonly seed: number
  readonly eagerPush: boolean
  readonly durationMs: number
  readonly writes: number
  /** Rounds of `intervalMs` until every live node held the first write; null if never. */
  readonly roundsToAll: number | null
  readonly timeToAllMs: number | null
  readonly timeTo99PctMs: number | null
  readonly messagesPerNodePerSec: number
  readonly bytesPerNodePerSec: number
  /** Per (crashed node, live observer): ms from the crash until the observer marked it dead. */
  readonly detectionMs: { readonly p50: number; readonly p99: number; readonly samples: number; readonly undetected: number } | null
  /** Every detection time measured (ms), for the distribution plot. */
  readonly detectionSamples: readonly number[]
  /** Virtual ms from the start at which the first write was made (null: no write). */
  readonly firstWriteAtMs: number | null
  /** Dead events about nodes that were running and reachable from the observer at the time. */
  readonly falsePositives: number
  /** Whether the live nodes hold the same state at the end. */
  readonly converged: boolean
  readonly timeSeries: readonly TimeSeriesRow[]
  readonly wallMs: number
  readonly peakRssBytes: number
}

export function runExperiment(spec: ExperimentSpec, onProgress?: (doneMs: number) => void): ExperimentResult {
  const wall0 = performance.now()
  const sim = new Simulation({
    seed: spec.seed,
    engine: { fanout: spec.fanout, gossipIntervalMs: spec.intervalMs, eagerPush: spec.eagerPush, timing: PRESETS[spec.preset] },
  })
  sim.network.faults.loss = spec.loss
  sim.network.faults.minLatencyMs = spec.latencyMs[0]
  sim.network.faults.maxLatencyMs = spec.latencyMs[1]
  const nodes = sim.addCluster(spec.nodes)
  const t0 = sim.now
  const choice = new SeededRandom(spec.seed ^ 0x51ed)
  const n = spec.nodes

  // What each node holds: which writes (by index) it has seen.
  const writeKeys: string[] = []
  const writeAt: number[] = []
  const writeIndex = new Map<string, number>()
  const holders: Uint8Array[] = []
  const holderCount: number[] = []
  let liveNow = n
  const liveCount = (): number => liveNow
  const heldByAllLive = (w: number): number => {
    // With every node up, the holder count is exact; otherwise count the live holders.
    if (liveNow === n) return holderCount[w]!
    let c = 0
    const h = holders[w]!
    for (const x of nodes) if (x.up && h[x.index] === 1) c++
    return c
  }
  let firstAll: number | null = null
  let first99: number | null = null
  // The first write's spread, exactly (not at sample granularity).
  const checkFirst = (): void => {
    if (writeKeys.length === 0 || firstAll !== null) return
    const live = liveCount()
    // holderCount counts crashed holders too: an upper bound, cheap to test first.
    if (holderCount[0]! < 0.99 * live) return
    const held = heldByAllLive(0)
    if (first99 === null && held >= 0.99 * live) first99 = sim.now - t0 - writeAt[0]!
    if (held >= live) firstAll = sim.now - t0 - writeAt[0]!
  }
  sim.onChange = (node, change) => {
    const w = writeIndex.get(`${change.key}\u0000${change.version.ts}\u0000${change.version.origin}`)
    if (w === undefined || holders[w]![node.index] === 1) return
    holders[w]![node.index] = 1
    holderCount[w]!++
    if (w === 0) checkFirst()
  }
  const write = (node: SimNode, key: string, value: string): void => {
    const w = writeKeys.length
    writeKeys.push(key)
    writeAt.push(sim.now - t0)
    holders.push(new Uint8Array(n))
    holderCount.push(0)
    const v = sim.set(node, key, value)
    writeIndex.set(`${key}\u0000${v.ts}\u0000${v.origin}`, w)
    holders[w]![node.index] = 1
    holderCount[w] = 1
  }
  const randomLive = (): SimNode | undefined => {
    const live = nodes.filter((x) => x.up)
    return live.length === 0 ? undefined : live[randomInt(choice, live.length)]
  }

  // Members by status summed over the live nodes' views: each node's share is
  // kept and recounted only when its view may have changed (a member event,
  // a crash or a restart), not ten thousand tables every sample.
  const statusShare = [new Int32Array(n), new Int32Array(n), new Int32Array(n)]
  const statusTotal = [0, 0, 0]
  const statusOf = [MemberStatus.Alive, MemberStatus.Suspect, MemberStatus.Dead]
  const viewChanged = new Set<number>(nodes.map((x) => x.index))
  const recountViews = (): void => {
    for (const i of viewChanged) {
      const x = nodes[i]!
      for (let k = 0; k < 3; k++) {
        const now = x.up ? x.engine.membership.table.count(statusOf[k]!) : 0
        statusTotal[k]! += now - statusShare[k]![i]!
        statusShare[k]![i] = now
      }
    }
    viewChanged.clear()
  }
  // Crashes and their detection.
  const crashedAt = new Map<number, number>()
  const detection: number[] = []
  let falsePositives = 0
  // Every observer reports every crash: a lookup per event, not a scan of all nodes.
  const nodeByName = new Map(nodes.map((x) => [x.name, x]))
  sim.onMemberEvent = (observer, e) => {
    viewChanged.add(observer.index)
    if (e.type !== 'dead') return
    const target = nodeByName.get(e.member.name)
    if (target === undefined) return
    const at = crashedAt.get(target.index)
    if (at !== undefined && !target.up) detection.push(sim.now - at)
    // A running node declared dead by one that could reach it (across a partition, dead is the right call).
    else if (sim.network.reachable(observer.index, target.index)) falsePositives++
  }
  let partitioned = false
  const events = [...spec.events].sort((a, b) => a.at - b.at)
  for (const ev of events) {
    sim.at(t0 + ev.at, () => {
      switch (ev.kind) {
        case 'partition': {
          const cut = Math.round(ev.fraction * n)
          sim.network.partition((i) => (i < cut ? 0 : 1), n)
          partitioned = true
          break
        }
        case 'heal':
          sim.network.heal()
          partitioned = false
          break
        case 'crash':
          for (let k = 0; k < ev.count; k++) {
            const victim = randomLive()
            if (victim === undefined) break
            sim.crash(victim)
            viewChanged.add(victim.index)
            crashedAt.set(victim.index, sim.now)
            liveNow--
          }
          break
        case 'restart':
          for (const i of crashedAt.keys()) {
            if (nodes[i]!.up) continue
            sim.restart(nodes[i]!)
            viewChanged.add(i)
            liveNow++
            // A new process with an empty state: it holds nothing until it hears again.
            for (let w = 0; w < holders.length; w++) {
              if (holders[w]![i] === 1) {
                holders[w]![i] = 0
                holderCount[w]!--
              }
            }
          }
          crashedAt.clear()
          break
        case 'write': {
          const at = ev.node !== undefined ? nodes[ev.node] : randomLive()
          if (at !== undefined && at.up) write(at, ev.key, ev.value)
          break
        }
      }
    })
  }
  if (spec.writesPerSec > 0) {
    const count = Math.floor(((spec.durationMs - 1000) / 1000) * spec.writesPerSec)
    for (let i = 0; i < count; i++) {
      sim.at(t0 + 1000 + (i * 1000) / spec.writesPerSec, () => {
        const at = randomLive()
        if (at !== undefined) write(at, `sim/${i}`, `value-${i}`)
      })
    }
  }

  // Sampling.
  const sampleMs = spec.sampleMs ?? Math.max(10, Math.round(spec.intervalMs / 10))
  const rows: TimeSeriesRow[] = []
  let lastMsgs = 0
  let lastBytes = 0
  const traffic = (): [number, number] => [sim.network.messagesOut, sim.network.bytesOut]

  for (let t = 0; t <= spec.durationMs; t += sampleMs) {
    sim.runUntil(t0 + t)
    const live = liveCount()
    const informedFirst = writeKeys.length === 0 || live === 0 ? 0 : heldByAllLive(0) / live
    checkFirst() // a crash may leave only holders
    let all = writeKeys.length === 0 ? 0 : 1
    for (let w = 0; w < writeKeys.length && all > 0; w++) all = Math.min(all, live === 0 ? 0 : heldByAllLive(w) / live)
    const [m, b] = traffic()
    recountViews()
    const [alive, suspect, dead] = statusTotal as [number, number, number]
    const per = live === 0 || t === 0 ? 0 : 1000 / sampleMs / live
    rows.push({
      tMs: t,
      informedFirst,
      informedAll: all,
      messagesPerNodePerSec: (m - lastMsgs) * per,
      bytesPerNodePerSec: (b - lastBytes) * per,
      alive,
      suspect,
      dead,
      partitioned,
    })
    lastMsgs = m
    lastBytes = b
    onProgress?.(t)
  }
  const [totalMsgs, totalBytes] = traffic()
  const secs = spec.durationMs / 1000
  const liveEnd = nodes.filter((x) => x.up)
  const sortedDetection = [...detection].sort((a, b) => a - b)
  const crashedObservers = crashedAt.size * liveEnd.length
  return {
    nodes: n,
    fanout: spec.fanout,
    intervalMs: spec.intervalMs,
    preset: spec.preset,
    loss: spec.loss,
    seed: spec.seed,
    eagerPush: spec.eagerPush,
    durationMs: spec.durationMs,
    writes: writeKeys.length,
    roundsToAll: firstAll === null ? null : firstAll / spec.intervalMs,
    timeToAllMs: firstAll,
    timeTo99PctMs: first99,
    messagesPerNodePerSec: totalMsgs / n / secs,
    bytesPerNodePerSec: totalBytes / n / secs,
    detectionMs:
      crashedAt.size === 0 && detection.length === 0
        ? null
        : { p50: percentile(sortedDetection, 50), p99: percentile(sortedDetection, 99), samples: detection.length, undetected: Math.max(0, crashedObservers - detection.length) },
    detectionSamples: sortedDetection,
    firstWriteAtMs: writeAt[0] ?? null,
    falsePositives,
    converged: sim.converged(),
    timeSeries: rows,
    wallMs: performance.now() - wall0,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  }
}
