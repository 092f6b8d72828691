/**
 * The benchmark suite: `npm run bench` (full: 5 to 10 minutes on two cores)
 * or `node dist/bench/run.js --quick` (smoke run, small N, few seeds, ~15 s).
 *
 * Options:
 *   --quick        small clusters and few seeds; finishes in well under a minute
 *   --jobs N       worker processes at once (default: min(2, CPUs))
 *   --out FILE     where to write the report (default: BENCHMARKS.md at the repo root)
 *
 * Every task runs in its own child process (`worker.js`, with --expose-gc);
 * tasks whose wall time or peak memory is reported run alone, the others two
 * at a time. The report is written even if some task failed (the failure is
 * shown in it and the exit code is 1).
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { INTERVAL_MS, RESULT_PREFIX, type Task, type WorkerOutput, describeTask, progress, seedList } from './common.js'
import { type Plan, type TaskOutcome, renderReport } from './report.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..', '..')
const workerPath = path.join(here, 'worker.js')

interface Options {
  readonly quick: boolean
  readonly jobs: number
  readonly out: string
}

function parseArgs(argv: readonly string[]): Options {
  let quick = false
  let jobs = Math.max(1, Math.min(2, os.cpus().length))
  let out = path.join(repoRoot, 'BENCHMARKS.md')
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--quick') quick = true
    else if (a === '--jobs') jobs = Math.max(1, Number(argv[++i]))
    else if (a === '--out') out = path.resolve(argv[++i] ?? out)
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node dist/bench/run.js [--quick] [--jobs N] [--out FILE]\n')
      process.exit(0)
    } else throw new Error(`unknown option ${a}`)
  }
  if (!Number.isFinite(jobs)) throw new Error('--jobs needs a number')
  return { quick, jobs, out }
}

/** What to measure. Sizes and seed counts are stated in the report. */
export function makePlan(quick: boolean, plotsDir: string): Plan {
  if (quick) {
    return {
      quick,
      sizes: [10, 100, 1000],
      fanouts: [1, 2, 3],
      seeds: seedList(5),
      seedsAt10k: [],
      trafficSizes: [100, 1000],
      traffic: { idleMs: 3000, writeMs: 5000, writesPerSec: 5 },
      merge: { entries: 200_000, overwriteKeys: 1000, deltaMessages: 4000, reps: 1 },
      keys: 20_000,
      scale: [
        { n: 1000, simMs: 10_000, crash: 0, crashAtMs: 0, seed: 1, plotsDir, plotNames: ['epidemic', 'traffic'] },
        { n: 1000, simMs: 15_000, crash: 3, crashAtMs: 3_000, seed: 1, plotsDir, plotNames: ['detection'] },
        { n: 1000, simMs: 8_000, crash: 0, crashAtMs: 0, seed: 1, plotsDir, eagerPush: false, plotNames: ['epidemic'] },
      ],
      grid: { n: 100, fanouts: [1, 3], intervalsMs: [250, 1000], seeds: seedList(3) },
      packetRate: { n: 20, simMs: 5_000, writesPerSec: 50 },
      realCpu: { n: 20, settleMs: 2_000, measureMs: 5_000, writesPerSec: 100 },
      membership: membershipPlan([10, 100, 1000], 5, 0, 300_000),
    }
  }
  return {
    quick,
    sizes: [10, 100, 1000, 10_000],
    fanouts: [1, 2, 3],
    seeds: seedList(20),
    seedsAt10k: seedList(20),
    trafficSizes: [100, 1000, 10_000],
    traffic: { idleMs: 10_000, writeMs: 20_000, writesPerSec: 5 },
    merge: { entries: 1_000_000, overwriteKeys: 1000, deltaMessages: 20_000, reps: 5 },
    keys: 100_000,
    scale: [
      // The target run: 10,000 nodes, 60 simulated seconds, lan preset, defaults.
      { n: 10_000, simMs: 60_000, crash: 0, crashAtMs: 0, seed: 1, plotsDir, plotNames: ['epidemic', 'traffic'] },
      // Ten crashes at 10,000 nodes, for the detection plot (SWIM's dissemination of the news costs more events).
      { n: 10_000, simMs: 20_000, crash: 10, crashAtMs: 5_000, seed: 1, plotsDir, plotNames: ['detection', 'traffic'] },
      // Anti-entropy alone at 10,000 nodes: the epidemic curve beside the push-pull theory, like for like.
      { n: 10_000, simMs: 12_000, crash: 0, crashAtMs: 0, seed: 1, plotsDir, eagerPush: false, plotNames: ['epidemic'] },
      // 100,000 nodes must run: wall time and memory are recorded.
      { n: 100_000, simMs: 10_000, crash: 0, crashAtMs: 0, seed: 1, maxOldSpaceMiB: 16_000 },
    ],
    grid: { n: 1000, fanouts: [1, 2, 3], intervalsMs: [250, 500, 1000, 2000], seeds: seedList(10) },
    packetRate: { n: 100, simMs: 30_000, writesPerSec: 100 },
    realCpu: { n: 100, settleMs: 10_000, measureMs: 20_000, writesPerSec: 100 },
    membership: membershipPlan([10, 100, 1000, 10_000], 20, 3, 3_600_000),
  }
}

/** Membership measurements: cluster sizes, seeds per size (fewer at 10,000), and the length of the loss runs. */
function membershipPlan(sizes: number[], seeds: number, seedsAt10k: number, lossRunMs: number): Plan['membership'] {
  return {
    detectSizes: sizes,
    detectSeeds: seedList(seeds),
    detectSeedsAt10k: seedList(seedsAt10k),
    trafficSizes: sizes,
    falsePositives: [0, 0.1, 0.3].map((loss) => ({ loss, simMs: lossRunMs })),
    joinSizes: [5, 50, 100],
    joinSeeds: seedList(seeds),
    freezeSeeds: seedList(seeds),
    realSizes: [10, 100],
    realRuns: Math.max(1, Math.round(seeds / 4)),
  }
}

interface Scheduled {
  readonly task: Task
  /** Runs with no other task at once (its wall time or memory is reported). */
  readonly exclusive: boolean
  /** Rough cost, to start the longest tasks first. */
  readonly cost: number
}

function tasksOf(plan: Plan): Scheduled[] {
  const out: Scheduled[] = []
  for (const n of plan.sizes) {
    const seeds = n >= 10_000 ? plan.seedsAt10k : plan.seeds
    for (const fanout of plan.fanouts) {
      out.push({ task: { kind: 'theory', n, fanout, seeds }, exclusive: false, cost: n / 100 })
      if (n >= 10_000) {
        // One process per seed, so the big runs spread over the cores.
        for (const s of seeds) out.push({ task: { kind: 'spread', n, fanout, mode: 'anti-entropy', seeds: [s] }, exclusive: false, cost: n })
      } else {
        out.push({ task: { kind: 'spread', n, fanout, mode: 'anti-entropy', seeds }, exclusive: false, cost: n * seeds.length })
      }
    }
    // Eager push (the default) at every fanout: what the table for choosing a fanout quotes.
    for (const fanout of plan.fanouts) {
      if (n >= 10_000) {
        for (const s of seeds) out.push({ task: { kind: 'spread', n, fanout, mode: 'eager', seeds: [s] }, exclusive: false, cost: n / 2 })
      } else {
        out.push({ task: { kind: 'spread', n, fanout, mode: 'eager', seeds }, exclusive: false, cost: (n * seeds.length) / 2 })
      }
    }
    out.push({ task: { kind: 'spread', n, fanout: 3, mode: 'push-only', seeds }, exclusive: false, cost: (n * seeds.length) / 10 })
  }
  for (const n of plan.trafficSizes) {
    out.push({ task: { kind: 'traffic', n, seed: 1, ...plan.traffic }, exclusive: false, cost: n * 10 })
  }
  // The grid for choosing interval and fanout: eager spread and traffic at every pair, at one size
  // (the default interval's spread runs are in the tables above; fanout 3 at the default interval is in trafficSizes).
  const g = plan.grid
  for (const fanout of g.fanouts) {
    for (const intervalMs of g.intervalsMs) {
      const atDefault = intervalMs === INTERVAL_MS
      if (!(atDefault && fanout === 3 && plan.trafficSizes.includes(g.n))) {
        out.push({ task: { kind: 'traffic', n: g.n, fanout, intervalMs, seed: 1, ...plan.traffic }, exclusive: false, cost: g.n * 10 })
      }
      if (!(atDefault && plan.sizes.includes(g.n))) {
        out.push({ task: { kind: 'spread', n: g.n, fanout, mode: 'eager', seeds: g.seeds, intervalMs }, exclusive: false, cost: (g.n * g.seeds.length) / 2 })
      }
    }
  }
  const m = plan.membership
  for (const n of m.detectSizes) {
    const seeds = n >= 10_000 ? m.detectSeedsAt10k : m.detectSeeds
    if (n >= 10_000) for (const s of seeds) out.push({ task: { kind: 'detect', n, seeds: [s] }, exclusive: false, cost: n * 3 })
    else out.push({ task: { kind: 'detect', n, seeds }, exclusive: false, cost: n * seeds.length })
  }
  for (const n of m.trafficSizes) out.push({ task: { kind: 'member-traffic', n, seed: 1, measureMs: 20_000 }, exclusive: false, cost: n * 3 })
  for (const f of m.falsePositives) {
    out.push({ task: { kind: 'false-positives', n: 100, seed: 1, loss: f.loss, simMs: f.simMs }, exclusive: false, cost: f.simMs / 10 })
  }
  for (const n of m.joinSizes) out.push({ task: { kind: 'member-join', n, seeds: m.joinSeeds }, exclusive: false, cost: n * m.joinSeeds.length })
  out.push({ task: { kind: 'freeze', n: 100, freezeMs: 3000, seeds: m.freezeSeeds }, exclusive: false, cost: 100 * m.freezeSeeds.length })
  for (const n of m.realSizes) {
    out.push({ task: { kind: 'real-cluster', n, runs: m.realRuns }, exclusive: true, cost: 0 })
    if (!plan.quick && n >= 100) out.push({ task: { kind: 'anchor', n, runs: 3, basePort: 22_000 + n * 50 }, exclusive: true, cost: 0 })
  }
  out.push({ task: { kind: 'memory', keys: plan.keys }, exclusive: true, cost: 0 })
  out.push({ task: { kind: 'join', keys: plan.keys, seed: 1 }, exclusive: true, cost: 0 })
  out.push({ task: { kind: 'merge', ...plan.merge }, exclusive: true, cost: 0 })
  for (const sc of plan.scale) out.push({ task: { kind: 'scale', ...sc }, exclusive: true, cost: 0 })
  out.push({ task: { kind: 'packet-rate', seed: 1, ...plan.packetRate }, exclusive: true, cost: 0 })
  out.push({ task: { kind: 'real-cpu', ...plan.realCpu }, exclusive: true, cost: 0 })
  return out
}

/** Runs one task in a worker process; resolves with its result or its error. */
function runWorker(task: Task): Promise<TaskOutcome> {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const heap = task.kind === 'scale' && task.maxOldSpaceMiB !== undefined ? [`--max-old-space-size=${task.maxOldSpaceMiB}`] : []
    const child = spawn(process.execPath, ['--expose-gc', ...heap, workerPath, JSON.stringify(task)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let stdout = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => (stdout += d))
    child.on('error', (err) => resolve({ task, error: String(err), wallMs: performance.now() - t0 }))
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - t0
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX))
      if (code !== 0 || line === undefined) {
        resolve({ task, error: `worker exited with ${signal ?? `code ${code}`}`, wallMs })
        return
      }
      const out = JSON.parse(line.slice(RESULT_PREFIX.length)) as WorkerOutput
      resolve({ task, result: out.result, wallMs, otherCores: out.otherCores })
    })
  })
}

async function runAll(scheduled: Scheduled[], jobs: number): Promise<TaskOutcome[]> {
  const shared = scheduled.filter((s) => !s.exclusive).sort((a, b) => b.cost - a.cost)
  const alone = scheduled.filter((s) => s.exclusive)
  const outcomes: TaskOutcome[] = []
  const total = scheduled.length
  const finish = (o: TaskOutcome): void => {
    outcomes.push(o)
    const status = o.error === undefined ? 'done' : `FAILED (${o.error})`
    progress(`[${outcomes.length}/${total}] ${describeTask(o.task)}: ${status} in ${(o.wallMs / 1000).toFixed(1)} s`)
  }
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < shared.length) {
      const s = shared[next++]!
      progress(`start ${describeTask(s.task)}`)
      finish(await runWorker(s.task))
    }
  }
  await Promise.all(Array.from({ length: jobs }, lane))
  for (const s of alone) {
    progress(`start ${describeTask(s.task)} (alone)`)
    finish(await runWorker(s.task))
  }
  return outcomes
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  // The plots of the scale run go beside the report, in docs/bench/, and the report links them.
  const plan = makePlan(options.quick, path.join(path.dirname(options.out), 'docs', 'bench'))
  const scheduled = tasksOf(plan)
  const startedAt = new Date()
  const t0 = performance.now()
  progress(`${options.quick ? 'quick' : 'full'} run: ${scheduled.length} tasks, ${options.jobs} at a time`)
  const outcomes = await runAll(scheduled, options.jobs)
  const totalWallMs = performance.now() - t0
  const markdown = renderReport({ plan, outcomes, startedAt, totalWallMs, jobs: options.jobs, reportDir: path.dirname(options.out) })
  writeFileSync(options.out, markdown)
  progress(`wrote ${options.out} (${(totalWallMs / 1000).toFixed(0)} s)`)
  if (outcomes.some((o) => o.error !== undefined)) process.exitCode = 1
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
