/**
 * The simulator at scale: an idle formed cluster (default engine settings)
 * run for a stretch of virtual time. Wall time, events and the process's peak
 * RSS (the worker process runs this alone, so the peak is this simulation's).
 */
import { Simulation } from '../src/sim/simulation.js'
import { type ScaleResult, type ScaleTask, progress } from './common.js'

export function runScale(task: ScaleTask): ScaleResult {
  const t0 = performance.now()
  const sim = new Simulation({ seed: task.seed })
  sim.addCluster(task.n)
  const setupWallMs = performance.now() - t0
  const t1 = performance.now()
  const step = 10_000
  for (let done = 0; done < task.simMs; done += step) {
    sim.runFor(Math.min(step, task.simMs - done))
    progress(`  scale n=${task.n}: ${(Math.min(task.simMs, done + step) / 1000).toFixed(0)} sim-s, ${((performance.now() - t1) / 1000).toFixed(1)} s wall`)
  }
  const runWallMs = performance.now() - t1
  const peakRssBytes = process.resourceUsage().maxRSS * 1024
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) gc()
  const heapUsedBytes = process.memoryUsage().heapUsed
  if (sim.nodes.length !== task.n) throw new Error('scale bench: node count changed')
  return { kind: 'scale', n: task.n, simMs: task.simMs, setupWallMs, runWallMs, events: sim.eventsProcessed, peakRssBytes, heapUsedBytes }
}
