/**
 * Runs one benchmark task in its own process: `node --expose-gc worker.js <task JSON>`.
 * Progress goes to stderr; the result is the last stdout line, prefixed `RESULT `.
 */
import { readFileSync } from 'node:fs'
import { runAnchor } from './anchor.js'
import { runJoin, runMemory } from './bulk.js'
import { RESULT_PREFIX, type Result, type Task, type WorkerOutput } from './common.js'
import { runSpread } from './dissemination.js'
import { runDetect, runFalsePositives, runFreeze, runMemberJoin, runMemberTraffic } from './membership.js'
import { runMerge } from './merge-throughput.js'
import { runPacketRate } from './packet-rate.js'
import { runRealCluster } from './real-cluster.js'
import { runRealCpu } from './real-cpu.js'
import { runScale } from './scale.js'
import { runTheory } from './theory.js'
import { runTraffic } from './traffic.js'

export function runTask(task: Task): Result | Promise<Result> {
  switch (task.kind) {
    case 'spread':
      return runSpread(task)
    case 'theory':
      return runTheory(task)
    case 'traffic':
      return runTraffic(task)
    case 'merge':
      return runMerge(task)
    case 'memory':
      return runMemory(task)
    case 'join':
      return runJoin(task)
    case 'scale':
      return runScale(task)
    case 'detect':
      return runDetect(task)
    case 'member-traffic':
      return runMemberTraffic(task)
    case 'false-positives':
      return runFalsePositives(task)
    case 'member-join':
      return runMemberJoin(task)
    case 'freeze':
      return runFreeze(task)
    case 'real-cluster':
      return runRealCluster(task)
    case 'anchor':
      return runAnchor(task)
    case 'packet-rate':
      return runPacketRate(task)
    case 'real-cpu':
      return runRealCpu(task)
  }
}

/** Busy CPU time of the whole machine in ms (Linux /proc/stat; USER_HZ = 100), or undefined. */
function machineBusyMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!
    return Number.isFinite(busy) ? busy * 10 : undefined
  } catch {
    return undefined
  }
}

function ownCpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const arg = process.argv[2]
if (arg !== undefined) {
  const task = JSON.parse(arg) as Task
  const wall0 = performance.now()
  const busy0 = machineBusyMs()
  const own0 = ownCpuMs()
  const result = await runTask(task)
  const busy1 = machineBusyMs()
  const wallMs = performance.now() - wall0
  // CPU the rest of the machine used meanwhile, in cores on average.
  const otherCores = busy0 === undefined || busy1 === undefined ? undefined : Math.max(0, busy1 - busy0 - (ownCpuMs() - own0)) / wallMs
  const line: WorkerOutput = { result, otherCores, wallMs }
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(line)}\n`)
}
