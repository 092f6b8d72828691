/**
 * Runs chaos scenarios from inside the lab's ctl namespace (started there by
 * `main.ts` with `ip netns exec`): for each scenario it starts one agent per
 * host, runs the workload and the timed faults, stops the faults, waits for
 * convergence, reads every agent's final keys and members, and judges the
 * guarantees (checks.ts). Prints one `RESULT {json}` line per scenario on
 * stdout; progress goes to stderr.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SeededRandom } from '../src/util/random.js'
import { AgentHost, request } from './agent-host.js'
import { type FinalView, type KeyState, type Timeline, runChecks } from './checks.js'
import { type LabLayout, heal, loss, partition } from './lab.js'
import { type Scenario, type TimedStep, scenarioByName } from './scenarios.js'
import { Workload } from './workload.js'

export const RESULT_PREFIX = 'RESULT '
const CONVERGE_LIMIT_MS = 30_000

export interface DriverInput {
  readonly layout: LabLayout
  readonly scenarios: readonly string[]
  /** Length of each scenario (at least the scenario's own minimum). */
  readonly durationMs: number
  /** A soak: repeat the scenarios (next seeds) until this much time has passed; undefined: one pass. */
  readonly totalMs?: number
  readonly seed: number
  readonly dataRoot: string
  readonly opsPerSec: number
  /** Where the agents' logs of a failed scenario are kept (see ChaosOptions.logsDir). */
  readonly logsDir?: string
}

export interface ScenarioResult {
  readonly scenario: string
  readonly seed: number
  readonly hosts: number
  readonly durationMs: number
  readonly ops: number
  readonly writesAcked: number
  readonly deletesAcked: number
  readonly unknownOutcome: number
  readonly writesLost: number
  readonly resurrections: number
  /** Keys restarted agents came back with from their data dir below a delete acknowledged before they started (stale reads until caught up; not a violation). */
  readonly staleAtReturn: number
  /** Lives whose start view was read. */
  readonly startViews: number
  /** Restarts on a data dir whose snapshot the cross-life resurrection check judged. */
  readonly snapshotsJudged: number
  readonly falseDeaths: number
  readonly deathsDeclared: number
  readonly convergedAfterMs: number | null
  readonly peakRssBytes: number
  /** The largest RSS growth over an agent's last life (see CheckResult.rssGrowth). */
  readonly rssGrowth: { readonly agent: string; readonly earlyBytes: number; readonly lateBytes: number } | null
  /** Warnings the agents logged, by message, summed (e.g. a snapshot older than the retention, refused for a full transfer). */
  readonly warnings: Record<string, number>
  readonly violations: { readonly check: string; readonly detail: string }[]
  readonly ok: boolean
}

function say(text: string): void {
  process.stderr.write(`[chaos] ${text}\n`)
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function waitFormed(agents: readonly AgentHost[], limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs
  for (;;) {
    const views = await Promise.all(agents.map((a) => request(a.http, 'GET', '/v1/status')))
    const formed = views.every((v) => (v?.json as { members?: { alive?: number } } | undefined)?.members?.alive === agents.length)
    if (formed) return
    if (Date.now() > deadline) {
      const seen = agents.map((a, i) => `${a.name}: ${JSON.stringify((views[i]?.json as { members?: unknown } | undefined)?.members ?? 'no answer')}`)
      const logs = agents.map((a) => `${a.name}: ${a.logs.slice(-5).map((l) => JSON.stringify(l)).join(" | ")}`)
      throw new Error(`the cluster did not form within ${limitMs / 1000} s (members seen: ${seen.join('; ')}; last log lines: ${logs.join('; ')})`)
    }
    await sleep(200)
  }
}

/** ms until every running agent reports the same state hash and converged: true, or null after the limit. */
async function waitConverged(agents: readonly AgentHost[], limitMs: number): Promise<number | null> {
  const t0 = Date.now()
  for (;;) {
    const running = agents.filter((a) => a.state === 'running')
    const views = await Promise.all(running.map((a) => request(a.http, 'GET', '/v1/status')))
    const hashes = new Set(views.map((v) => (v?.json as { stateHash?: string } | undefined)?.stateHash))
    const all = views.every((v) => (v?.json as { cluster?: { converged?: boolean } } | undefined)?.cluster?.converged === true)
    if (running.length > 0 && hashes.size === 1 && !hashes.has(undefined) && all) return Date.now() - t0
    if (Date.now() - t0 > limitMs) return null
    await sleep(250)
  }
}

async function readFinal(a: AgentHost): Promise<FinalView> {
  const kv = await request(a.http, 'GET', '/v1/kv', undefined, 10_000)
  const readAt = Date.now()
  const members = await request(a.http, 'GET', '/v1/members', undefined, 10_000)
  const keys = new Map<string, KeyState>()
  for (const e of (kv?.json as { key: string; version: KeyState['version']; expiresAt?: number }[] | undefined) ?? []) {
    keys.set(e.key, { version: e.version, ...(e.expiresAt !== undefined ? { expiresAt: e.expiresAt } : {}) })
  }
  const m = new Map<string, string>()
  for (const x of (members?.json as { name: string; status: string }[] | undefined) ?? []) m.set(x.name, x.status)
  return { agent: a.name, readAt, keys, members: m }
}

function warningCounts(agents: readonly AgentHost[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const a of agents) for (const l of a.logs) if (l.level === 40) out[l.msg] = (out[l.msg] ?? 0) + 1
  return out
}

export async function runScenario(input: DriverInput, scenario: Scenario, seed: number): Promise<ScenarioResult> {
  const { layout } = input
  const durationMs = Math.max(input.durationMs, scenario.minDurationMs)
  const dataRoot = path.join(input.dataRoot, scenario.name)
  rmSync(dataRoot, { recursive: true, force: true })
  mkdirSync(dataRoot, { recursive: true })
  const seeds = layout.hosts.map((h) => `${h.address}:7946`)
  const agents = layout.hosts.map((h) => new AgentHost(h, { seeds, tombstoneRetention: scenario.tombstoneRetention, dataRoot }))
  const random = new SeededRandom(seed)
  const workload = new Workload(agents, random, { opsPerSec: input.opsPerSec, keys: scenario.keys, maxInFlight: 16, ttlMs: [2000, 8000] })
  const timeline: Timeline = { partitions: [], down: [] }
  const timers: NodeJS.Timeout[] = []
  const sampler = setInterval(() => {
    for (const a of agents) a.sampleRss()
  }, 1000)
  const actions: Promise<void>[] = []
  const harnessErrors: string[] = []
  say(`${scenario.name}: ${scenario.description}; ${agents.length} hosts, ${durationMs / 1000} s, seed ${seed}`)
  try {
    await Promise.all(agents.map((a) => a.start()))
    await waitFormed(agents, 30_000)
    for (const a of agents) workload.watch(a)
    workload.start()
    const start = Date.now()
    const apply = async (t: TimedStep): Promise<void> => {
      const s = t.step
      const now = Date.now()
      say(`  +${((now - start) / 1000).toFixed(1)} s ${JSON.stringify(s)}`)
      switch (s.kind) {
        case 'partition':
          partition(layout, s.groupOf)
          timeline.partitions.push({ from: now, to: Infinity, groupOf: s.groupOf })
          break
        case 'loss':
          loss(layout, s.p)
          break
        case 'heal':
          heal(layout)
          for (const p of timeline.partitions) if (p.to === Infinity) p.to = now
          break
        case 'kill':
          await agents[s.host]!.kill()
          timeline.down.push({ host: s.host, from: now, to: Infinity })
          break
        case 'leave':
          timeline.down.push({ host: s.host, from: now, to: Infinity })
          await agents[s.host]!.leave()
          break
        case 'restart': {
          const a = agents[s.host]!
          await a.restart(s.keepData)
          for (const d of timeline.down) if (d.host === s.host && d.to === Infinity) d.to = Date.now()
          workload.watch(a)
          break
        }
        case 'freeze': {
          const a = agents[s.host]!
          a.freeze()
          await sleep(s.ms)
          a.thaw()
          break
        }
      }
    }
    for (const step of scenario.steps(agents.length, durationMs)) {
      // A step that fails (a command refused, an agent that would not start) fails the scenario, with the reason.
      timers.push(setTimeout(() => actions.push(apply(step).catch((err: unknown) => void harnessErrors.push(`${JSON.stringify(step.step)}: ${(err as Error).message}`))), step.at))
    }
    await sleep(durationMs)
    for (const t of timers) clearTimeout(t)
    await Promise.all(actions)
    // Faults end: the network heals, frozen agents run again; the workload stops.
    heal(layout)
    const healedAt = Date.now()
    for (const p of timeline.partitions) if (p.to === Infinity) p.to = healedAt
    for (const a of agents) a.thaw()
    await workload.stop()
    const convergedAfterMs = await waitConverged(agents, CONVERGE_LIMIT_MS)
    say(`  converged ${convergedAfterMs === null ? 'NOT within the limit' : `${convergedAfterMs} ms after the heal`}`)
    const readAt = Date.now()
    const finals = await Promise.all(agents.filter((a) => a.state === 'running').map(readFinal))
    workload.unwatchAll()
    const checks = runChecks({
      agents,
      ops: workload.ops,
      changes: workload.changes,
      startViews: workload.startViews,
      finals,
      timeline,
      convergedAfterMs,
      convergeLimitMs: CONVERGE_LIMIT_MS,
      readAt,
    })
    for (const e of harnessErrors) checks.violations.push({ check: 'harness', detail: e })
    for (const a of agents) for (const e of a.unreadableSnapshots) checks.violations.push({ check: 'harness', detail: `a snapshot the harness could not read before a restart: ${e}` })
    const result: ScenarioResult = {
      scenario: scenario.name,
      seed,
      hosts: agents.length,
      durationMs,
      ops: workload.ops.length,
      writesAcked: checks.writesAcked,
      deletesAcked: checks.deletesAcked,
      unknownOutcome: workload.ops.filter((o) => o.outcome === 'unknown').length,
      writesLost: checks.writesLost,
      resurrections: checks.resurrections,
      staleAtReturn: checks.staleAtReturn,
      startViews: workload.startViews.length,
      snapshotsJudged: checks.snapshotsJudged,
      falseDeaths: checks.falseDeaths,
      deathsDeclared: checks.deathsDeclared,
      convergedAfterMs,
      peakRssBytes: Math.max(0, ...agents.flatMap((a) => a.rss)),
      rssGrowth: checks.rssGrowth,
      warnings: warningCounts(agents),
      violations: checks.violations,
      ok: checks.violations.length === 0,
    }
    for (const v of result.violations.slice(0, 20)) say(`  VIOLATION ${v.check}: ${v.detail}`)
    if (!result.ok && input.logsDir !== undefined) {
      const dir = path.join(input.logsDir, `${scenario.name}-seed${seed}`)
      mkdirSync(dir, { recursive: true })
      for (const a of agents) writeFileSync(path.join(dir, `${a.name}.log`), a.logs.map((l) => JSON.stringify(l)).join('\n') + '\n')
      say(`  the agents' logs: ${dir}`)
    }
    if (result.violations.length > 20) say(`  ... and ${result.violations.length - 20} more`)
    const replay = `npm run chaos -- --scenario ${scenario.name} --seed ${seed} --hosts ${agents.length} --scenario-duration ${durationMs / 1000}s --ops-per-sec ${input.opsPerSec}`
    say(`  ${result.ok ? 'ok' : `FAILED (scenario ${scenario.name}, seed ${seed}; again: ${replay})`}: ${result.writesAcked} writes and ${result.deletesAcked} deletes acknowledged`)
    return result
  } finally {
    clearInterval(sampler)
    for (const t of timers) clearTimeout(t)
    workload.unwatchAll()
    await workload.stop()
    heal(layout)
    await Promise.all(agents.map((a) => a.shutdown()))
  }
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2]!) as DriverInput
  const t0 = Date.now()
  let longest = 0
  for (let run = 0; ; run++) {
    const name = input.scenarios[run % input.scenarios.length]!
    const started = Date.now()
    const result = await runScenario(input, scenarioByName(name), input.seed + run)
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`)
    longest = Math.max(longest, Date.now() - started)
    const pass = run + 1 >= input.scenarios.length
    // One pass, or, in a soak, as long as another scenario still fits in the time given.
    if (input.totalMs === undefined ? pass : Date.now() - t0 + longest > input.totalMs) break
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      say(`driver failed: ${(err as Error).stack ?? String(err)}`)
      process.exit(1)
    },
  )
}
