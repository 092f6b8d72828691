import { mkdirSync, writeFileSync } from 'node:fs'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseDuration } from '../agent/config.js'
import { ConfigError } from '../errors.js'
import type { PresetName } from '../membership/presets.js'
import { type ExperimentResult, type ExperimentSpec, type ScenarioEvent, runExperiment } from '../sim/experiment.js'
import { experimentPlots } from '../sim/plots.js'

/**
 * `grapevine sim`: flags (or a scenario file) to an experiment spec, the run,
 * and its output: a summary or one JSON object on stdout, and with --out a
 * time series as CSV.
 */
export interface SimFlags {
  nodes?: string
  fanout?: string
  intervalMs?: string
  preset?: string
  loss?: string
  latencyMs?: string
  partition?: string
  crash?: string
  writesPerSec?: string
  duration?: string
  seed?: string
  eagerPush?: string
  json?: boolean
  out?: string
  scenario?: string
}

function num(text: string, flag: string, min: number, max: number, integer = false): number {
  const v = Number(text)
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new ConfigError(flag, `'${text}' must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`)
  }
  return v
}

/** "A..B" or "A" (ms). */
function latency(text: string): [number, number] {
  const [a, b] = text.split('..')
  const lo = num(a ?? '', '--latency-ms', 0, 60_000)
  const hi = b === undefined ? lo : num(b, '--latency-ms', lo, 60_000)
  return [lo, hi]
}

/** "FRACTION@START-END", e.g. 0.5@10s-30s: the first half of the nodes cut off from 10 s to 30 s. */
function partition(text: string): ScenarioEvent[] {
  const m = /^([\d.]+)@([^-]+)(?:-(.+))?$/.exec(text)
  if (m === null) throw new ConfigError('--partition', `'${text}' is not FRACTION@START[-END] (e.g. 0.5@10s-30s)`)
  const fraction = num(m[1]!, '--partition', 0, 1)
  const out: ScenarioEvent[] = [{ at: parseDuration(m[2]!, '--partition'), kind: 'partition', fraction }]
  if (m[3] !== undefined) out.push({ at: parseDuration(m[3], '--partition'), kind: 'heal' })
  return out
}

/** "COUNT@TIME" or "PERCENT%@TIME", e.g. 1@5s or 10%@5s. */
function crash(text: string, nodes: number): ScenarioEvent {
  const m = /^([\d.]+)(%?)@(.+)$/.exec(text)
  if (m === null) throw new ConfigError('--crash', `'${text}' is not COUNT@TIME or PERCENT%@TIME (e.g. 1@5s)`)
  const count = m[2] === '%' ? Math.round((num(m[1]!, '--crash', 0, 100) / 100) * nodes) : num(m[1]!, '--crash', 0, nodes, true)
  return { at: parseDuration(m[3]!, '--crash'), kind: 'crash', count }
}

/** A scenario file: the same settings as the flags (camelCase), plus `events` with `at` durations. */
function fromScenario(file: string): { flags: SimFlags; events: ScenarioEvent[] } {
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch (err) {
    throw new ConfigError('--scenario', `cannot read ${file}: ${(err as Error).message}`)
  }
  const flags: SimFlags = {}
  for (const k of ['nodes', 'fanout', 'intervalMs', 'preset', 'loss', 'latencyMs', 'writesPerSec', 'duration', 'seed', 'eagerPush'] as const) {
    if (raw[k] !== undefined) flags[k] = String(raw[k])
  }
  const events: ScenarioEvent[] = []
  for (const [i, e] of ((raw.events as Record<string, unknown>[] | undefined) ?? []).entries()) {
    const where = `--scenario events[${i}]`
    const at = parseDuration((e.at as string | number | undefined) ?? '', where)
    if (e.partition !== undefined) events.push({ at, kind: 'partition', fraction: num(String(e.partition), where, 0, 1) })
    else if (e.heal === true) events.push({ at, kind: 'heal' })
    else if (e.crash !== undefined) events.push({ at, kind: 'crash', count: num(String(e.crash), where, 0, 1e6, true) })
    else if (e.restart === true) events.push({ at, kind: 'restart' })
    else if (e.write !== undefined) {
      const w = e.write as { key?: unknown; value?: unknown; node?: unknown }
      if (typeof w.key !== 'string' || typeof w.value !== 'string') throw new ConfigError(where, 'write needs {"key": "...", "value": "..."}')
      events.push({ at, kind: 'write', key: w.key, value: w.value, ...(typeof w.node === 'number' ? { node: w.node } : {}) })
    } else throw new ConfigError(where, 'an event is one of partition, heal, crash, restart, write')
  }
  return { flags, events }
}

export function specFromFlags(input: SimFlags): ExperimentSpec {
  const scenario = input.scenario === undefined ? undefined : fromScenario(input.scenario)
  const f: SimFlags = { ...scenario?.flags, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) }
  const nodes = num(f.nodes ?? '1000', '--nodes', 2, 1_000_000, true)
  const preset = (f.preset ?? 'lan') as PresetName
  if (!['lan', 'wan', 'local'].includes(preset)) throw new ConfigError('--preset', `'${preset}' is not lan, wan or local`)
  const events: ScenarioEvent[] = [...(scenario?.events ?? [])]
  if (f.partition !== undefined) events.push(...partition(f.partition))
  if (f.crash !== undefined) events.push(crash(f.crash, nodes))
  const eager = f.eagerPush ?? 'on'
  if (!['on', 'off', 'true', 'false'].includes(eager)) throw new ConfigError('--eager-push', `'${eager}' is not on or off`)
  const writesPerSec = num(f.writesPerSec ?? '0', '--writes-per-sec', 0, 100_000)
  // Without steady writes, one write at 1 s is the update whose spread is measured.
  if (writesPerSec === 0 && !events.some((e) => e.kind === 'write')) events.push({ at: 1000, kind: 'write', key: 'sim/first', value: 'v1' })
  return {
    nodes,
    fanout: num(f.fanout ?? '3', '--fanout', 1, 64, true),
    intervalMs: num(f.intervalMs ?? '1000', '--interval-ms', 1, 3_600_000),
    preset,
    loss: num(f.loss ?? '0', '--loss', 0, 1),
    latencyMs: latency(f.latencyMs ?? '1'),
    eagerPush: eager === 'on' || eager === 'true',
    writesPerSec,
    durationMs: parseDuration(f.duration ?? '60s', '--duration'),
    seed: num(f.seed ?? '1', '--seed', 0, 2 ** 32 - 1, true),
    events,
  }
}

const CSV_HEAD = 't_ms,informed_first,informed_all,messages_per_node_per_s,bytes_per_node_per_s,alive,suspect,dead,partitioned'

export function timeSeriesCsv(r: ExperimentResult): string {
  const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(4))
  const rows = r.timeSeries.map((t) =>
    [t.tMs, t.informedFirst, t.informedAll, t.messagesPerNodePerSec, t.bytesPerNodePerSec, t.alive, t.suspect, t.dead, t.partitioned ? 1 : 0].map(fmt).join(','),
  )
  return `${[CSV_HEAD, ...rows].join('\n')}\n`
}

/** The JSON summary: every result field but the time series (which goes to --out). */
export function summaryJson(r: ExperimentResult): string {
  const { timeSeries: _series, detectionSamples: _samples, ...summary } = r
  return JSON.stringify(summary)
}

function summaryText(r: ExperimentResult): string {
  const ms = (x: number | null): string => (x === null ? 'never' : `${(x / 1000).toFixed(2)} s`)
  const lines = [
    `grapevine sim: ${r.nodes} nodes, fanout ${r.fanout}, interval ${r.intervalMs} ms, preset ${r.preset}, loss ${r.loss}, eager push ${r.eagerPush ? 'on' : 'off'}, seed ${r.seed}`,
    `first write reached every live node in ${ms(r.timeToAllMs)}${r.roundsToAll === null ? '' : ` (${r.roundsToAll.toFixed(2)} rounds)`}, 99% in ${ms(r.timeTo99PctMs)}`,
    `traffic: ${r.messagesPerNodePerSec.toFixed(1)} messages and ${r.bytesPerNodePerSec.toFixed(0)} bytes per node per second; ${r.writes} writes`,
  ]
  if (r.detectionMs !== null) {
    lines.push(`crash detection: p50 ${ms(r.detectionMs.p50)}, p99 ${ms(r.detectionMs.p99)} over ${r.detectionMs.samples} observations (${r.detectionMs.undetected} not yet)`)
  }
  lines.push(`false positives: ${r.falsePositives}; converged at the end: ${r.converged ? 'yes' : 'no'}`)
  lines.push(`wall time ${(r.wallMs / 1000).toFixed(1)} s, peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`)
  return lines.join('\n')
}

export async function runSimCommand(flags: SimFlags): Promise<void> {
  const spec = specFromFlags(flags)
  const tty = process.stderr.isTTY === true
  const started = performance.now()
  let drawn = -1
  const result = runExperiment(spec, (doneMs) => {
    if (!tty || performance.now() - started < 1000) return
    const pct = Math.floor((doneMs / spec.durationMs) * 100)
    if (pct === drawn) return
    drawn = pct
    const width = 30
    const filled = Math.round((pct / 100) * width)
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% of ${spec.durationMs / 1000} simulated s`)
  })
  if (drawn >= 0) process.stderr.write('\n')
  if (flags.out !== undefined) {
    mkdirSync(flags.out, { recursive: true })
    writeFileSync(path.join(flags.out, 'timeseries.csv'), timeSeriesCsv(result))
    writeFileSync(path.join(flags.out, 'summary.json'), `${summaryJson(result)}\n`)
    for (const plot of await experimentPlots(result)) {
      writeFileSync(path.join(flags.out, `${plot.name}.svg`), plot.svg)
      writeFileSync(path.join(flags.out, `${plot.name}.png`), plot.png)
    }
  }
  process.stdout.write(`${flags.json === true ? summaryJson(result) : summaryText(result)}\n`)
}
