/**
 * Shared pieces of the benchmark suite: the task descriptions that the runner
 * hands to worker processes, their results, statistics and progress output.
 *
 * Every measurement runs in its own child process (`worker.ts`), so that peak
 * RSS and heap figures belong to that measurement alone and two tasks can run
 * on the two cores at once.
 */

/** Prefix of the result line a worker prints on stdout. */
export const RESULT_PREFIX = 'RESULT '

/** What a worker prints after RESULT_PREFIX. */
export interface WorkerOutput {
  readonly result: Result
  /** CPU the rest of the machine used during the task, in cores on average (undefined: not measurable here). */
  readonly otherCores: number | undefined
  readonly wallMs: number
}

/** Gossip interval of every simulated measurement (ms); "rounds" are virtual ms / this. */
export const INTERVAL_MS = 1000

// ---- tasks ------------------------------------------------------------------

/** One update spreading through a formed cluster of the real engine, one run per seed. */
export interface SpreadTask {
  readonly kind: 'spread'
  readonly n: number
  readonly fanout: number
  /** 'anti-entropy': eagerPush false; 'eager': defaults; 'push-only': eager push with no anti-entropy round. */
  readonly mode: SpreadMode
  readonly seeds: readonly number[]
  /** Gossip interval (ms); INTERVAL_MS unless set. Rounds are always counted in this run's interval. */
  readonly intervalMs?: number
}
export type SpreadMode = 'anti-entropy' | 'eager' | 'push-only'

/** The textbook models of push-pull gossip (no engine), over the same seeds. */
export interface TheoryTask {
  readonly kind: 'theory'
  readonly n: number
  readonly fanout: number
  readonly seeds: readonly number[]
}

/** Bytes per node per second: idle, while writing, idle again after settling. */
export interface TrafficTask {
  readonly kind: 'traffic'
  readonly n: number
  /** Peers per gossip round (the default, 3, unless set). */
  readonly fanout?: number
  /** Gossip interval (ms); INTERVAL_MS unless set. */
  readonly intervalMs?: number
  readonly seed: number
  readonly idleMs: number
  readonly writeMs: number
  readonly writesPerSec: number
}

/** Entries merged per second by one ClusterState; Delta messages decoded and applied per second. */
export interface MergeTask {
  readonly kind: 'merge'
  readonly entries: number
  readonly overwriteKeys: number
  readonly deltaMessages: number
  readonly reps: number
}

/** Heap bytes per key of a node holding `keys` keys (needs --expose-gc). */
export interface MemoryTask {
  readonly kind: 'memory'
  readonly keys: number
}

/** A new node joining a node that holds `keys` keys, until it holds them all. */
export interface JoinTask {
  readonly kind: 'join'
  readonly keys: number
  readonly seed: number
}

/** An idle formed cluster of `n` nodes for `simMs` virtual ms: wall time and peak RSS. */
/**
 * `grapevine sim` at scale: the same experiment the command runs (lan
 * preset, defaults), timed in a process of its own; with `plotsDir`, its
 * plots are written there for the report to link.
 */
export interface ScaleTask {
  readonly kind: 'scale'
  readonly n: number
  readonly simMs: number
  readonly seed: number
  /** Nodes crashed at `crashAtMs` (0: none). */
  readonly crash: number
  readonly crashAtMs: number
  readonly plotsDir?: string
  /** Which of the command's plots to keep (all when unset). */
  readonly plotNames?: readonly string[]
  /** Eager push (on unless false): off shows anti-entropy alone, the curve the theory describes. */
  readonly eagerPush?: boolean
  /** Heap limit of the worker (MiB), for the largest runs. */
  readonly maxOldSpaceMiB?: number
}

/** A crashed member: time to first suspicion and until every live node marks it dead. */
export interface DetectTask {
  readonly kind: 'detect'
  readonly n: number
  readonly seeds: readonly number[]
}

/** Membership bytes per node per second in an idle formed cluster. */
export interface MemberTrafficTask {
  readonly kind: 'member-traffic'
  readonly n: number
  readonly seed: number
  readonly measureMs: number
}

/** Live members marked dead under uniform message loss. */
export interface FalsePositiveTask {
  readonly kind: 'false-positives'
  readonly n: number
  readonly seed: number
  readonly loss: number
  readonly simMs: number
}

/** n nodes started together through one seed: until every node sees n alive. */
export interface MemberJoinTask {
  readonly kind: 'member-join'
  readonly n: number
  readonly seeds: readonly number[]
}

/** One member's process stopped for `freezeMs` (SIGSTOP), per seed: members marked dead. */
export interface FreezeTask {
  readonly kind: 'freeze'
  readonly n: number
  readonly freezeMs: number
  readonly seeds: readonly number[]
}

/** n real nodes in one process on loopback: join, idle membership traffic, crash detection. */
export interface RealClusterTask {
  readonly kind: 'real-cluster'
  readonly n: number
  readonly runs: number
}

/** memberlist's anchor harness (Go), for comparison in the same run. */
export interface AnchorTask {
  readonly kind: 'anchor'
  readonly n: number
  readonly runs: number
  /** First port (below Linux's ephemeral range); each run takes n + 10 after the previous run's. */
  readonly basePort: number
}

/** Packets one node handles per second (decode, merge, answer; sealed too), measured over a simulated cluster's real traffic. */
export interface PacketRateTask {
  readonly kind: 'packet-rate'
  readonly n: number
  readonly simMs: number
  readonly writesPerSec: number
  readonly seed: number
}

/** CPU per node and peak RSS of n real nodes in one process, idle and writing; plaintext and encrypted. */
export interface RealCpuTask {
  readonly kind: 'real-cpu'
  readonly n: number
  readonly settleMs: number
  readonly measureMs: number
  readonly writesPerSec: number
}

export type Task =
  | PacketRateTask
  | RealCpuTask
  | AnchorTask
  | RealClusterTask
  | FreezeTask
  | SpreadTask
  | TheoryTask
  | TrafficTask
  | MergeTask
  | MemoryTask
  | JoinTask
  | ScaleTask
  | DetectTask
  | MemberTrafficTask
  | FalsePositiveTask
  | MemberJoinTask

// ---- results ----------------------------------------------------------------

export interface SpreadRun {
  readonly seed: number
  /** Virtual ms from the write until the last node held it; null if it never did within the limit. */
  readonly ms: number | null
  /** Nodes holding the update at the end (n when complete). */
  readonly reached: number
  /** Virtual ms until half of the nodes held it. */
  readonly halfMs: number | null
  /** Share of nodes holding the update 20 ms after the write (eager push coverage). */
  readonly within20ms: number
  readonly wallMs: number
  readonly events: number
}

export interface SpreadResult {
  readonly kind: 'spread'
  readonly n: number
  readonly fanout: number
  readonly intervalMs: number
  readonly mode: SpreadMode
  readonly runs: SpreadRun[]
}

export interface TheoryResult {
  readonly kind: 'theory'
  readonly n: number
  readonly fanout: number
  /** Synchronous textbook push-pull, rounds until all informed, one per seed. */
  readonly sync: number[]
  /** The same protocol with asynchronous rounds (random phase per node, zero latency), rounds per seed. */
  readonly async: number[]
  /** Mean-field recurrence: first round at which P(all informed) >= 0.5 and >= 0.99. */
  readonly meanFieldP50: number
  readonly meanFieldP99: number
  /** log_{2f+1}(n) + log_{f+1}(ln n): the leading terms (Karp et al. 2000 for f = 1). */
  readonly formula: number
}

export interface TrafficPhase {
  /** Mean over nodes of (datagram + stream bytes out) per second. */
  readonly bytesPerNodePerSec: number
  /** The busiest node's bytes out per second. */
  readonly maxNodeBytesPerSec: number
  readonly datagramsPerNodePerSec: number
  readonly streamBytesShare: number
}

export interface TrafficResult {
  readonly kind: 'traffic'
  readonly n: number
  readonly fanout: number
  readonly intervalMs: number
  readonly idleMs: number
  readonly writeMs: number
  readonly writesPerSec: number
  readonly idleEmpty: TrafficPhase
  readonly writing: TrafficPhase
  readonly idleSettled: TrafficPhase
  /** Virtual ms after the last write until every node had the same state. */
  readonly settleMs: number | null
  readonly keys: number
  /** Distinct writing origins (one per writing node). */
  readonly origins: number
  /** (node, key) pairs not yet held when the writing phase ended, and 10 s later. */
  readonly missingAtEnd: number
  readonly missingAfter10s: number
  /** Of the pairs missing 10 s after the writes: their origin's position in name order (0-based) and count. */
  readonly missingByOriginRank: [number, number][]
  readonly wallMs: number
}

export interface MergeResult {
  readonly kind: 'merge'
  readonly entries: number
  /** Entries per second, best of `reps`, per scenario. */
  readonly distinctPerSec: number
  readonly overwritePerSec: number
  readonly stalePerSec: number
  /** Ceiling for comparison: Map.set of the same distinct keys with a slot-sized object, fresh Map. */
  readonly mapBaselinePerSec: number
  readonly overwriteKeys: number
  /** Delta datagrams decoded and applied by GossipEngine.receive. */
  readonly deltaMessagesPerSec: number
  readonly deltaEntriesPerSec: number
  readonly entriesPerDelta: number
  readonly deltaBytes: number
  readonly reps: number
}

export interface MemoryResult {
  readonly kind: 'memory'
  readonly keys: number
  readonly keyBytes: number
  readonly valueBytes: number
  /** Heap growth per key of the node that wrote the keys. */
  readonly heapBytesPerKey: number
  /** Heap growth per key of a node that received them (one Delta stream message). */
  readonly receivedHeapBytesPerKey: number
  readonly rssBytesPerKey: number
  readonly gcExposed: boolean
}

export interface JoinResult {
  readonly kind: 'join'
  readonly keys: number
  /** Virtual ms from the join until the new node held every key; null if never. */
  readonly virtualMs: number | null
  readonly wallMs: number
  readonly fillWallMs: number
  readonly streamBytes: number
  readonly streams: number
  readonly datagrams: number
  readonly converged: boolean
}

export interface ScaleResult {
  readonly kind: 'scale'
  readonly n: number
  readonly simMs: number
  readonly crash: number
  readonly eagerPush: boolean
  /** The command that runs the same experiment. */
  readonly command: string
  /** The whole experiment: cluster set-up, the run, the sampling (`wallMs` of the summary). */
  readonly wallMs: number
  readonly peakRssBytes: number
  readonly roundsToAll: number | null
  readonly timeTo99PctMs: number | null
  readonly messagesPerNodePerSec: number
  readonly bytesPerNodePerSec: number
  readonly detectionMs: { readonly p50: number; readonly p99: number; readonly samples: number; readonly undetected: number } | null
  readonly falsePositives: number
  readonly converged: boolean
  /** Plot files written (relative to `plotsDir`). */
  readonly plots: string[]
}

export interface DetectRun {
  readonly seed: number
  /** Virtual ms from the crash to the first suspicion of it anywhere. */
  readonly firstSuspectMs: number | null
  /** Virtual ms from the crash until every live node marked it dead; null if not within 60 s. */
  readonly allDeadMs: number | null
  /** Each node's own time to mark it dead. */
  readonly nodeDeadMs: number[]
  /** Dead events about members that were alive. */
  readonly falseDead: number
  readonly wallMs: number
}

export interface DetectResult {
  readonly kind: 'detect'
  readonly n: number
  readonly runs: DetectRun[]
}

export interface MemberTrafficResult {
  readonly kind: 'member-traffic'
  readonly n: number
  readonly bytesPerNodePerSec: number
  readonly messagesPerNodePerSec: number
  readonly wallMs: number
}

export interface FalsePositiveResult {
  readonly kind: 'false-positives'
  readonly n: number
  readonly loss: number
  readonly simMs: number
  /** Dead events (one per node that marked a member dead). */
  readonly deadEvents: number
  /** Distinct live members marked dead by anyone. */
  readonly membersMarkedDead: number
  readonly accusations: number
  readonly refutations: number
  readonly wallMs: number
}

export interface MemberJoinResult {
  readonly kind: 'member-join'
  readonly n: number
  /** Virtual ms per seed; null if not within 60 s. */
  readonly ms: (number | null)[]
}

export interface FreezeResult {
  readonly kind: 'freeze'
  readonly n: number
  readonly freezeMs: number
  readonly seeds: number
  /** Dead events anywhere (every member stayed up). */
  readonly deadEvents: number
  /** Accusations the frozen node made after it resumed. */
  readonly frozenAccusations: number
  /** Runs in which the frozen node was suspected and refuted. */
  readonly refuted: number
}

export interface AnchorResult {
  readonly kind: 'anchor'
  readonly n: number
  /** Why it did not run (harness or Go missing), else undefined. */
  readonly skipped: string | undefined
  /** Attempts that failed and were run again on other ports (the harness's own errors). */
  readonly failedAttempts?: readonly string[]
  readonly runs: {
    readonly joinMs: number
    readonly allDeadMs: number
    readonly firstSuspectMs: number
    /** memberlist's UDP + TCP payload bytes per node per second with 10 keys, idle. */
    readonly idleBytesPerNodePerSec: number
    readonly peakRssKib: number
  }[]
}

export interface RealClusterRun {
  readonly joinMs: number | null
  readonly idleBytesPerNodePerSec: number
  /** All bytes (membership and state gossip) per node per second, idle. */
  readonly idleTotalBytesPerNodePerSec: number
  readonly firstSuspectMs: number | null
  readonly allDeadMs: number | null
  readonly falseDead: number
}

export interface RealClusterResult {
  readonly kind: 'real-cluster'
  readonly n: number
  readonly runs: RealClusterRun[]
}

export interface PacketRateMode {
  /** Packets (datagrams and streams) handled by all nodes. */
  readonly packets: number
  /** Wall ms spent handling them: opening, engine.receive (decode, merge, answers encoded), sealing the answers. */
  readonly handleMs: number
  readonly packetsPerSec: number
  readonly bytesPerPacket: number
}

export interface PacketRateResult {
  readonly kind: 'packet-rate'
  readonly n: number
  readonly simMs: number
  readonly writesPerSec: number
  readonly plain: PacketRateMode
  readonly sealed: PacketRateMode
}

export interface RealCpuMode {
  /** CPU of the process per node, as a percentage of one core, idle and while writing. */
  readonly idleCpuPctPerNode: number
  readonly writingCpuPctPerNode: number
  /** Bytes sent per node per second, idle and writing (datagrams and streams). */
  readonly idleBytesPerNodePerSec: number
  readonly writingBytesPerNodePerSec: number
  readonly writes: number
  /** Whether every node held every write at the end. */
  readonly converged: boolean
}

export interface RealCpuResult {
  readonly kind: 'real-cpu'
  readonly n: number
  readonly measureMs: number
  readonly writesPerSec: number
  readonly plain: RealCpuMode
  readonly sealed: RealCpuMode
  /** Peak resident memory of the process (both modes, one after the other). */
  readonly peakRssBytes: number
}

export type Result =
  | PacketRateResult
  | RealCpuResult
  | AnchorResult
  | RealClusterResult
  | FreezeResult
  | SpreadResult
  | TheoryResult
  | TrafficResult
  | MergeResult
  | MemoryResult
  | JoinResult
  | ScaleResult
  | DetectResult
  | MemberTrafficResult
  | FalsePositiveResult
  | MemberJoinResult

// ---- statistics ---------------------------------------------------------------

export { percentile } from '../src/util/percentile.js'

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN
  let s = 0
  for (const v of values) s += v
  return s / values.length
}

export function seedList(count: number, base = 1): number[] {
  return Array.from({ length: count }, (_, i) => base + i)
}

// ---- output -------------------------------------------------------------------

const started = performance.now()

/** Progress on stderr (stdout of a worker carries its result). */
export function progress(message: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[bench ${s}s] ${message}\n`)
}

export function describeTask(t: Task): string {
  switch (t.kind) {
    case 'spread':
      return `spread ${t.mode} n=${t.n} fanout=${t.fanout}${t.intervalMs === undefined ? '' : ` interval=${t.intervalMs}ms`} seeds=${t.seeds.length === 1 ? t.seeds[0] : `${t.seeds[0]}..${t.seeds[t.seeds.length - 1]}`}`
    case 'theory':
      return `theory n=${t.n} fanout=${t.fanout}`
    case 'traffic':
      return `traffic n=${t.n}${t.fanout === undefined ? '' : ` fanout=${t.fanout}`}${t.intervalMs === undefined ? '' : ` interval=${t.intervalMs}ms`}`
    case 'merge':
      return `merge ${t.entries} entries`
    case 'memory':
      return `memory ${t.keys} keys`
    case 'join':
      return `join ${t.keys} keys`
    case 'scale':
      return `scale n=${t.n} ${t.simMs / 1000} sim-s`
    case 'detect':
      return `detect n=${t.n} seeds=${t.seeds.length}`
    case 'member-traffic':
      return `membership traffic n=${t.n}`
    case 'false-positives':
      return `false positives n=${t.n} loss=${t.loss} ${t.simMs / 1000} sim-s`
    case 'member-join':
      return `member join n=${t.n} seeds=${t.seeds.length}`
    case 'freeze':
      return `freeze ${t.freezeMs} ms n=${t.n} seeds=${t.seeds.length}`
    case 'real-cluster':
      return `real sockets n=${t.n} runs=${t.runs}`
    case 'anchor':
      return `memberlist anchor n=${t.n} runs=${t.runs}`
    case 'packet-rate':
      return `packet rate n=${t.n} ${t.simMs / 1000} sim-s`
    case 'real-cpu':
      return `real CPU n=${t.n}`
  }
}
