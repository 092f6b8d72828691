/**
 * Membership targets on real sockets: n grapevine nodes in this process on
 * loopback UDP/TCP, `lan` preset (as memberlist's anchor benchmark runs n
 * memberlist nodes in one process on loopback).
 *
 * Per run:
 * 1. join: n nodes started at once, each with the first as its only seed;
 *    time until every node sees n alive;
 * 2. idle membership traffic: bytes of membership messages per node per second
 *    over 10 s;
 * 3. crash: the last node stops without leaving (its sockets close); time to
 *    the first suspicion anywhere and until every other node marks it dead;
 *    members wrongly marked dead.
 * Every wait is bounded; a run that does not finish in time reports null.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Grapevine } from '../src/index.js'
import { waitFor } from '../src/util/wait.js'
import { membershipBytes } from './membership.js'
import { type RealClusterResult, type RealClusterRun, type RealClusterTask, progress } from './common.js'


function allBytes(nodes: readonly Grapevine[]): number {
  let b = 0
  for (const n of nodes) b += n.stats.bytesOut + n.stats.streamBytesOut
  return b
}

const aliveCount = (n: Grapevine): number => n.members().filter((m) => m.status === 'alive').length

async function oneRun(task: RealClusterTask, run: number): Promise<RealClusterRun> {
  const nodes: Grapevine[] = []
  try {
    const first = await Grapevine.start({ name: `r${run}-0`, bind: '127.0.0.1:0', preset: 'lan' })
    nodes.push(first)
    const t0 = performance.now()
    const rest = await Promise.all(
      Array.from({ length: task.n - 1 }, (_, i) =>
        Grapevine.start({ name: `r${run}-${i + 1}`, bind: '127.0.0.1:0', seeds: [first.address], preset: 'lan', joinTimeoutMs: 0 }),
      ),
    )
    nodes.push(...rest)
    const joined = await waitFor(() => nodes.every((n) => aliveCount(n) === task.n), 60_000, 10)
    const joinMs = joined ? performance.now() - t0 : null
    await sleep(5_000)
    // Ten keys, as memberlist's anchor holds, then idle.
    for (let k = 0; k < 10; k++) nodes[k % nodes.length]!.set(`key-${k}`, `value-${k}`)
    await sleep(5_000)
    const b0 = membershipBytes(nodes.map((n) => n.stats))
    const a0 = allBytes(nodes)
    const w0 = performance.now()
    await sleep(10_000)
    const idleSecs = (performance.now() - w0) / 1000
    const idleBytesPerNodePerSec = (membershipBytes(nodes.map((n) => n.stats)) - b0) / task.n / idleSecs
    const idleTotalBytesPerNodePerSec = (allBytes(nodes) - a0) / task.n / idleSecs
    const victim = nodes.pop()!
    const others = nodes
    let firstSuspectMs: number | null = null
    let falseDead = 0
    const crashAt = performance.now()
    for (const n of others) {
      n.on('member', (e) => {
        if (e.member.name === victim.name && e.type === 'suspect' && firstSuspectMs === null) firstSuspectMs = performance.now() - crashAt
        if (e.member.name !== victim.name && e.type === 'dead') falseDead++
      })
    }
    await victim.stop()
    const detected = await waitFor(() => others.every((n) => n.members().find((m) => m.name === victim.name)?.status === 'dead'), 60_000, 10)
    const allDeadMs = detected ? performance.now() - crashAt : null
    progress(`  real n=${task.n} run ${run}: join ${joinMs?.toFixed(0)} ms, first suspicion ${firstSuspectMs}, all dead ${allDeadMs?.toFixed(0)} ms`)
    return { joinMs, idleBytesPerNodePerSec, idleTotalBytesPerNodePerSec, firstSuspectMs, allDeadMs, falseDead }
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
}

export async function runRealCluster(task: RealClusterTask): Promise<RealClusterResult> {
  const runs: RealClusterRun[] = []
  for (let r = 0; r < task.runs; r++) runs.push(await oneRun(task, r))
  return { kind: 'real-cluster', n: task.n, runs }
}
