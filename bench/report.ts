/**
 * Renders BENCHMARKS.md from the results of one run. Every figure comes from
 * the results; targets are judged here against the measured numbers.
 */
import os from 'node:os'
import path from 'node:path'
import { pushOnceCoverage } from './theory.js'
import {
  INTERVAL_MS,
  type DetectResult,
  type FalsePositiveResult,
  type FreezeResult,
  type JoinResult,
  type MemberJoinResult,
  type MemberTrafficResult,
  type AnchorResult,
  type RealClusterResult,
  type MemoryResult,
  type MergeResult,
  type PacketRateResult,
  type RealCpuResult,
  type Result,
  type ScaleResult,
  type ScaleTask,
  type SpreadMode,
  type SpreadResult,
  type Task,
  type TrafficResult,
  mean,
  percentile,
} from './common.js'

export interface Plan {
  readonly quick: boolean
  readonly sizes: readonly number[]
  readonly fanouts: readonly number[]
  readonly seeds: readonly number[]
  /** Seeds at 10,000 nodes (empty when that size is not run). */
  readonly seedsAt10k: readonly number[]
  readonly trafficSizes: readonly number[]
  readonly traffic: { readonly idleMs: number; readonly writeMs: number; readonly writesPerSec: number }
  readonly merge: { readonly entries: number; readonly overwriteKeys: number; readonly deltaMessages: number; readonly reps: number }
  readonly keys: number
  readonly scale: readonly Omit<ScaleTask, 'kind'>[]
  /** Eager spread and traffic at every (fanout, interval) pair, at one size: the table for choosing them. */
  readonly grid: { readonly n: number; readonly fanouts: readonly number[]; readonly intervalsMs: readonly number[]; readonly seeds: readonly number[] }
  readonly packetRate: { readonly n: number; readonly simMs: number; readonly writesPerSec: number }
  readonly realCpu: { readonly n: number; readonly settleMs: number; readonly measureMs: number; readonly writesPerSec: number }
  readonly membership: {
    readonly detectSizes: readonly number[]
    readonly detectSeeds: readonly number[]
    readonly detectSeedsAt10k: readonly number[]
    readonly trafficSizes: readonly number[]
    readonly falsePositives: readonly { readonly loss: number; readonly simMs: number }[]
    readonly joinSizes: readonly number[]
    readonly joinSeeds: readonly number[]
    readonly freezeSeeds: readonly number[]
    readonly realSizes: readonly number[]
    readonly realRuns: number
  }
}

export interface TaskOutcome {
  readonly task: Task
  readonly result?: Result
  readonly error?: string
  readonly wallMs: number
  /** CPU the rest of the machine used while the task ran, in cores on average (Linux). */
  readonly otherCores?: number
}

export interface ReportInput {
  readonly plan: Plan
  readonly outcomes: readonly TaskOutcome[]
  readonly startedAt: Date
  readonly totalWallMs: number
  readonly jobs: number
  /** Where the report is written: plot links are relative to it. */
  readonly reportDir: string
}

// ---- formatting -----------------------------------------------------------------

const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–')
const fix = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '–')
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

function table(head: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const sep = head.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : ':---'))
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n')
}

type Verdict = 'PASS' | 'FAIL' | 'not measured'

interface TargetRow {
  readonly target: string
  readonly measured: string
  readonly verdict: Verdict
}

// ---- gathering ----------------------------------------------------------------

/** All runs of one spread configuration, merged across the tasks that ran it. */
function spreadRuns(outcomes: readonly TaskOutcome[], n: number, fanout: number, mode: SpreadMode, intervalMs = INTERVAL_MS): SpreadResult['runs'] {
  const runs: SpreadResult['runs'][number][] = []
  for (const o of outcomes) {
    const r = o.result
    if (r?.kind === 'spread' && r.n === n && r.fanout === fanout && r.mode === mode && r.intervalMs === intervalMs) runs.push(...r.runs)
  }
  return runs.sort((a, b) => a.seed - b.seed)
}

function resultsOf<K extends Result['kind']>(outcomes: readonly TaskOutcome[], kind: K): Extract<Result, { kind: K }>[] {
  return outcomes.map((o) => o.result).filter((r): r is Extract<Result, { kind: K }> => r?.kind === kind)
}

interface RoundStats {
  readonly count: number
  readonly complete: number
  readonly p50: number
  readonly p99: number
  readonly mean: number
  readonly min: number
  readonly max: number
}

/** Rounds (virtual ms / interval); an incomplete run counts as infinitely long. */
function roundStats(runs: SpreadResult['runs'], intervalMs = INTERVAL_MS): RoundStats {
  const rounds = runs.map((r) => (r.ms === null ? Infinity : r.ms / intervalMs))
  const finite = rounds.filter(Number.isFinite)
  return {
    count: runs.length,
    complete: finite.length,
    p50: percentile(rounds, 50),
    p99: percentile(rounds, 99),
    mean: finite.length === rounds.length ? mean(rounds) : Infinity,
    min: Math.min(...rounds),
    max: Math.max(...rounds),
  }
}

/**
 * Whether a timed task ran on a quiet machine: the CPU that everything else
 * (including the runner itself) used meanwhile, from /proc/stat. Above a
 * quarter of a core, other work may have inflated its wall-time figures.
 */
function cpuNote(outcomes: readonly TaskOutcome[], kind: Result['kind']): string {
  const o = outcomes.find((x) => x.result?.kind === kind)
  if (o?.otherCores === undefined) return ''
  const other = o.otherCores
  return (
    `While this ran, the rest of the machine used ${fix(other)} of its ${os.cpus().length} CPUs on average` +
    (other > 0.25 ? ' — **other work competed for the CPU, so these wall-time figures may be inflated.**' : ' (quiet).')
  )
}

function roundsCell(x: number): string {
  return x === Infinity ? 'incomplete' : fix(x)
}

// ---- sections -------------------------------------------------------------------

function header(input: ReportInput): string {
  const cpus = os.cpus()
  const model = cpus[0]?.model.trim() ?? 'unknown'
  const { plan } = input
  const lines = [
    '# Benchmarks',
    '',
    plan.quick
      ? '> **Quick smoke run** (`node dist/bench/run.js --quick`): small clusters and few seeds. These are not the reference figures; run `npm run bench` for them.'
      : '> Written by `npm run bench` (the benchmark suite in `bench/`). Every figure below was measured by that run; rerun it to update this file.',
    '',
    table(
      ['', ''],
      [
        ['Machine', `${model} × ${cpus.length}, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM`],
        ['OS', `${os.type()} ${os.release()} (${os.arch()})`],
        ['Node', process.version],
        ['Date', input.startedAt.toISOString()],
        ['Reproduce', plan.quick ? '`npm run build && node dist/bench/run.js --quick`' : '`npm run bench`'],
        ['Run time', `${secs(input.totalWallMs)} wall, ${input.jobs} worker process(es) at a time`],
      ],
      ['l', 'l'],
    ),
  ]
  return lines.join('\n')
}

function targets(input: ReportInput): TargetRow[] {
  const { outcomes } = input
  const rows: TargetRow[] = []
  for (const [n, limit] of [
    [100, 5],
    [1000, 7],
    [10_000, 8],
  ] as const) {
    const runs = spreadRuns(outcomes, n, 3, 'anti-entropy')
    const target = `Anti-entropy alone, fanout 3, ${int(n)} nodes: p99 ≤ ${limit} rounds`
    if (runs.length === 0) {
      rows.push({ target, measured: '–', verdict: 'not measured' })
      continue
    }
    const s = roundStats(runs)
    rows.push({ target, measured: `${roundsCell(s.p99)} rounds (${s.count} seeds)`, verdict: s.p99 <= limit ? 'PASS' : 'FAIL' })
  }
  const traffic = resultsOf(outcomes, 'traffic').filter((t) => t.fanout === 3 && t.intervalMs === INTERVAL_MS)
  const small = traffic.find((t) => t.n === 100)
  const big = traffic.find((t) => t.n === 10_000)
  const ratioTarget = 'Idle traffic per node at 10,000 nodes ≤ 1.5 × that at 100 nodes'
  if (small !== undefined && big !== undefined) {
    const settled = big.idleSettled.bytesPerNodePerSec / small.idleSettled.bytesPerNodePerSec
    const empty = big.idleEmpty.bytesPerNodePerSec / small.idleEmpty.bytesPerNodePerSec
    rows.push({
      target: ratioTarget,
      measured: `${fix(settled)}× settled (${fix(big.idleSettled.bytesPerNodePerSec, 1)} vs ${fix(small.idleSettled.bytesPerNodePerSec, 1)} B/s); ${fix(empty)}× empty state`,
      verdict: settled <= 1.5 && empty <= 1.5 ? 'PASS' : 'FAIL',
    })
  } else {
    rows.push({ target: ratioTarget, measured: '–', verdict: 'not measured' })
  }
  const merge = resultsOf(outcomes, 'merge')[0]
  const mergeTarget = 'ClusterState merges ≥ 1,000,000 entries/s (distinct keys and overwrites)'
  if (merge !== undefined) {
    const worst = Math.min(merge.distinctPerSec, merge.overwritePerSec)
    rows.push({
      target: mergeTarget,
      measured: `${int(merge.distinctPerSec)}/s distinct, ${int(merge.overwritePerSec)}/s overwrites`,
      verdict: worst >= 1_000_000 ? 'PASS' : 'FAIL',
    })
  } else {
    rows.push({ target: mergeTarget, measured: '–', verdict: 'not measured' })
  }
  return rows
}

function membershipTargets(outcomes: readonly TaskOutcome[]): TargetRow[] {
  const rows: TargetRow[] = []
  const detect = resultsOf(outcomes, 'detect')
  const runsAt = (n: number): DetectResult['runs'] => detect.filter((d) => d.n === n).flatMap((d) => d.runs)
  for (const [n, limit] of [
    [100, 5000],
    [1000, 7000],
  ] as const) {
    const runs = runsAt(n)
    const target = `Crash detection, ${int(n)} nodes: median time until every live node marks it dead ≤ ${limit / 1000} s`
    if (runs.length === 0) {
      rows.push({ target, measured: '–', verdict: 'not measured' })
      continue
    }
    const all = runs.map((r) => r.allDeadMs ?? Infinity)
    const med = percentile(all, 50)
    rows.push({ target, measured: `${secs(med)} median, ${secs(percentile(all, 99))} p99 (${runs.length} seeds)`, verdict: med <= limit ? 'PASS' : 'FAIL' })
  }
  const firsts = [...runsAt(100), ...runsAt(1000)].map((r) => r.firstSuspectMs ?? Infinity)
  const firstTarget = 'First suspicion of a crashed member ≤ 2 s median (100 and 1,000 nodes)'
  rows.push(
    firsts.length === 0
      ? { target: firstTarget, measured: '–', verdict: 'not measured' }
      : { target: firstTarget, measured: `${secs(percentile(firsts, 50))} median (${firsts.length} runs)`, verdict: percentile(firsts, 50) <= 2000 ? 'PASS' : 'FAIL' },
  )
  const join = resultsOf(outcomes, 'member-join').find((j) => j.n === 100)
  const joinTarget = 'Join: 100 nodes started together through one seed see 100 alive: median ≤ 3 s, no run over 10 s'
  if (join === undefined) rows.push({ target: joinTarget, measured: '–', verdict: 'not measured' })
  else {
    const ms = join.ms.map((x) => x ?? Infinity)
    const med = percentile(ms, 50)
    const max = Math.max(...ms)
    rows.push({ target: joinTarget, measured: `${secs(med)} median, ${secs(max)} max (${ms.length} seeds)`, verdict: med <= 3000 && max <= 10_000 ? 'PASS' : 'FAIL' })
  }
  const real = resultsOf(outcomes, 'real-cluster').find((r) => r.n === 100)
  const realTarget = 'Real sockets (100 nodes in one process, loopback): crash detection median ≤ 5 s; join median ≤ 3 s, none over 10 s'
  if (real === undefined) rows.push({ target: realTarget, measured: '–', verdict: 'not measured' })
  else {
    const det = real.runs.map((r) => r.allDeadMs ?? Infinity)
    const join = real.runs.map((r) => r.joinMs ?? Infinity)
    const ok = percentile(det, 50) <= 5000 && percentile(join, 50) <= 3000 && Math.max(...join) <= 10_000
    rows.push({
      target: realTarget,
      measured: `detection ${secs(percentile(det, 50))} median; join ${secs(percentile(join, 50))} median, ${secs(Math.max(...join))} max (${real.runs.length} runs)`,
      verdict: ok ? 'PASS' : 'FAIL',
    })
  }
  const fp = resultsOf(outcomes, 'false-positives').find((f) => f.loss === 0.1)
  const fpTarget = 'False positives: no live member marked dead, 100 nodes, 10% loss, 1 simulated hour'
  if (fp === undefined) rows.push({ target: fpTarget, measured: '–', verdict: 'not measured' })
  else {
    rows.push({
      target: fpTarget,
      measured: `${fp.membersMarkedDead} members marked dead in ${secs(fp.simMs)} (${int(fp.accusations)} suspicions, all refuted)`,
      verdict: fp.membersMarkedDead === 0 && fp.simMs >= 3_600_000 ? 'PASS' : fp.membersMarkedDead === 0 ? 'not measured' : 'FAIL',
    })
  }
  const fr = resultsOf(outcomes, 'freeze')[0]
  const frTarget = 'A process frozen for 3 s (100 nodes): nobody marked dead, the frozen node accuses no one'
  if (fr === undefined) rows.push({ target: frTarget, measured: '–', verdict: 'not measured' })
  else {
    rows.push({
      target: frTarget,
      measured: `${fr.deadEvents} dead events, ${fr.frozenAccusations} accusations by it, over ${fr.seeds} seeds (suspected and refuted in ${fr.refuted})`,
      verdict: fr.deadEvents === 0 && fr.frozenAccusations === 0 ? 'PASS' : 'FAIL',
    })
  }
  const mt = resultsOf(outcomes, 'member-traffic')
  const small = mt.find((x) => x.n === 100)
  const big = mt.find((x) => x.n === 10_000)
  const mtTarget = 'Idle membership traffic per node at 10,000 nodes ≤ 1.5 × that at 100 nodes'
  if (small === undefined || big === undefined) rows.push({ target: mtTarget, measured: '–', verdict: 'not measured' })
  else {
    const ratio = big.bytesPerNodePerSec / small.bytesPerNodePerSec
    rows.push({ target: mtTarget, measured: `${fix(ratio)}× (${fix(big.bytesPerNodePerSec, 1)} vs ${fix(small.bytesPerNodePerSec, 1)} B/s)`, verdict: ratio <= 1.5 ? 'PASS' : 'FAIL' })
  }
  return rows
}

function membershipSection(input: ReportInput): string {
  const { outcomes, plan } = input
  const detect = resultsOf(outcomes, 'detect')
  const sizes = [...new Set(detect.map((d) => d.n))].sort((a, b) => a - b)
  const detectRows = sizes.map((n) => {
    const runs = detect.filter((d) => d.n === n).flatMap((d) => d.runs)
    const first = runs.map((r) => r.firstSuspectMs ?? Infinity)
    const all = runs.map((r) => r.allDeadMs ?? Infinity)
    const perNode = runs.flatMap((r) => r.nodeDeadMs)
    const falseDead = runs.reduce((a, r) => a + r.falseDead, 0)
    return [
      int(n),
      String(runs.length),
      secs(percentile(first, 50)),
      secs(percentile(all, 50)),
      secs(percentile(all, 99)),
      secs(percentile(perNode, 50)),
      secs(percentile(perNode, 99)),
      String(falseDead),
    ]
  })
  const traffic = resultsOf(outcomes, 'member-traffic').sort((a, b) => a.n - b.n) as MemberTrafficResult[]
  const fps = resultsOf(outcomes, 'false-positives').sort((a, b) => a.loss - b.loss) as FalsePositiveResult[]
  const joins = resultsOf(outcomes, 'member-join').sort((a, b) => a.n - b.n) as MemberJoinResult[]
  const fr = resultsOf(outcomes, 'freeze')[0] as FreezeResult | undefined
  const real = resultsOf(outcomes, 'real-cluster').sort((a, b) => a.n - b.n) as RealClusterResult[]
  return [
    '## 7. Membership and failure detection',
    '',
    'The real engine in the simulator, `lan` preset (probe every 1 s, probe timeout 500 ms, 3 indirect checks,',
    'suspicion timeout from 1.25 × max(2, log10 N) s down from 6× that as accusers confirm), 1 ms links.',
    'A formed cluster settles for 10 s; then its last member crashes.',
    '',
    '### Crash detection',
    '',
    table(
      ['nodes', 'runs', 'first suspicion p50', 'all live nodes mark it dead: p50', 'p99', 'per node: p50', 'p99', 'live members marked dead'],
      detectRows,
    ),
    '',
    'ARCHITECTURE.md gives the detection time as a formula of the settings.',
    '',
    '### Membership traffic when nothing changes',
    '',
    'Bytes of membership messages (Ping, Ack, PingReq, Nack, MemberGossip, JoinRequest, MemberSync) sent per node per',
    'second, measured over 20 s after 10 s of settling. The state gossip probe carries the 8-byte membership',
    'fingerprint besides (counted in section 3, not here).',
    '',
    table(
      ['nodes', 'bytes / node / s', 'messages / node / s'],
      traffic.map((t) => [int(t.n), fix(t.bytesPerNodePerSec, 1), fix(t.messagesPerNodePerSec, 2)]),
    ),
    '',
    '### False positives under loss',
    '',
    '100 nodes, every datagram lost with the given probability, nobody crashes.',
    '',
    table(
      ['loss', 'simulated time', 'live members marked dead', 'dead events', 'suspicions raised', 'refutations', 'wall'],
      fps.map((f) => [`${f.loss * 100}%`, secs(f.simMs), String(f.membersMarkedDead), String(f.deadEvents), int(f.accusations), int(f.refutations), secs(f.wallMs)]),
    ),
    '',
    fr === undefined
      ? ''
      : `A process frozen for ${fr.freezeMs / 1000} s (100 nodes, ${fr.seeds} seeds; its datagrams wait and are read after its first late timer, as Node.js does): ${fr.deadEvents} dead events; the frozen node raised ${fr.frozenAccusations} suspicions after resuming; it was suspected and refuted in ${fr.refuted} of the runs.`,
    '',
    '### Join',
    '',
    `n nodes started at the same instant, each given the first as its only seed; time until every node sees n alive (${plan.membership.joinSeeds.length} seeds).`,
    '',
    table(
      ['nodes', 'median', 'max'],
      joins.map((j) => {
        const ms = j.ms.map((x) => x ?? Infinity)
        return [int(j.n), secs(percentile(ms, 50)), secs(Math.max(...ms))]
      }),
    ),
    '',
    '### On real sockets',
    '',
    'n nodes in this process on loopback UDP/TCP, `lan` preset, started at once through one seed; after 15 s the last',
    'one stops without leaving (its sockets close). Membership bytes as above, over 10 s of idle time.',
    '',
    table(
      ['nodes', 'runs', 'join p50', 'join max', 'idle membership B/node/s', 'idle, all B/node/s', 'first suspicion p50', 'all mark it dead p50', 'max', 'live marked dead'],
      real.map((r) => {
        const join = r.runs.map((x) => x.joinMs ?? Infinity)
        const det = r.runs.map((x) => x.allDeadMs ?? Infinity)
        const first = r.runs.map((x) => x.firstSuspectMs ?? Infinity)
        return [
          int(r.n),
          String(r.runs.length),
          secs(percentile(join, 50)),
          secs(Math.max(...join)),
          fix(mean(r.runs.map((x) => x.idleBytesPerNodePerSec)), 1),
          fix(mean(r.runs.map((x) => x.idleTotalBytesPerNodePerSec)), 1),
          secs(percentile(first, 50)),
          secs(percentile(det, 50)),
          secs(Math.max(...det)),
          String(r.runs.reduce((a, x) => a + x.falseDead, 0)),
        ]
      }),
    ),
    '',
    anchorComparison(real, resultsOf(outcomes, 'anchor') as AnchorResult[]),
  ].join('\n')
}

/** grapevine on real sockets beside memberlist's anchor harness, both measured by this run. */
function anchorComparison(real: readonly RealClusterResult[], anchors: readonly AnchorResult[]): string {
  if (anchors.length === 0) return ''
  const lines = [
    '### Against memberlist (same machine, same run)',
    '',
    'HashiCorp memberlist 0.2.2, LAN preset, N nodes in one Go process on loopback, through the anchor harness',
    '(`../shared/anchors/memberlist/run.sh -n N -config lan`), run by this bench right after grapevine\'s real-socket',
    'runs above. memberlist\'s idle bytes include its 10 keys\' push/pull (TCP); grapevine\'s "all" column includes its state',
    'gossip of 10 keys likewise. Ratios are memberlist / grapevine (above 1: grapevine faster or smaller).',
    '',
  ]
  const rows: string[][] = []
  for (const a of anchors) {
    if (a.skipped !== undefined) {
      lines.push(`- ${int(a.n)} nodes: memberlist not run (${a.skipped}).`)
      continue
    }
    for (const f of a.failedAttempts ?? []) lines.push(`- ${int(a.n)} nodes: a memberlist attempt failed and was run again (${f}).`)
    const g = real.find((r) => r.n === a.n)
    const ml = (f: (x: AnchorResult['runs'][number]) => number): number => percentile(a.runs.map(f), 50)
    const gv = (f: (x: RealClusterResult['runs'][number]) => number | null): number => (g === undefined ? NaN : percentile(g.runs.map((x) => f(x) ?? Infinity), 50))
    const row = (what: string, m: number, v: number, unit: (x: number) => string): string[] => [what, unit(v), unit(m), fix(m / v)]
    rows.push(
      row(`${int(a.n)} nodes: crash detection, all nodes (median)`, ml((x) => x.allDeadMs), gv((x) => x.allDeadMs), secs),
      row(`${int(a.n)} nodes: first suspicion (median)`, ml((x) => x.firstSuspectMs), gv((x) => x.firstSuspectMs), secs),
      row(`${int(a.n)} nodes: join, all see N alive (median)`, ml((x) => x.joinMs), gv((x) => x.joinMs), secs),
      row(`${int(a.n)} nodes: idle bytes per node per second`, ml((x) => x.idleBytesPerNodePerSec), gv((x) => x.idleTotalBytesPerNodePerSec), (x) => fix(x, 1)),
    )
  }
  if (rows.length > 0) lines.push(table(['', 'grapevine', 'memberlist', 'ratio'], rows))
  return lines.join('\n')
}

function targetSection(input: ReportInput): string {
  const rows = [...targets(input), ...scaleTargets(input.outcomes), ...membershipTargets(input.outcomes)]
  return [
    '## Targets',
    '',
    table(
      ['Target', 'Measured', 'Result'],
      rows.map((r) => [r.target, r.measured, r.verdict === 'PASS' ? '**PASS**' : r.verdict === 'FAIL' ? '**FAIL**' : r.verdict]),
      ['l', 'l', 'l'],
    ),
  ].join('\n')
}

function antiEntropySection(input: ReportInput): string {
  const { plan, outcomes } = input
  const theory = resultsOf(outcomes, 'theory')
  const rows: string[][] = []
  const gaps: string[][] = []
  for (const n of plan.sizes) {
    for (const f of plan.fanouts) {
      const runs = spreadRuns(outcomes, n, f, 'anti-entropy')
      const th = theory.find((t) => t.n === n && t.fanout === f)
      if (runs.length === 0 && th === undefined) continue
      const s = roundStats(runs)
      const sync50 = th === undefined ? NaN : percentile(th.sync, 50)
      const sync99 = th === undefined ? NaN : percentile(th.sync, 99)
      const async50 = th === undefined ? NaN : percentile(th.async, 50)
      const async99 = th === undefined ? NaN : percentile(th.async, 99)
      rows.push([
        int(n),
        String(f),
        String(s.count),
        roundsCell(s.p50),
        roundsCell(s.p99),
        roundsCell(s.mean),
        `${roundsCell(s.min)}–${roundsCell(s.max)}`,
        th === undefined ? '–' : fix(th.formula),
        th === undefined ? '–' : `${th.meanFieldP50} / ${th.meanFieldP99}`,
        th === undefined ? '–' : `${sync50} / ${sync99}`,
        th === undefined ? '–' : `${fix(async50)} / ${fix(async99)}`,
      ])
      if (th !== undefined && s.count > 0) gaps.push(gapRow(n, f, s, sync50, sync99, async50, async99))
    }
  }
  const lines = [
    '## 1. One update by anti-entropy alone',
    '',
    `Engine option \`eagerPush: false\`, \`gossipIntervalMs\` = ${INTERVAL_MS}, formed cluster (\`Simulation.addCluster\`), 1 ms links, no loss.`,
    'A random node writes one key at a random instant (2–3 s after start, so relative to the nodes\' random round phases);',
    '**rounds = virtual ms from the write until the last node holds the key / 1000** (each node\'s arrival time comes from `sim.onChange`).',
    `Seeds 1–${plan.seeds.length} at ${plan.sizes.filter((n) => n < 10_000).map(int).join(', ')} nodes` +
      (plan.seedsAt10k.length > 0 ? `, seeds 1–${plan.seedsAt10k.length} at 10,000 nodes.` : '.'),
    'p50 and p99 are nearest-rank percentiles over the seeds (with 20 seeds p99 is the slowest run).',
    '',
    'Theory beside it (`bench/theory.ts`):',
    '- **log₂f₊₁ n + log_f₊₁ ln n**: the leading terms of random push-pull with fanout f. For f = 1 this is Karp, Schindelhauer,',
    '  Shenker, Vöcking, *Randomized Rumor Spreading* (FOCS 2000): log₃ n + O(log log n) rounds. For fanout f: while few nodes',
    '  know, each informed node pushes to f peers and is pulled from by about f callers, so the informed set grows ×(1 + 2f) a',
    '  round (log₂f₊₁ n rounds); at the end an uninformed node stays so only if its f calls all miss (uᶠ) and no one pushes to it',
    '  (≈ e^−f), so the uninformed share falls as u → u^(f+1)·e^−f (log_f₊₁ ln n rounds). The O(1) term is not included.',
    '- **mean field p50 / p99**: the expected number of uninformed nodes iterated exactly for finite n (f distinct contacts),',
    '  with P(all informed) ≈ exp(−E[uninformed]); whole synchronous rounds.',
    '- **sync model p50 / p99**: Monte Carlo of the textbook synchronous protocol over the same seeds (every round every node',
    '  contacts f uniformly random others; informed status crosses each contact both ways; the write just before round 1).',
    '- **async model p50 / p99**: the same protocol with the engine\'s round timing: each node calls at its own random phase',
    '  within every interval, exchanges are instantaneous, the write falls at a random instant; measured like the engine.',
    '',
    table(
      ['N', 'fanout', 'seeds', 'engine p50', 'engine p99', 'engine mean', 'engine min–max', 'log₂f₊₁ n + log_f₊₁ ln n', 'mean field p50 / p99', 'sync model p50 / p99', 'async model p50 / p99'],
      rows,
    ),
    '',
    '### Engine against the models',
    '',
    'The engine\'s rounds are asynchronous: every node starts its rounds at its own random phase within the interval. A node',
    'that learns the update early in an interval passes it on at its own phase later in the *same* interval, so the update',
    'can be relayed several times per interval; in the synchronous model news learned in a round waits for the next round.',
    'The async model is the textbook protocol with only that timing changed. Where the engine differs from the synchronous',
    'model by more than 1 round but agrees with the async model, the gap is the round model, not the engine (an exchange\'s',
    'four legs of 1 ms, probe, digest, delta+digest and delta, are negligible against the 1,000 ms interval).',
    '',
    table(['N', 'fanout', 'engine − sync p50', 'engine − sync p99', 'engine − async p50', 'engine − async p99', 'gap > 1 round explained?'], gaps, ['l', 'r', 'r', 'r', 'r', 'r', 'l']),
  ]
  return lines.join('\n')
}

/** One row comparing the engine with the synchronous and asynchronous models. */
function gapRow(n: number, f: number, s: RoundStats, sync50: number, sync99: number, async50: number, async99: number): string[] {
  const d = (x: number): string => (Number.isFinite(x) ? (x > 0 ? '+' : '') + x.toFixed(2) : '–')
  const syncGap = Math.max(Math.abs(s.p50 - sync50), Math.abs(s.p99 - sync99))
  const asyncGap = Math.max(Math.abs(s.p50 - async50), Math.abs(s.p99 - async99))
  let verdict: string
  if (s.complete < s.count) verdict = `**${s.count - s.complete} of ${s.count} runs incomplete**`
  else if (syncGap <= 1) verdict = 'no gap > 1'
  else if (asyncGap <= 1) verdict = 'yes: asynchronous rounds (async model within 1 round)'
  else verdict = '**no: more than 1 round from the async model too**'
  return [int(n), String(f), d(s.p50 - sync50), d(s.p99 - sync99), d(s.p50 - async50), d(s.p99 - async99), verdict]
}

function eagerSection(input: ReportInput): string {
  const { plan, outcomes } = input
  const rows: string[][] = []
  for (const n of plan.sizes) {
    const runs = spreadRuns(outcomes, n, 3, 'eager')
    const pushOnly = spreadRuns(outcomes, n, 3, 'push-only')
    if (runs.length === 0 && pushOnly.length === 0) continue
    const s = roundStats(runs)
    const ms = runs.filter((r) => r.ms !== null).map((r) => r.ms!)
    const cover = pushOnly.map((r) => r.reached / n)
    const allByPush = pushOnly.filter((r) => r.reached === n).length
    rows.push([
      int(n),
      String(s.count),
      roundsCell(s.p50),
      roundsCell(s.p99),
      `${int(percentile(ms, 50))} / ${int(percentile(ms, 99))}`,
      `${fix(100 * mean(runs.map((r) => r.within20ms)), 1)} %`,
      pushOnly.length === 0 ? '–' : `${fix(100 * mean(cover), 2)} % (min ${fix(100 * Math.min(...cover), 2)} %)`,
      pushOnly.length === 0 ? '–' : `${allByPush} of ${pushOnly.length}`,
      `${fix(100 * pushOnceCoverage(3), 1)} %`,
    ])
  }
  const largest = plan.sizes[plan.sizes.length - 1]!
  const largestCover = spreadRuns(outcomes, largest, 3, 'push-only').map((r) => r.reached / largest)
  const largestMatchesTheory = largestCover.length > 0 && Math.abs(mean(largestCover) - pushOnceCoverage(3)) < 0.02
  return [
    '## 2. One update with eager push (default settings)',
    '',
    'Defaults (fanout 3, eager push on: the writer pushes to 3 peers and each receiver forwards a fresh write to 3 more, for',
    '⌈log₃ N⌉ + 1 hops), 1 ms links, same procedure and seeds as section 1. Time is in gossip intervals (1,000 ms).',
    '"Within 20 ms": share of nodes holding the update 20 ms after the write (pushes take 1 ms a hop; anti-entropy waits for',
    'round phases, so this is almost all push). "Push alone": the same write with the gossip interval set beyond the run, so',
    'no anti-entropy round happens: the share of nodes the pushes reach by themselves, and the runs in which they reached all.',
    `"Theory": a node forwards a fresh write once, to 3 random peers, so the share never reached is the s solving`,
    `s = e^(−3(1−s)) (infect-and-die rumor spreading, large N): ${fix(100 * (1 - pushOnceCoverage(3)), 1)} % of the nodes are left for anti-entropy.` +
      (largestMatchesTheory
        ? ' The measured push coverage matches it, so at every size but the smallest some nodes wait for their next exchange,' +
          ' up to about one interval: that, not the pushes, sets the time to reach every node.'
        : ''),
    '',
    table(['N', 'seeds', 'p50 (intervals)', 'p99 (intervals)', 'p50 / p99 (ms)', 'within 20 ms (mean)', 'push alone reaches (mean)', 'push alone reached all', 'theory, push alone'], rows),
  ].join('\n')
}

function trafficSection(input: ReportInput): string {
  const { plan, outcomes } = input
  const traffic = resultsOf(outcomes, 'traffic')
    .filter((t) => t.fanout === 3 && t.intervalMs === INTERVAL_MS)
    .sort((a, b) => a.n - b.n)
  const rows = traffic.map((t: TrafficResult) => [
    int(t.n),
    fix(t.idleEmpty.bytesPerNodePerSec, 1),
    fix(t.idleSettled.bytesPerNodePerSec, 1),
    fix(t.idleSettled.datagramsPerNodePerSec, 2),
    fix(t.writing.bytesPerNodePerSec, 1),
    int(t.writing.maxNodeBytesPerSec),
    `${fix(100 * t.writing.streamBytesShare, 1)} %`,
    t.settleMs === null ? 'no' : `${int(t.settleMs)} ms`,
  ])
  const small = traffic.find((t) => t.n === 100)
  const ratios = traffic
    .filter((t) => small !== undefined && t.n !== 100)
    .map((t) => `${int(t.n)} nodes: ${fix(t.idleSettled.bytesPerNodePerSec / small!.idleSettled.bytesPerNodePerSec)}× (settled), ${fix(t.idleEmpty.bytesPerNodePerSec / small!.idleEmpty.bytesPerNodePerSec)}× (empty)`)
  const notes: string[] = []
  for (const t of traffic) {
    if (t.missingAfter10s === 0) continue
    const ranks = t.missingByOriginRank.map(([r, c]) => `${r} (${c})`).join(', ')
    const maxRank = Math.max(...t.missingByOriginRank.map(([r]) => r))
    notes.push(
      `${int(t.n)} nodes: ${int(t.missingAtEnd)} (node, key) pairs were missing when the writes ended and ${int(t.missingAfter10s)} ` +
        `still 10 s later; those belong to origins at name-order positions ${ranks} of ${t.origins} (0-based; pairs in brackets).` +
        (maxRank < t.origins / 4
          ? ' They are all among the first origins in name order: with more origins than fit one digest datagram, the opening' +
            ' digest page (`openingDigestPage` in src/engine/reconciliation.ts) is a window starting at a uniformly random origin' +
            ' that does not wrap around, so an origin at position p is in the window with probability about (p + 1) / origins,' +
            ' and the initiator\'s answering page covers only half the datagram. Updates from the first origins in name order' +
            ' are therefore repaired far more slowly than the rest.'
          : ''),
    )
  }
  return [
    '## 3. Traffic per node',
    '',
    'Bytes each node sends per second (`network.traffic`: `datagramBytesOut + streamBytesOut`, averaged over nodes), default',
    `settings, 1 ms links, seed 1. Idle: ${secs(plan.traffic.idleMs)} measured after every node has run its first rounds;`,
    `"empty" before any write, "settled" after the writing phase once every node holds the same state. Writing: for`,
    `${secs(plan.traffic.writeMs)}, each second ${plan.traffic.writesPerSec} random nodes each write one new key at a random instant`,
    '(eager push on). Settle: virtual time after the writing phase until all state hashes were equal (checked every 500 ms).',
    '',
    table(['N', 'idle, empty (B/node/s)', 'idle, settled (B/node/s)', 'idle datagrams/node/s', 'writing (B/node/s)', 'writing, busiest node (B/s)', 'writing, stream share', 'settled after'], rows),
    '',
    ratios.length > 0 ? `Idle traffic relative to 100 nodes: ${ratios.join('; ')}.` : '',
    ...(notes.length > 0 ? ['', 'Slow settling:', '', ...notes.map((x) => `- ${x}`)] : []),
  ].join('\n')
}

function mergeSection(input: ReportInput): string {
  const m = resultsOf(input.outcomes, 'merge')[0]
  if (m === undefined) return '## 4. Merge throughput\n\nNot measured (the task failed; see below).'
  const r: MergeResult = m
  return [
    '## 4. Merge throughput (one node, no simulator)',
    '',
    `\`ClusterState.merge\` of ${int(r.entries)} small entries (9-character keys and values, 16 origins), changes drained every`,
    `1,024 merges; best of ${r.reps}. "Overwrites": the entries cycle over ${int(r.overwriteKeys)} keys, so every merge replaces a held`,
    'version. "Duplicates": the distinct-key entries merged again into the filled state (every merge is stale).',
    `"Delta datagrams": \`GossipEngine.receive\` of encoded \`Delta\` datagrams (${fix(r.deltaBytes, 0)} bytes, ${fix(r.entriesPerDelta, 1)} entries each):`,
    'decode, checks, merge, watermark.',
    '',
    table(
      ['Scenario', 'per second'],
      [
        ['merge, distinct keys', `${int(r.distinctPerSec)} entries`],
        ['merge, overwrites', `${int(r.overwritePerSec)} entries`],
        ['merge, duplicates (stale)', `${int(r.stalePerSec)} entries`],
        ['for comparison: `Map.set` of the distinct keys with a slot-sized object', `${int(r.mapBaselinePerSec)} entries`],
        ['Delta datagrams decoded + applied', `${int(r.deltaMessagesPerSec)} messages = ${int(r.deltaEntriesPerSec)} entries`],
      ],
    ),
    '',
    cpuNote(input.outcomes, 'merge'),
  ].join('\n')
}

function bulkSection(input: ReportInput): string {
  const mem = resultsOf(input.outcomes, 'memory')[0] as MemoryResult | undefined
  const join = resultsOf(input.outcomes, 'join')[0] as JoinResult | undefined
  const lines = ['## 5. A node holding many keys', '']
  if (mem !== undefined) {
    lines.push(
      `Heap growth (\`process.memoryUsage().heapUsed\` after \`global.gc()\`${mem.gcExposed ? '' : ' — **gc was not exposed, figures are rough**'}) divided by`,
      `${int(mem.keys)} keys of ${mem.keyBytes} characters with values of ${mem.valueBytes} characters, key and value strings included.`,
      '',
      table(
        ['Node', 'heap bytes per key'],
        [
          ['wrote the keys itself (`GossipEngine.set`)', int(mem.heapBytesPerKey)],
          ['received them (one `Delta` stream message)', int(mem.receivedHeapBytesPerKey)],
          ['RSS growth per key, writer (rough)', int(mem.rssBytesPerKey)],
        ],
      ),
      '',
    )
  }
  if (join !== undefined) {
    lines.push(
      `Join: simulator with two nodes, 1 ms links; node "holder" writes ${int(join.keys)} keys, then node "joiner" starts with it as its`,
      'seed. Measured from the join until the joiner holds every key. The simulated network has latency but no bandwidth',
      'limit: the virtual time is waiting for a round plus round trips; the wall time is the encoding, decoding and merging.',
      '',
      table(
        ['Figure', 'value'],
        [
          ['virtual time to hold every key', join.virtualMs === null ? 'never (within 120 s)' : `${int(join.virtualMs)} ms (${fix(join.virtualMs / INTERVAL_MS)} intervals)`],
          ['wall time of that part of the simulation', `${int(join.wallMs)} ms`],
          ['stream transfers / bytes', `${join.streams} / ${int(join.streamBytes)} B`],
          ['datagrams', String(join.datagrams)],
          ['states equal afterwards', join.converged ? 'yes' : '**no**'],
          ['wall time to fill the holder (for reference)', `${int(join.fillWallMs)} ms`],
        ],
      ),
      '',
      cpuNote(input.outcomes, 'join'),
    )
  }
  return lines.join('\n')
}

/** The scale runs: the 10,000-node target run and the largest run. */
function scaleResults(outcomes: readonly TaskOutcome[]): ScaleResult[] {
  return (resultsOf(outcomes, 'scale') as ScaleResult[]).sort((a, b) => a.n - b.n)
}

/** Targets of `grapevine sim` at scale: 10,000 nodes for 60 s under 60 s and 4 GiB; 100,000 nodes run. */
function scaleTargets(outcomes: readonly TaskOutcome[]): TargetRow[] {
  const runs = scaleResults(outcomes)
  const rows: TargetRow[] = []
  const t10k = '`grapevine sim`, 10,000 nodes, 60 simulated seconds, lan preset: < 60 s wall and < 4 GiB'
  const s = runs.find((r) => r.n === 10_000 && r.simMs === 60_000 && r.eagerPush && r.crash === 0)
  if (s === undefined) rows.push({ target: t10k, measured: '–', verdict: 'not measured' })
  else {
    rows.push({
      target: t10k,
      measured: `${secs(s.wallMs)} wall, ${mib(s.peakRssBytes)} peak RSS`,
      verdict: s.wallMs < 60_000 && s.peakRssBytes < 4 * 2 ** 30 ? 'PASS' : 'FAIL',
    })
  }
  const t100k = '`grapevine sim` runs 100,000 nodes'
  const big = runs.find((r) => r.n === 100_000)
  if (big === undefined) rows.push({ target: t100k, measured: '–', verdict: 'not measured' })
  else {
    rows.push({
      target: t100k,
      measured: `${big.simMs / 1000} simulated s in ${secs(big.wallMs)}, ${mib(big.peakRssBytes)} peak RSS; first write everywhere in ${big.roundsToAll === null ? 'never' : `${fix(big.roundsToAll)} rounds`}`,
      verdict: big.roundsToAll !== null && big.converged ? 'PASS' : 'FAIL',
    })
  }
  return rows
}

function scaleSection(input: ReportInput): string {
  const runs = scaleResults(input.outcomes)
  if (runs.length === 0) return '## 6. `grapevine sim` at scale\n\nNot measured (the tasks failed; see below).'
  const detection = (r: ScaleResult): string =>
    r.detectionMs === null
      ? '–'
      : r.detectionMs.samples === 0
        ? `none within the run (${int(r.detectionMs.undetected)} pending)`
        : `${secs(r.detectionMs.p50)} / ${secs(r.detectionMs.p99)} (${int(r.detectionMs.samples)} observations, ${int(r.detectionMs.undetected)} not yet)`
  const rows = runs.map((r) => [
    int(r.n),
    r.eagerPush ? 'on' : 'off',
    `${r.simMs / 1000} s`,
    r.crash > 0 ? String(r.crash) : '–',
    secs(r.wallMs),
    fix(r.wallMs / r.simMs),
    mib(r.peakRssBytes),
    r.roundsToAll === null ? 'never' : fix(r.roundsToAll),
    fix(r.messagesPerNodePerSec, 2),
    fix(r.bytesPerNodePerSec, 1),
    detection(r),
    String(r.falsePositives),
    r.converged ? 'yes' : '**no**',
  ])
  const lines = [
    '## 6. `grapevine sim` at scale',
    '',
    'The experiment `grapevine sim` runs (the production engine under the virtual clock, `lan` preset, fanout 3, 1 s',
    'interval, eager push unless said, 1 ms links, a formed cluster, one write at 1 s), each in a process of its own, run alone. Wall',
    'time is the whole experiment (cluster set-up, the run, the sampling); peak RSS is the process maximum',
    '(`process.resourceUsage().maxRSS`), Node itself included. "Wall / simulated" below 1 is faster than real time.',
    '',
    table(
      ['N', 'eager push', 'simulated', 'crashed', 'wall', 'wall / simulated', 'peak RSS', 'first write: rounds to all', 'messages/node/s', 'B/node/s', 'detection p50 / p99', 'false positives', 'converged'],
      rows,
    ),
    '',
    'Each row again by hand (the same seed gives the same result, but for wall time and memory):',
    '',
    ...runs.map((r) => `- \`${r.command}\``),
    '',
  ]
  const plotDir = input.plan.scale.find((x) => x.plotsDir !== undefined)?.plotsDir ?? ''
  const rel = (file: string): string => path.relative(input.reportDir, path.join(plotDir, file)).split(path.sep).join('/')
  for (const r of runs.filter((x) => x.plots.length > 0)) {
    const captions: Record<string, string> = {
      epidemic: r.eagerPush
        ? 'The first write spreading, with eager push (the default): most nodes hold it within milliseconds; beside it, the mean-field curve of random push-pull alone, for scale'
        : 'The first write spreading by anti-entropy alone, beside the mean-field curve of random push-pull at the same fanout (whole synchronous rounds; the engine\'s rounds start at random phases, so it runs ahead of them, as section 1 explains)',
      traffic: r.crash > 0 ? 'Bytes sent per node per second: the crashes, their suspicion and the death notices spreading' : 'Bytes sent per node per second over the run',
      detection: `Time until each live node marked each of the ${r.crash} crashed nodes dead`,
    }
    lines.push(`Plots of the ${int(r.n)}-node run with eager push ${r.eagerPush ? 'on' : 'off'}${r.crash > 0 ? ` and ${r.crash} crashes` : ''} (\`${r.command.replace(/^.*grapevine sim/, 'grapevine sim')} --out DIR\` draws the same; SVG and PNG):`, '')
    for (const png of r.plots.filter((f) => f.endsWith('.png'))) {
      const name = png.replace(/^sim-\d+(-anti-entropy|-crash)?-/, '').replace(/\.png$/, '')
      const svg = png.replace(/\.png$/, '.svg')
      lines.push(`**${captions[name] ?? name}** ([SVG](${rel(svg)}))`, '', `![${name}](${rel(png)})`, '')
    }
  }
  const alone = input.outcomes.filter((o) => o.result?.kind === 'scale')
  for (const o of alone) {
    if (o.otherCores === undefined) continue
    const r = o.result as ScaleResult
    lines.push(`While the ${int(r.n)}-node run (${r.simMs / 1000} s, eager push ${r.eagerPush ? 'on' : 'off'}) ran, the rest of the machine used ${fix(o.otherCores)} of its ${os.cpus().length} CPUs on average${o.otherCores > 0.25 ? ' — **other work competed for the CPU, so its wall time may be inflated.**' : ' (quiet).'}`)
  }
  return lines.join('\n')
}

/** Rounds × interval: the time a choice of interval buys, from the rounds measured at the default interval. */
function choosingSection(input: ReportInput): string {
  const { plan, outcomes } = input
  const g = plan.grid
  const intervals = [...g.intervalsMs].sort((a, b) => a - b)
  const ms = (x: number): string => (x === Infinity ? 'incomplete' : x >= 10_000 ? `${fix(x / 1000, 0)} s` : x >= 1000 ? `${fix(x / 1000, 1)} s` : `${int(x)} ms`)
  // A: time to every node (p99), eager push on, per size and fanout, from the measured rounds at the default interval.
  const timeRows: string[][] = []
  for (const n of plan.sizes.filter((x) => x >= 100)) {
    for (const fanout of plan.fanouts) {
      const eager = spreadRuns(outcomes, n, fanout, 'eager')
      const ae = spreadRuns(outcomes, n, fanout, 'anti-entropy')
      if (eager.length === 0) continue
      const e = roundStats(eager)
      const a = roundStats(ae)
      timeRows.push([int(n), String(fanout), String(e.count), fix(e.p99), ...intervals.map((i) => ms(e.p99 * i)), ae.length === 0 ? '–' : fix(a.p99)])
    }
  }
  // B: what it costs: idle and writing traffic at the grid size, per fanout and interval.
  const traffic = resultsOf(outcomes, 'traffic').filter((t) => t.n === g.n)
  const costRows: string[][] = []
  for (const fanout of g.fanouts) {
    const cell = (i: number, pick: (t: TrafficResult) => number): string => {
      const t = traffic.find((x) => x.fanout === fanout && x.intervalMs === i)
      return t === undefined ? '–' : int(pick(t))
    }
    costRows.push([String(fanout), ...intervals.map((i) => `${cell(i, (t) => t.idleSettled.bytesPerNodePerSec)} / ${cell(i, (t) => t.writing.bytesPerNodePerSec)}`)])
  }
  // C: the check: at the grid size, the time measured at each interval against rounds at the default × interval.
  const checkRows: string[][] = []
  let worst = 0
  for (const fanout of g.fanouts) {
    const base = roundStats(spreadRuns(outcomes, g.n, fanout, 'eager'))
    const cells = intervals.map((i) => {
      if (i === INTERVAL_MS) return `${ms(base.p99 * i)} (reference)`
      const runs = spreadRuns(outcomes, g.n, fanout, 'eager', i)
      if (runs.length === 0) return '–'
      const measured = roundStats(runs, i).p99 * i
      const derived = base.p99 * i
      if (Number.isFinite(measured) && Number.isFinite(derived)) worst = Math.max(worst, Math.abs(measured - derived) / i)
      return `${ms(measured)} (${ms(derived)})`
    })
    checkRows.push([String(fanout), ...cells])
  }
  const w = plan.traffic
  return [
    '## 9. Choosing the gossip interval and fanout',
    '',
    'The two levers of state dissemination: every `gossipIntervalMs` each node opens an anti-entropy exchange with `fanout`',
    'random peers, and a fresh write is pushed to `fanout` peers per hop (eager push, on by default). A write reaches every',
    'node in a number of *rounds* that depends on N and the fanout, not on the interval, as long as an exchange (four',
    'one-way trips) is short against the interval; so the time is rounds × interval. Traffic grows with the fanout and',
    'with 1 / interval. Membership (SWIM probes, `lan` preset) is a separate, fixed cost per node, included below.',
    '',
    `**Time for a write to reach every node (p99, eager push on)** = p99 rounds (measured at the ${int(INTERVAL_MS)} ms interval,`,
    'sections 1 and 2, same seeds) × interval. Last column: the same with eager push off (anti-entropy alone), in rounds.',
    '',
    table(['N', 'fanout', 'seeds', 'p99 rounds', ...intervals.map((i) => `interval ${ms(i)}`), 'anti-entropy alone, p99 rounds'], timeRows),
    '',
    `**What it costs: bytes per node per second** at ${int(g.n)} nodes, measured at each pair (idle with the state settled /`,
    `while ${w.writesPerSec} writes per second land on random nodes; section 3 shows how little this changes with N).`,
    '',
    table(['fanout', ...intervals.map((i) => `interval ${ms(i)}`)], costRows),
    '',
    `**Check: does time scale with the interval?** At ${int(g.n)} nodes, eager push on, ${g.seeds.length} seeds per cell: the p99`,
    `time measured at each interval, and in brackets the p99 rounds at ${int(INTERVAL_MS)} ms × that interval. Largest difference:`,
    `${fix(worst)} rounds.`,
    '',
    table(['fanout', ...intervals.map((i) => `interval ${ms(i)}`)], checkRows),
    '',
    'How to read it: pick the largest interval whose time in the first table meets how fresh your data must be, then the',
    'fanout whose cost in the second table you can afford. With eager push on, most nodes hold a write within',
    'milliseconds (section 2) and the p99 is set by the few the pushes missed, who wait for their next exchange: about one',
    'interval. Raising the fanout shortens anti-entropy (last column) more than it shortens the eager p99.',
  ].join('\n')
}

function runtimeSection(input: ReportInput): string {
  const rate = resultsOf(input.outcomes, 'packet-rate')[0] as PacketRateResult | undefined
  const cpu = resultsOf(input.outcomes, 'real-cpu')[0] as RealCpuResult | undefined
  const lines = ['## 8. Real network runtime and encryption', '']
  if (rate !== undefined) {
    lines.push(
      `Packets one node handles per second: a simulated cluster of ${int(rate.n)} nodes (production engine, real codec) runs`,
      `${rate.simMs / 1000} simulated seconds with ${rate.writesPerSec} writes/s; every node is timed around each packet it receives:`,
      'opening it (sealed), `engine.receive` (decode, checks, merge, membership, answers encoded) and sealing the answers.',
      'Plaintext, then sealed (AES-256-GCM), same seed, same process: the ratio is the cost of encryption on this machine.',
      '',
      table(
        ['Mode', 'packets handled', 'mean bytes', 'handling time', 'packets per second per node', 'ratio'],
        [
          ['plaintext', int(rate.plain.packets), int(rate.plain.bytesPerPacket), `${int(rate.plain.handleMs)} ms`, int(rate.plain.packetsPerSec), '1.00'],
          [
            'sealed',
            int(rate.sealed.packets),
            int(rate.sealed.bytesPerPacket),
            `${int(rate.sealed.handleMs)} ms`,
            int(rate.sealed.packetsPerSec),
            fix(rate.sealed.packetsPerSec / rate.plain.packetsPerSec),
          ],
        ],
      ),
      '',
      cpuNote(input.outcomes, 'packet-rate'),
      '',
    )
  }
  if (cpu !== undefined) {
    const row = (name: string, m: RealCpuResult['plain']): string[] => [
      name,
      `${fix(m.idleCpuPctPerNode)} %`,
      `${fix(m.writingCpuPctPerNode)} %`,
      int(m.idleBytesPerNodePerSec),
      int(m.writingBytesPerNodePerSec),
      `${int(m.writes)} (${m.converged ? 'all held everywhere' : '**not all held**'})`,
    ]
    lines.push(
      `CPU of ${int(cpu.n)} real nodes in one process on loopback UDP/TCP (lan preset, default gossip: 1 s, fanout 3), measured`,
      `over ${cpu.measureMs / 1000} s idle, then ${cpu.measureMs / 1000} s with ${cpu.writesPerSec} writes/s spread over the nodes; the process's user + system`,
      'time divided by the nodes and the wall time (a share of one core per node). Plaintext, then encrypted, in the same process.',
      '',
      table(
        ['Mode', 'CPU per node, idle', `CPU per node, ${cpu.writesPerSec} writes/s`, 'message B/node/s idle', 'message B/node/s writing', 'writes'],
        [row('plaintext', cpu.plain), row('encrypted', cpu.sealed)],
      ),
      '',
      'Bytes are the messages the engines sent, before sealing (a sealed packet adds 46 bytes plus the encoded label).',
      '',
      `Peak RSS of that process (${int(cpu.n)} nodes, both runs one after the other, Node itself included): ${mib(cpu.peakRssBytes)}.`,
      '',
      cpuNote(input.outcomes, 'real-cpu'),
    )
  }
  if (rate === undefined && cpu === undefined) lines.push('Not measured (the tasks failed; see below).')
  return lines.join('\n')
}

function failures(input: ReportInput): string {
  const failed = input.outcomes.filter((o) => o.error !== undefined)
  if (failed.length === 0) return ''
  return ['## Failed tasks', '', ...failed.map((o) => `- \`${JSON.stringify(o.task)}\`: ${o.error}`)].join('\n')
}

export function renderReport(input: ReportInput): string {
  const parts = [
    header(input),
    targetSection(input),
    antiEntropySection(input),
    eagerSection(input),
    trafficSection(input),
    mergeSection(input),
    bulkSection(input),
    scaleSection(input),
    membershipSection(input),
    runtimeSection(input),
    choosingSection(input),
    failures(input),
  ]
  return `${parts.filter((p) => p !== '').join('\n\n')}\n`
}
