/**
 * CPU and memory of real nodes: n grapevine nodes in this process on
 * loopback (lan preset, default gossip settings), first plaintext, then
 * encrypted. For each: settle, then CPU of the process over `measureMs`
 * idle, then over `measureMs` with writes at `writesPerSec` spread over the
 * nodes; then every node must hold every write. CPU is the process's user +
 * system time, divided by n and by the wall time: per node, as a share of
 * one core. Peak RSS is the process's maximum resident set.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Grapevine, generateKey } from '../src/index.js'
import { waitFor } from '../src/util/wait.js'
import { type RealCpuMode, type RealCpuResult, type RealCpuTask, progress } from './common.js'

function cpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

function bytesOut(nodes: readonly Grapevine[]): number {
  let b = 0
  for (const n of nodes) b += n.stats.bytesOut + n.stats.streamBytesOut
  return b
}

async function measure(task: RealCpuTask, sealed: boolean): Promise<RealCpuMode> {
  const encryption = sealed ? { encryption: { keys: [generateKey()] } } : {}
  const nodes: Grapevine[] = []
  try {
    const tag = sealed ? 's' : 'p'
    const first = await Grapevine.start({ name: `${tag}0`, bind: '127.0.0.1:0', ...encryption })
    nodes.push(first)
    const rest = await Promise.all(
      Array.from({ length: task.n - 1 }, (_, i) =>
        Grapevine.start({ name: `${tag}${i + 1}`, bind: '127.0.0.1:0', seeds: [first.address], joinTimeoutMs: 0, ...encryption }),
      ),
    )
    nodes.push(...rest)
    await waitFor(() => nodes.every((n) => n.members().filter((m) => m.status === 'alive').length === task.n), 60_000, 50)
    await sleep(task.settleMs)
    const secs = task.measureMs / 1000
    let c0 = cpuMs()
    let b0 = bytesOut(nodes)
    await sleep(task.measureMs)
    const idleCpuPctPerNode = ((cpuMs() - c0) / task.measureMs / task.n) * 100
    const idleBytesPerNodePerSec = (bytesOut(nodes) - b0) / task.n / secs
    c0 = cpuMs()
    b0 = bytesOut(nodes)
    const t0 = performance.now()
    let writes = 0
    while (performance.now() - t0 < task.measureMs) {
      const due = Math.floor(((performance.now() - t0) / 1000) * task.writesPerSec)
      for (; writes < due; writes++) nodes[writes % nodes.length]!.set(`cpu/${writes}`, `value-${writes}`)
      await sleep(10)
    }
    const wallMs = performance.now() - t0
    const writingCpuPctPerNode = ((cpuMs() - c0) / wallMs / task.n) * 100
    const writingBytesPerNodePerSec = (bytesOut(nodes) - b0) / task.n / (wallMs / 1000)
    const converged = await waitFor(() => nodes.every((n) => n.entries({ prefix: 'cpu/' }).length === writes), 30_000, 200)
    progress(
      `  real CPU ${sealed ? 'sealed' : 'plain'} n=${task.n}: idle ${idleCpuPctPerNode.toFixed(2)} %/node, ` +
        `writing ${writingCpuPctPerNode.toFixed(2)} %/node (${writes} writes, ${converged ? 'all held' : 'NOT all held'})`,
    )
    return { idleCpuPctPerNode, writingCpuPctPerNode, idleBytesPerNodePerSec, writingBytesPerNodePerSec, writes, converged }
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
}

export async function runRealCpu(task: RealCpuTask): Promise<RealCpuResult> {
  const plain = await measure(task, false)
  const sealed = await measure(task, true)
  return {
    kind: 'real-cpu',
    n: task.n,
    measureMs: task.measureMs,
    writesPerSec: task.writesPerSec,
    plain,
    sealed,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  }
}
