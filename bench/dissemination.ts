/**
 * Dissemination of one update through a formed cluster of the real engine in
 * the simulator (1 ms links, no loss): how long until every node holds it.
 *
 * - anti-entropy: `eagerPush: false`; the update travels only in the push-pull
 *   reconciliation rounds (every `gossipIntervalMs`, `fanout` peers a round).
 * - eager: default settings; the write is also pushed (rumor mongering) and
 *   anti-entropy mends what the pushes missed.
 * - push-only: eager push with the gossip interval set so far out that no
 *   anti-entropy round happens: the share of nodes push alone reaches.
 */
import { Simulation } from '../src/sim/simulation.js'
import { SeededRandom, randomInt } from '../src/util/random.js'
import { INTERVAL_MS, type SpreadResult, type SpreadRun, type SpreadTask, progress } from './common.js'

/** Give up on one run after this many rounds of virtual time. */
const MAX_ROUNDS = 120

export function runSpread(task: SpreadTask): SpreadResult {
  const runs: SpreadRun[] = []
  for (const seed of task.seeds) {
    runs.push(spreadOnce(task, seed))
    const r = runs[runs.length - 1]!
    if (task.n >= 1000 || task.seeds.length === 1) {
      progress(`  ${task.mode} n=${task.n} f=${task.fanout} seed=${seed}: ${r.ms === null ? 'incomplete' : `${r.ms} ms`} (wall ${(r.wallMs / 1000).toFixed(1)} s)`)
    }
  }
  return { kind: 'spread', n: task.n, fanout: task.fanout, intervalMs: task.intervalMs ?? INTERVAL_MS, mode: task.mode, runs }
}

function spreadOnce(task: SpreadTask, seed: number): SpreadRun {
  const wall0 = performance.now()
  const interval = task.intervalMs ?? INTERVAL_MS
  const pushOnly = task.mode === 'push-only'
  const sim = new Simulation({
    seed,
    engine: {
      fanout: task.fanout,
      eagerPush: task.mode !== 'anti-entropy',
      // Push-only: the first round of every node falls at a random phase within
      // the interval, so an interval of 10^12 ms means no round in the run.
      gossipIntervalMs: pushOnly ? 1e12 : interval,
    },
  })
  sim.network.faults.minLatencyMs = 1
  sim.network.faults.maxLatencyMs = 1
  const nodes = sim.addCluster(task.n)
  // The writer and the moment of the write (relative to the nodes' random
  // round phases) are drawn from the seed too.
  const choice = new SeededRandom(seed * 7919 + 17)
  sim.runFor(2 * interval + randomInt(choice, interval))
  const writer = nodes[randomInt(choice, nodes.length)]!
  const key = 'bench/spread'
  const learnedAt = new Float64Array(task.n).fill(-1)
  let count = 0
  let last = 0
  let t0 = 0
  sim.onChange = (node, change, now) => {
    if (change.key !== key || learnedAt[node.index]! >= 0) return
    learnedAt[node.index] = now - t0
    count++
    last = now
  }
  t0 = sim.now
  sim.set(writer, key, 'v1')
  if (pushOnly) {
    sim.runFor(5 * interval) // pushes are over within milliseconds
  } else {
    while (count < task.n && sim.now - t0 < MAX_ROUNDS * interval) sim.runFor(interval / 4)
  }
  const times = [...learnedAt].filter((t) => t >= 0).sort((a, b) => a - b)
  const half = times[Math.ceil(task.n / 2) - 1]
  return {
    seed,
    ms: count === task.n ? last - t0 : null,
    reached: count,
    halfMs: half ?? null,
    within20ms: times.filter((t) => t <= 20).length / task.n,
    wallMs: performance.now() - wall0,
    events: sim.eventsProcessed,
  }
}
