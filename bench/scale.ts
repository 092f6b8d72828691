/**
 * `grapevine sim` at scale: the very experiment the command runs (the spec
 * built from the same flags, `lan` preset, defaults), in a worker process of
 * its own so that its peak RSS is this simulation's. With `plotsDir`, the
 * command's plots are written there for BENCHMARKS.md to link.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { type SimFlags, specFromFlags } from '../src/cli/sim-command.js'
import { runExperiment } from '../src/sim/experiment.js'
import { experimentPlots } from '../src/sim/plots.js'
import { type ScaleResult, type ScaleTask, progress } from './common.js'

/** The `grapevine sim` flags of a scale task (also printed in the report, to rerun it by hand). */
export function scaleFlags(task: ScaleTask): SimFlags {
  return {
    nodes: String(task.n),
    duration: `${task.simMs / 1000}s`,
    preset: 'lan',
    seed: String(task.seed),
    ...(task.crash > 0 ? { crash: `${task.crash}@${task.crashAtMs / 1000}s` } : {}),
    ...(task.eagerPush === false ? { eagerPush: 'off' } : {}),
  }
}

export function scaleCommand(task: ScaleTask): string {
  const f = scaleFlags(task)
  const heap = task.maxOldSpaceMiB === undefined ? '' : `NODE_OPTIONS=--max-old-space-size=${task.maxOldSpaceMiB} `
  return `${heap}grapevine sim --nodes ${f.nodes} --duration ${f.duration} --preset lan --seed ${f.seed}${f.crash === undefined ? '' : ` --crash ${f.crash}`}${f.eagerPush === undefined ? '' : ` --eager-push ${f.eagerPush}`}`
}

export async function runScale(task: ScaleTask): Promise<ScaleResult> {
  const spec = specFromFlags(scaleFlags(task))
  const tag = `scale n=${task.n}`
  const t0 = performance.now()
  let reported = 0
  const r = runExperiment(spec, (doneMs) => {
    if (doneMs - reported < 10_000 && doneMs < spec.durationMs) return
    reported = doneMs
    progress(`  ${tag}: ${(doneMs / 1000).toFixed(0)} sim-s, ${((performance.now() - t0) / 1000).toFixed(1)} s wall`)
  })
  const plots: string[] = []
  if (task.plotsDir !== undefined) {
    mkdirSync(task.plotsDir, { recursive: true })
    for (const plot of await experimentPlots(r)) {
      if (task.plotNames !== undefined && !task.plotNames.includes(plot.name)) continue
      for (const [ext, bytes] of [['svg', plot.svg], ['png', plot.png]] as const) {
        const variant = task.eagerPush === false ? '-anti-entropy' : task.crash > 0 ? '-crash' : ''
        const file = `sim-${task.n}${variant}-${plot.name}.${ext}`
        writeFileSync(path.join(task.plotsDir, file), bytes)
        plots.push(file)
      }
    }
  }
  if (!r.converged) progress(`  ${tag}: not converged at the end`)
  return {
    kind: 'scale',
    n: task.n,
    simMs: task.simMs,
    crash: task.crash,
    eagerPush: task.eagerPush !== false,
    command: scaleCommand(task),
    wallMs: r.wallMs,
    peakRssBytes: r.peakRssBytes,
    roundsToAll: r.roundsToAll,
    timeTo99PctMs: r.timeTo99PctMs,
    messagesPerNodePerSec: r.messagesPerNodePerSec,
    bytesPerNodePerSec: r.bytesPerNodePerSec,
    detectionMs: r.detectionMs,
    falsePositives: r.falsePositives,
    converged: r.converged,
    plots,
  }
}
