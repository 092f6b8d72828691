/**
 * The scenarios of the chaos suite: timed faults on a cluster of real agents
 * under a steady workload. Times are fractions of the scenario's duration,
 * so the same scenario runs short in `npm test` and long in a soak; the few
 * that need absolute times (an absence longer than the tombstone retention)
 * set them, and a minimum duration.
 */
export type Step =
  | { readonly kind: 'partition'; readonly groupOf: readonly number[] }
  | { readonly kind: 'heal' }
  | { readonly kind: 'loss'; readonly p: number }
  | { readonly kind: 'kill'; readonly host: number }
  | { readonly kind: 'restart'; readonly host: number; readonly keepData: boolean }
  | { readonly kind: 'freeze'; readonly host: number; readonly ms: number }
  | { readonly kind: 'leave'; readonly host: number }

export interface TimedStep {
  /** ms from the start of the scenario. */
  readonly at: number
  readonly step: Step
}

export interface Scenario {
  readonly name: string
  readonly description: string
  /** The agents' --tombstone-retention. */
  readonly tombstoneRetention: string
  /** Size of the key space the workload writes (small: many writes meet on the same keys). */
  readonly keys: number
  readonly minDurationMs: number
  steps(hosts: number, durationMs: number): TimedStep[]
}

const at = (durationMs: number, fraction: number, step: Step): TimedStep => ({ at: Math.round(durationMs * fraction), step })
const halves = (hosts: number): number[] => Array.from({ length: hosts }, (_, i) => (i < Math.ceil(hosts / 2) ? 0 : 1))

/** Retention used where the scenario outlives it on purpose. */
const SHORT_RETENTION_MS = 8_000

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'partition-one',
    description: 'one host cut off from all others, then healed',
    tombstoneRetention: '1h',
    keys: 40,
    minDurationMs: 15_000,
    steps: (hosts, d) => [at(d, 0.2, { kind: 'partition', groupOf: Array.from({ length: hosts }, (_, i) => (i === 0 ? 1 : 0)) }), at(d, 0.7, { kind: 'heal' })],
  },
  {
    name: 'partition-half',
    description: '50/50 partition, then healed',
    tombstoneRetention: '1h',
    keys: 40,
    // The cut lasts half the run: at least 12 s, past the lan preset's detection time, so each side declares the other dead.
    minDurationMs: 24_000,
    steps: (hosts, d) => [at(d, 0.2, { kind: 'partition', groupOf: halves(hosts) }), at(d, 0.7, { kind: 'heal' })],
  },
  {
    name: 'split-brain-writes',
    description: 'writes to the same few keys on both sides of a 50/50 partition',
    tombstoneRetention: '1h',
    keys: 6,
    minDurationMs: 15_000,
    steps: (hosts, d) => [at(d, 0.15, { kind: 'partition', groupOf: halves(hosts) }), at(d, 0.7, { kind: 'heal' })],
  },
  {
    name: 'loss-30',
    description: '30% of datagrams and segments between hosts dropped',
    tombstoneRetention: '1h',
    keys: 40,
    minDurationMs: 15_000,
    steps: (_hosts, d) => [at(d, 0.1, { kind: 'loss', p: 0.3 }), at(d, 0.9, { kind: 'heal' })],
  },
  {
    name: 'kill-restart',
    description: 'SIGKILL of an agent, restarted with its data dir',
    tombstoneRetention: '1h',
    keys: 40,
    // Away for 35% of the run: at least 12 s, so the others have declared it dead before it returns.
    minDurationMs: 35_000,
    steps: (_hosts, d) => [at(d, 0.2, { kind: 'kill', host: 1 }), at(d, 0.55, { kind: 'restart', host: 1, keepData: true })],
  },
  {
    name: 'kill-restart-empty',
    description: 'SIGKILL of an agent, restarted without its data (a new disk)',
    tombstoneRetention: '1h',
    keys: 40,
    minDurationMs: 15_000,
    steps: (_hosts, d) => [at(d, 0.2, { kind: 'kill', host: 1 }), at(d, 0.55, { kind: 'restart', host: 1, keepData: false })],
  },
  {
    name: 'away-past-retention',
    description: `SIGKILL, away for longer than the tombstone retention (${SHORT_RETENTION_MS / 1000} s) while keys are deleted, back with its old data dir`,
    tombstoneRetention: `${SHORT_RETENTION_MS}ms`,
    keys: 20,
    minDurationMs: 3 * SHORT_RETENTION_MS + 8_000,
    steps: (_hosts, d) => {
      const killAt = Math.round(d * 0.1)
      return [
        { at: killAt, step: { kind: 'kill', host: 1 } },
        // Away for the retention, plus the collection delay, plus margin.
        { at: killAt + 2 * SHORT_RETENTION_MS + 4_000, step: { kind: 'restart', host: 1, keepData: true } },
      ]
    },
  },
  {
    name: 'frozen',
    description: 'an agent stopped (SIGSTOP) for 3 s, twice',
    tombstoneRetention: '1h',
    keys: 40,
    minDurationMs: 15_000,
    steps: (_hosts, d) => [at(d, 0.25, { kind: 'freeze', host: 2, ms: 3000 }), at(d, 0.6, { kind: 'freeze', host: 2, ms: 3000 })],
  },
  {
    name: 'rolling-restart',
    description: 'every agent in turn leaves (SIGTERM) and starts again with its data dir',
    tombstoneRetention: '1h',
    keys: 40,
    minDurationMs: 20_000,
    steps: (hosts, d) => {
      const out: TimedStep[] = []
      const gap = (0.75 * d) / hosts
      for (let i = 0; i < hosts; i++) {
        const t = 0.1 * d + i * gap
        out.push({ at: Math.round(t), step: { kind: 'leave', host: i } })
        out.push({ at: Math.round(t + Math.min(2_000, gap / 2)), step: { kind: 'restart', host: i, keepData: true } })
      }
      return out
    },
  },
  {
    name: 'leave',
    description: 'an agent leaves for good (SIGTERM)',
    tombstoneRetention: '1h',
    keys: 40,
    minDurationMs: 15_000,
    steps: (hosts, d) => [at(d, 0.4, { kind: 'leave', host: hosts - 1 })],
  },
]

export function scenarioByName(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name)
  if (s === undefined) throw new Error(`unknown scenario '${name}' (known: ${SCENARIOS.map((x) => x.name).join(', ')})`)
  return s
}
