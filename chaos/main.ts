/**
 * The chaos harness: `npm run chaos -- [--scenario NAME[,NAME...]|all] [--hosts N] [--scenario-duration 20s] [--duration 30m] [--seed S] [--ops-per-sec R] [--report FILE] [--json]`.
 *
 * One pass runs each selected scenario once, for `--scenario-duration`
 * (at least the scenario's own minimum). `--duration` makes it a soak: the
 * scenarios repeat, with the next seeds, until that much time has passed.
 *
 * Creates the lab (lab.ts: one network namespace per agent and one for the
 * driver, on a bridge of its own), runs the driver inside the driver's
 * namespace, and removes the lab on every exit: normal, failure, Ctrl-C or
 * SIGTERM. Every run is bounded: each scenario runs for its duration, then
 * at most 30 s of convergence. Exits 0 when every scenario kept every
 * guarantee, 1 when one did not, 2 on a usage error, 3 when the lab cannot
 * be made here (not root, no `ip netns`), with the reason.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseDuration } from '../src/agent/config.js'
import { type DriverInput, RESULT_PREFIX, type ScenarioResult } from './driver.js'
import { type LabLayout, createLab, destroyLab, labUnavailable, removeStale } from './lab.js'
import { SCENARIOS, scenarioByName } from './scenarios.js'

const driverPath = fileURLToPath(new URL('./driver.js', import.meta.url))

export interface ChaosOptions {
  readonly scenarios: readonly string[]
  readonly hosts: number
  readonly durationMs: number
  readonly totalMs?: number
  readonly seed: number
  readonly opsPerSec: number
  /** Where to keep the agents' logs of each failed scenario (`<dir>/<scenario>-seed<S>/<agent>.log`); undefined: not kept. */
  readonly logsDir?: string
}

function usage(message: string): never {
  process.stderr.write(`chaos: ${message}\nusage: npm run chaos -- [--scenario NAME[,NAME...]|all] [--hosts N] [--scenario-duration 20s] [--duration 30m] [--seed S] [--ops-per-sec R] [--report FILE] [--logs DIR] [--json]\n`)
  process.exit(2)
}

/** Runs the driver in the lab's ctl namespace; resolves with its results (one per scenario that finished). */
function runDriver(layout: LabLayout, input: DriverInput, onChild: (kill: () => void) => void): Promise<{ results: ScenarioResult[]; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', layout.ctl.ns, process.execPath, driverPath, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'inherit'] })
    onChild(() => child.kill('SIGKILL'))
    const results: ScenarioResult[] = []
    let buffered = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => {
      buffered += d
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        if (line.startsWith(RESULT_PREFIX)) results.push(JSON.parse(line.slice(RESULT_PREFIX.length)) as ScenarioResult)
      }
    })
    child.on('close', (code) => resolve({ results, code }))
  })
}

/** Creates the lab, runs the scenarios, removes the lab. */
export async function runChaos(options: ChaosOptions): Promise<{ results: ScenarioResult[]; driverCode: number | null }> {
  removeStale()
  const layout = createLab(options.hosts, options.seed)
  const dataRoot = mkdtempSync(path.join(os.tmpdir(), 'gv-chaos-'))
  let killDriver: (() => void) | undefined
  let cleaned = false
  const cleanup = (): void => {
    if (cleaned) return
    cleaned = true
    killDriver?.()
    destroyLab(layout)
    rmSync(dataRoot, { recursive: true, force: true })
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`[chaos] ${signal}: removing the lab\n`)
    cleanup()
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('exit', cleanup)
  try {
    const input: DriverInput = {
      layout,
      scenarios: options.scenarios,
      durationMs: options.durationMs,
      ...(options.totalMs !== undefined ? { totalMs: options.totalMs } : {}),
      seed: options.seed,
      dataRoot,
      opsPerSec: options.opsPerSec,
      ...(options.logsDir !== undefined ? { logsDir: path.resolve(options.logsDir) } : {}),
    }
    const { results, code } = await runDriver(layout, input, (k) => (killDriver = k))
    return { results, driverCode: code }
  } finally {
    cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('exit', cleanup)
  }
}

export function reportTable(results: readonly ScenarioResult[]): string {
  const rows = results.map((r) =>
    [
      r.scenario,
      String(r.seed),
      String(r.hosts),
      `${r.durationMs / 1000} s`,
      String(r.writesAcked),
      String(r.deletesAcked),
      String(r.writesLost),
      String(r.resurrections),
      String(r.staleAtReturn),
      r.convergedAfterMs === null ? 'not within 30 s' : `${(r.convergedAfterMs / 1000).toFixed(1)} s`,
      `${r.falseDeaths} of ${r.deathsDeclared}`,
      `${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
      r.rssGrowth === null ? '—' : `×${(r.rssGrowth.lateBytes / r.rssGrowth.earlyBytes).toFixed(2)}`,
      r.ok ? 'pass' : `**FAIL** (${r.violations.length}: ${[...new Set(r.violations.map((v) => v.check))].join(', ')})`,
    ].join(' | '),
  )
  return [
    '| scenario | seed | hosts | duration | writes acknowledged | deletes acknowledged | writes lost | resurrections | stale keys at a return | converged after the heal | false deaths (of deaths declared) | peak agent RSS | RSS growth (largest) | guarantees |',
    '| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :--- |',
    ...rows.map((r) => `| ${r} |`),
  ].join('\n')
}

/** The evidence of every failed scenario (at most `limit` violations each), for the report under its table. */
export function reportViolations(results: readonly ScenarioResult[], limit = 10): string {
  const failed = results.filter((r) => !r.ok)
  if (failed.length === 0) return ''
  const parts = failed.map((r) => {
    const shown = r.violations.slice(0, limit).map((v) => `${v.check}: ${v.detail}`)
    const more = r.violations.length > limit ? [`... and ${r.violations.length - limit} more`] : []
    return [`### ${r.scenario}, seed ${r.seed}`, '', '```', ...shown, ...more, '```'].join('\n')
  })
  return ['## Violations', '', ...parts].join('\n\n')
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  let names: string[] = SCENARIOS.map((s) => s.name)
  let hosts = 5
  let durationMs = 20_000
  let totalMs: number | undefined
  let seed = 1
  let opsPerSec = 20
  let report: string | undefined
  let logsDir: string | undefined
  let json = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = (): string => argv[++i] ?? usage(`${a} needs a value`)
    if (a === '--scenario') {
      const v = value()
      names = v === 'all' ? SCENARIOS.map((s) => s.name) : v.split(',')
    } else if (a === '--hosts') hosts = Number(value())
    else if (a === '--scenario-duration') durationMs = parseDuration(value(), '--scenario-duration')
    else if (a === '--duration') totalMs = parseDuration(value(), '--duration')
    else if (a === '--seed') seed = Number(value())
    else if (a === '--ops-per-sec') opsPerSec = Number(value())
    else if (a === '--report') report = value()
    else if (a === '--logs') logsDir = value()
    else if (a === '--json') json = true
    else if (a === '--help' || a === '-h') usage('help')
    else usage(`unknown option ${a}`)
  }
  if (!Number.isInteger(hosts) || hosts < 3 || hosts > 60) usage('--hosts must be a whole number from 3 to 60')
  if (!Number.isInteger(seed) || seed < 0) usage('--seed must be a whole number')
  if (!(opsPerSec > 0 && opsPerSec <= 1000)) usage('--ops-per-sec must be in (0, 1000]')
  for (const n of names) {
    try {
      scenarioByName(n)
    } catch (err) {
      usage((err as Error).message)
    }
  }
  const why = labUnavailable()
  if (why !== undefined) {
    process.stderr.write(`chaos: cannot make the lab here: ${why}\n`)
    process.exit(3)
  }
  const t0 = Date.now()
  const { results, driverCode } = await runChaos({ scenarios: names, hosts, durationMs, ...(totalMs !== undefined ? { totalMs } : {}), seed, opsPerSec, ...(logsDir !== undefined ? { logsDir } : {}) })
  const table = reportTable(results)
  if (json) process.stdout.write(`${JSON.stringify(results)}\n`)
  else process.stdout.write(`${table}\n`)
  if (report !== undefined) {
    writeFileSync(
      report,
      [
        '# Reliability',
        '',
        '> Written by `npm run chaos` (the harness in `chaos/`): real `grapevine agent` processes, one per network',
        '> namespace on a bridge of the harness\'s own, under a steady workload through the HTTP API while the',
        '> scenario breaks the network (iptables in the namespaces) and the processes (SIGKILL, SIGSTOP, SIGTERM).',
        '> The guarantees checked after each scenario are listed in `chaos/checks.ts`. "Stale keys at a return": keys a',
        '> restarted agent came back with from its data dir below a delete acknowledged before it started again (it',
        '> drops them on catching up; a stale read, not a resurrection). "RSS growth": the median RSS of the last quarter of an',
        '> agent\'s last life against that of its second quarter, for the agent where it grew most (the check fails',
        '> above ×1.5 and +64 MiB).',
        '',
        `Run: ${new Date(t0).toISOString()}, ${os.cpus().length} CPUs, Node ${process.version}, ${((Date.now() - t0) / 1000).toFixed(0)} s in all.`,
        `Reproduce: \`npm run chaos -- --hosts ${hosts} --scenario-duration ${durationMs / 1000}s${totalMs === undefined ? '' : ` --duration ${totalMs / 1000}s`} --seed ${seed} --ops-per-sec ${opsPerSec}${names.length === SCENARIOS.length ? '' : ` --scenario ${names.join(',')}`}\``,
        '',
        table,
        '',
        reportViolations(results),
      ].join('\n'),
    )
  }
  const ok = driverCode === 0 && results.length >= names.length && results.every((r) => r.ok)
  if (driverCode !== 0) process.stderr.write(`chaos: the driver exited with ${driverCode}\n`)
  process.exit(ok ? 0 : 1)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  void main()
}
