import { Simulation } from '../src/sim/simulation.js'
const sim = new Simulation({ seed: 1, engine: { eagerPush: process.argv[3] === 'push' } })
const n = Number(process.argv[2] ?? 100)
const nodes = sim.addCluster(n)
sim.runFor(5000)
const t0 = sim.now
let count = 0
sim.onChange = (_n, c) => { if (c.key === 'service_version') count++ }
sim.set(nodes[0]!, 'service_version', 'v1.3.0')
const took = sim.runUntilTrue(() => count >= n, 60_000, 10)
console.log({ n, took, rounds: (took ?? 0) / 1000, converged: sim.converged(), events: sim.eventsProcessed, t: sim.now - t0 })
const e = nodes[0]!.engine
console.log(e.stats)
