/**
 * Membership and failure detection on the real engine in the simulator
 * (lan preset: 1 s probes, 500 ms probe timeout, 1 ms links).
 *
 * - detect: a formed cluster settles for 10 s, one member crashes; per run,
 *   the time to its first suspicion, the time until every live node marks it
 *   dead, each node's own time to do so, and any live member marked dead.
 * - member traffic: bytes of membership messages (Ping, Ack, PingReq, Nack,
 *   MemberGossip, JoinRequest, MemberSync) per node per second while nothing
 *   changes, after 10 s of settling.
 * - false positives: a formed cluster under uniform loss for a long run;
 *   members marked dead while alive (none crashes), suspicions and refutations.
 * - join: n nodes started together, each given the same single seed; time
 *   until every node sees n alive.
 */
import { MessageType } from '../src/codec/messages.js'
import type { EngineStats } from '../src/engine/stats.js'
import { MemberStatus } from '../src/membership/member.js'
import { Simulation } from '../src/sim/simulation.js'
import {
  type DetectResult,
  type DetectRun,
  type DetectTask,
  type FalsePositiveResult,
  type FalsePositiveTask,
  type FreezeResult,
  type FreezeTask,
  type MemberJoinResult,
  type MemberJoinTask,
  type MemberTrafficResult,
  type MemberTrafficTask,
  progress,
} from './common.js'

/** The message types of membership (SWIM, dissemination, join and sync). */
export const MEMBERSHIP_TYPES = [
  MessageType.Ping,
  MessageType.Ack,
  MessageType.PingReq,
  MessageType.Nack,
  MessageType.MemberGossip,
  MessageType.JoinRequest,
  MessageType.MemberSync,
]

/** Bytes of membership messages the given nodes have sent. */
export function membershipBytes(stats: readonly EngineStats[]): number {
  let b = 0
  for (const st of stats) for (const t of MEMBERSHIP_TYPES) b += st.bytesByType.get(t)
  return b
}

export function runDetect(task: DetectTask): DetectResult {
  const runs: DetectRun[] = []
  for (const seed of task.seeds) {
    const wall0 = performance.now()
    const sim = new Simulation({ seed })
    const nodes = sim.addCluster(task.n)
    sim.runFor(10_000)
    const victim = nodes[task.n - 1]!
    let firstSuspectMs: number | null = null
    const deadAt: number[] = []
    let falseDead = 0
    const crashAt = sim.now
    sim.onMemberEvent = (node, e, now) => {
      if (e.member.name === victim.name) {
        if (e.type === 'suspect' && firstSuspectMs === null) firstSuspectMs = now - crashAt
        if (e.type === 'dead') deadAt.push(now - crashAt)
      } else if (e.type === 'dead') {
        falseDead++
      }
      void node
    }
    sim.crash(victim)
    const others = nodes.filter((n) => n !== victim)
    const took = sim.runUntilTrue(() => others.every((n) => n.engine.membership.get(victim.name)?.status === MemberStatus.Dead), 60_000, 10)
    runs.push({ seed, firstSuspectMs, allDeadMs: took ?? null, nodeDeadMs: deadAt, falseDead, wallMs: performance.now() - wall0 })
    progress(`  detect n=${task.n} seed ${seed}: first suspicion ${firstSuspectMs} ms, all dead ${took} ms`)
  }
  return { kind: 'detect', n: task.n, runs }
}

export function runMemberTraffic(task: MemberTrafficTask): MemberTrafficResult {
  const wall0 = performance.now()
  const sim = new Simulation({ seed: task.seed })
  const nodes = sim.addCluster(task.n)
  sim.runFor(10_000)
  const bytesOf = (): number => membershipBytes(nodes.map((n) => n.engine.stats))
  const msgsOf = (): number => {
    let m = 0
    for (const n of nodes) for (const t of MEMBERSHIP_TYPES) m += n.engine.stats.sentByType.get(t)
    return m
  }
  const b0 = bytesOf()
  const m0 = msgsOf()
  sim.runFor(task.measureMs)
  const secs = task.measureMs / 1000
  return {
    kind: 'member-traffic',
    n: task.n,
    bytesPerNodePerSec: (bytesOf() - b0) / task.n / secs,
    messagesPerNodePerSec: (msgsOf() - m0) / task.n / secs,
    wallMs: performance.now() - wall0,
  }
}

export function runFalsePositives(task: FalsePositiveTask): FalsePositiveResult {
  const wall0 = performance.now()
  const sim = new Simulation({ seed: task.seed })
  sim.network.faults.loss = task.loss
  const nodes = sim.addCluster(task.n)
  let deadEvents = 0
  const accused = new Set<string>()
  sim.onMemberEvent = (_node, e) => {
    if (e.type === 'dead') {
      deadEvents++
      accused.add(e.member.name)
    }
  }
  sim.runFor(task.simMs)
  let suspicions = 0
  let refutations = 0
  for (const n of nodes) {
    suspicions += n.engine.membership.stats.suspicionsRaised
    refutations += n.engine.membership.stats.refutations
  }
  progress(`  false positives n=${task.n} loss ${task.loss}: ${deadEvents} dead events, ${suspicions} accusations`)
  return {
    kind: 'false-positives',
    n: task.n,
    loss: task.loss,
    simMs: task.simMs,
    deadEvents,
    membersMarkedDead: accused.size,
    accusations: suspicions,
    refutations,
    wallMs: performance.now() - wall0,
  }
}

export function runMemberJoin(task: MemberJoinTask): MemberJoinResult {
  const times: (number | null)[] = []
  for (const seed of task.seeds) {
    const sim = new Simulation({ seed })
    sim.addNode({ seeds: [] })
    for (let i = 1; i < task.n; i++) sim.addNode()
    const took = sim.runUntilTrue(() => sim.nodes.every((x) => x.engine.membership.table.count(MemberStatus.Alive) === task.n), 60_000, 10)
    times.push(took ?? null)
  }
  return { kind: 'member-join', n: task.n, ms: times }
}

export function runFreeze(task: FreezeTask): FreezeResult {
  let deadEvents = 0
  let frozenAccusations = 0
  let refuted = 0
  for (const seed of task.seeds) {
    const sim = new Simulation({ seed })
    const nodes = sim.addCluster(task.n)
    sim.onMemberEvent = (_node, e) => {
      if (e.type === 'dead') deadEvents++
    }
    sim.runFor(10_000)
    const frozen = nodes[7 % task.n]!
    sim.freeze(frozen, task.freezeMs)
    sim.runFor(30_000)
    frozenAccusations += frozen.engine.membership.stats.suspicionsRaised
    if (frozen.engine.membership.stats.refutations > 0) refuted++
  }
  return { kind: 'freeze', n: task.n, freezeMs: task.freezeMs, seeds: task.seeds.length, deadEvents, frozenAccusations, refuted }
}
