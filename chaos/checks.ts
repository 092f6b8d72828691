/**
 * The guarantees a chaos scenario must keep, judged after the faults stop
 * and the network heals, from what the harness recorded: the acknowledged
 * operations, each agent's change stream, each agent's final keys and
 * members, the agents' logs, their memory, and the timeline of faults.
 *
 * 1. Convergence: every running agent reports the same state hash, and
 *    `converged: true`, within the allowed time (measured by the driver).
 * 2. No lost write: every acknowledged write is held by every running agent,
 *    or superseded there by a higher version of the same key (a later write,
 *    a delete, or the write's own expiry).
 * 3. No resurrection: no agent ever reports a value of a key older than a
 *    delete it reported before (its change stream); an agent restarted on its
 *    data dir comes back with nothing older than a delete it had reported by
 *    the time its snapshot was taken (judged on the snapshot itself, read by
 *    the harness before the start, then on what the new life held when its
 *    stream began and on that stream); and at the end no agent holds a key
 *    at a version below an acknowledged delete. A returning agent that comes
 *    back with a key deleted before it started, and drops it on catching up,
 *    serves a stale read, not a resurrection: the count is reported
 *    (`staleAtReturn`), not judged.
 * 4. Membership: every running agent is alive on every running agent; killed
 *    ones are dead or reaped; left ones are left or reaped; and no agent was
 *    declared dead, by an agent that could reach it, while its process was
 *    alive (frozen processes included: they are frozen for less than the
 *    suspicion timeout).
 * 5. No crash (no exit the harness did not cause), no error in the logs, and
 *    no unbounded memory growth (the RSS samples of each agent's last life).
 *
 * Each violation names the evidence: which key, which agent, which versions.
 */
import type { AgentHost } from './agent-host.js'
import { type Op, type StartView, type Version, type WatchedChange, compareVersions, formatVersion } from './workload.js'

export interface KeyState {
  readonly version: Version
  readonly expiresAt?: number
}

/** What the driver read from one running agent at the end. */
export interface FinalView {
  readonly agent: string
  /** When this agent's keys were read (its answer arrived); the input's `readAt` when unset. */
  readonly readAt?: number
  readonly keys: ReadonlyMap<string, KeyState>
  readonly members: ReadonlyMap<string, string>
}

/** Intervals of the faults, in wall-clock ms, for the membership check. */
export interface Timeline {
  /** Partition groups in force from `from` to `to` (Infinity while in force). */
  readonly partitions: { readonly from: number; to: number; readonly groupOf: readonly number[] }[]
  /** Times a host's process was dead (killed, not yet restarted) or gone (left). */
  readonly down: { readonly host: number; readonly from: number; to: number }[]
}

export interface Violation {
  readonly check: 'convergence' | 'lost-write' | 'resurrection' | 'membership' | 'false-death' | 'crash' | 'log-error' | 'memory' | 'harness'
  readonly detail: string
}

export interface CheckInput {
  readonly agents: readonly AgentHost[]
  readonly ops: readonly Op[]
  readonly changes: readonly WatchedChange[]
  /** What each life held when its change stream began (none: the cross-life check has nothing to judge). */
  readonly startViews?: readonly StartView[]
  readonly finals: readonly FinalView[]
  readonly timeline: Timeline
  /** ms from the heal until every running agent agreed, or null when they did not within the limit. */
  readonly convergedAfterMs: number | null
  readonly convergeLimitMs: number
  /** When the final views were read. */
  readonly readAt: number
}

export interface CheckResult {
  readonly violations: Violation[]
  readonly writesAcked: number
  readonly deletesAcked: number
  readonly writesLost: number
  readonly resurrections: number
  /** Keys a restarted agent came back with from its data dir at a version below a delete acknowledged before it started (stale until it catches up). */
  readonly staleAtReturn: number
  /** Lives started on a data dir whose snapshot the cross-life check judged. */
  readonly snapshotsJudged: number
  readonly falseDeaths: number
  /** Every 'member dead' an agent logged (expected ones included: killed agents, the other side of a partition). */
  readonly deathsDeclared: number
  /** The agent whose RSS grew most over its last life: the median of its second quarter of samples against that of its last quarter (null: no life had 8 samples). */
  readonly rssGrowth: { readonly agent: string; readonly earlyBytes: number; readonly lateBytes: number } | null
}

/**
 * Version order as the checks may judge it. Public versions carry the origin's
 * node name, not the engine's full origin (name and generation), so two writes
 * with the same timestamp from different nodes may be ordered otherwise by the
 * engine: only a lower timestamp is surely below.
 */
function surelyBelow(a: Version, b: Version): boolean {
  return a.ts < b.ts
}

/** `a` may win over `b`: a higher timestamp, or the same from another node (see surelyBelow). */
function mayBeAbove(a: Version, b: Version): boolean {
  return a.ts > b.ts || (a.ts === b.ts && a.origin !== b.origin)
}

function max(a: Version | undefined, b: Version): Version {
  return a === undefined || compareVersions(b, a) > 0 ? b : a
}

/** Wall-clock time of day, to the millisecond (the agents' log lines carry the same clock). */
function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23)
}

/**
 * The evidence for a flagged key: the operations on it around the flagged one
 * (marked '>'; the last ones when none is given), oldest first, each
 * with its kind, outcome, version, agent and times, so that a flagged write can
 * be told from a false alarm (an expiry, a concurrent delete) at a glance.
 */
export function keyHistory(ops: readonly Op[], key: string, around?: Op, before = 8, after = 4): string {
  const mine = ops.filter((o) => o.key === key)
  const at = around === undefined ? -1 : mine.indexOf(around)
  // A window around the flagged operation (it and what came just before and after), else the last ones.
  const from = at >= 0 ? Math.max(0, at - before) : Math.max(0, mine.length - before - after)
  const shown = mine.slice(from, at >= 0 ? at + after + 1 : mine.length)
  const lines = shown.map((o) => {
    const ttl = o.ttlMs === undefined ? '' : ` ttl ${o.ttlMs} ms (expires from ${clock(o.sentAt + o.ttlMs)})`
    const ack = o.ackedAt === undefined ? '' : ` answered ${clock(o.ackedAt)}`
    return `    ${o === around ? '>' : ' '} ${clock(o.sentAt)} ${o.kind} via ${o.agent}: ${o.outcome} ${formatVersion(o.version)}${ack}${ttl}`
  })
  const head = mine.length > shown.length ? `  operations on ${key} (${shown.length} of ${mine.length}, from #${from + 1}):` : `  operations on ${key}:`
  return [head, ...lines].join('\n')
}

export function runChecks(input: CheckInput): CheckResult {
  const violations: Violation[] = []
  const add = (check: Violation['check'], detail: string): void => {
    violations.push({ check, detail })
  }

  // 1. Convergence.
  if (input.convergedAfterMs === null) add('convergence', `the running agents did not agree on one state hash (and converged: true) within ${input.convergeLimitMs / 1000} s of the heal`)

  // 2. No lost write.
  const acked = input.ops.filter((o) => o.outcome === 'acked' && o.version !== undefined)
  const writes = acked.filter((o) => o.kind !== 'delete')
  const deletes = acked.filter((o) => o.kind === 'delete')
  // Deletes that may have happened: acknowledged ones, and unanswered ones (applied or not, at a version we never learned).
  const possibleDeletes = input.ops.filter((o) => o.kind === 'delete' && (o.outcome === 'acked' || o.outcome === 'unknown'))
  let writesLost = 0
  for (const w of writes) {
    const below: string[] = []
    const absent: string[] = []
    for (const f of input.finals) {
      const held = f.keys.get(w.key)
      if (held !== undefined) {
        if (surelyBelow(held.version, w.version!)) below.push(`${f.agent} at ${formatVersion(held.version)}`)
        continue
      }
      // Absent: fine if the write expired by the time this agent was read (the agent set the expiry
      // between the request's sending and its answer: at the earliest sentAt + ttl), or a delete explains it.
      if (w.ttlMs !== undefined && w.sentAt + w.ttlMs <= (f.readAt ?? input.readAt)) continue
      const laterDelete = possibleDeletes.some((d) => d.key === w.key && (d.version === undefined || mayBeAbove(d.version, w.version!)))
      // A TTL write to the same key after this one can expire and take the key with it.
      const laterTtl = acked.some((o) => o.key === w.key && o.kind === 'ttl-put' && mayBeAbove(o.version!, w.version!))
      if (laterDelete || laterTtl) continue
      absent.push(`${f.agent} (read ${clock(f.readAt ?? input.readAt)})`)
    }
    if (below.length + absent.length === 0) continue
    writesLost++
    const what = `the acknowledged ${w.kind} ${formatVersion(w.version)} of ${w.key} ('${w.value}' through ${w.agent})`
    const where = [below.length > 0 ? `held below it by ${below.join(', ')}` : '', absent.length > 0 ? `absent, not deleted or expired, on ${absent.join(', ')}` : '']
    add('lost-write', `${what} is ${where.filter((x) => x !== '').join('; ')}\n${keyHistory(input.ops, w.key, w)}`)
  }

  // 3. No resurrection: each agent's own history, then the final views against acknowledged deletes.
  const opOf = (key: string, v: Version): Op | undefined => input.ops.find((o) => o.key === key && o.version !== undefined && compareVersions(o.version, v) === 0)
  let resurrections = 0
  const deletedUpTo = new Map<string, Version>()
  for (const c of input.changes) {
    const k = `${c.agent}#${c.life}\u0000${c.key}`
    const floor = deletedUpTo.get(k)
    if (c.deleted) deletedUpTo.set(k, max(floor, c.version))
    else if (floor !== undefined && surelyBelow(c.version, floor)) {
      resurrections++
      add('resurrection', `${c.agent} (life ${c.life}) reported ${c.key} at ${formatVersion(c.version)} at ${clock(c.at)}, after it had reported its delete at ${formatVersion(floor)}\n${keyHistory(input.ops, c.key, opOf(c.key, floor))}`)
    }
  }
  // Across lives on the same data dir. The harness read the snapshot each such life started from;
  // every delete the previous life reported by the time that snapshot was taken is in it (the agent
  // takes and stamps a snapshot in one synchronous step, and reports a change after applying it).
  const startViews = input.startViews ?? []
  let staleAtReturn = 0
  let snapshotsJudged = 0
  for (const a of input.agents) {
    const onDisk = new Map<string, { version: Version; life: number; at: number }>()
    let previous: readonly WatchedChange[] = []
    for (const life of a.lifeLog) {
      const restored = life.restored
      if (!life.keptData || restored === undefined) onDisk.clear()
      else {
        for (const c of previous) {
          if (!c.deleted || c.at > restored.savedAtMs) continue
          const floor = onDisk.get(c.key)
          if (floor === undefined || compareVersions(c.version, floor.version) > 0) onDisk.set(c.key, { version: c.version, life: c.life, at: c.at })
        }
      }
      const judge = (key: string, version: Version, how: string): void => {
        const floor = onDisk.get(key)
        if (floor === undefined || !surelyBelow(version, floor.version)) return
        resurrections++
        add(
          'resurrection',
          `${a.name} came back (life ${life.life}, on its data dir) with ${key} at ${formatVersion(version)} (${how}), ` +
            `below the delete ${formatVersion(floor.version)} it had reported at ${clock(floor.at)} in life ${floor.life}, before its snapshot was taken\n${keyHistory(input.ops, key, opOf(key, floor.version))}`,
        )
      }
      if (life.keptData && restored !== undefined) {
        snapshotsJudged++
        for (const [key, e] of restored.entries) {
          if (e.deleted) continue
          judge(key, e.version, `in the snapshot it started from, taken at ${clock(restored.savedAtMs)}`)
          if (deletes.some((d) => d.key === key && d.ackedAt! < life.startedAt && surelyBelow(e.version, d.version!))) staleAtReturn++
        }
      }
      const view = startViews.find((v) => v.agent === a.name && v.life === life.life)
      if (view !== undefined) for (const [key, version] of view.keys) judge(key, version, `held when its change stream began, ${clock(view.at)}`)
      const mine = input.changes.filter((c) => c.agent === a.name && c.life === life.life)
      for (const c of mine) if (!c.deleted) judge(c.key, c.version, `reported at ${clock(c.at)}`)
      previous = mine
    }
  }
  for (const d of deletes) {
    for (const f of input.finals) {
      const held = f.keys.get(d.key)
      if (held !== undefined && surelyBelow(held.version, d.version!)) {
        resurrections++
        add('resurrection', `${f.agent} holds ${d.key} at ${formatVersion(held.version)}, below the acknowledged delete ${formatVersion(d.version)} (through ${d.agent})\n${keyHistory(input.ops, d.key, d)}`)
      }
    }
  }

  // 4. Membership at the end.
  const byName = new Map(input.agents.map((a) => [a.name, a]))
  for (const f of input.finals) {
    for (const a of input.agents) {
      const status = f.members.get(a.name)
      const want = a.state === 'running' ? ['alive'] : a.state === 'left' ? ['left', undefined] : a.state === 'killed' ? ['dead', undefined] : ['alive', 'suspect']
      if (!want.includes(status)) add('membership', `${f.agent} lists ${a.name} as ${status ?? 'absent'}; it is ${a.state}, so it should be ${want.map((x) => x ?? 'absent').join(' or ')}`)
    }
  }
  // False deaths: a 'member dead' log line about an agent whose process was alive and reachable then.
  let falseDeaths = 0
  let deathsDeclared = 0
  for (const observer of input.agents) {
    for (const line of observer.logs) {
      if (line.msg !== 'member dead') continue
      deathsDeclared++
      const target = byName.get(String(line.member))
      if (target === undefined) continue
      const t = line.time
      const i = target.host.index
      const wasDown = input.timeline.down.some((d) => d.host === i && d.from <= t && t <= d.to + 1000)
      if (wasDown) continue
      const cut = input.timeline.partitions.some((p) => p.from <= t && t <= p.to + 1000 && p.groupOf[i] !== p.groupOf[observer.host.index])
      if (cut) continue
      falseDeaths++
      add('false-death', `${observer.name} declared ${target.name} dead at ${new Date(t).toISOString()} while its process was alive and reachable`)
    }
  }

  // 5. Crashes, errors in the logs, memory.
  let rssGrowth: CheckResult['rssGrowth'] = null
  for (const a of input.agents) {
    for (const e of a.unexpectedExits) add('crash', e)
    for (const line of a.logs) if (line.level >= 50) add('log-error', `${a.name}: ${line.msg} ${JSON.stringify(line).slice(0, 300)}`)
    const s = a.rss
    if (s.length >= 8) {
      const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
      const q = Math.floor(s.length / 4)
      const early = median(s.slice(q, 2 * q))
      const late = median(s.slice(s.length - q))
      if (rssGrowth === null || late / early > rssGrowth.lateBytes / rssGrowth.earlyBytes) rssGrowth = { agent: a.name, earlyBytes: early, lateBytes: late }
      if (late > 1.5 * early && late - early > 64 * 2 ** 20) {
        add('memory', `${a.name}: RSS grew from ${(early / 2 ** 20).toFixed(0)} MiB to ${(late / 2 ** 20).toFixed(0)} MiB over its last life`)
      }
    }
  }
  return { violations, writesAcked: writes.length, deletesAcked: deletes.length, writesLost, resurrections, staleAtReturn, snapshotsJudged, falseDeaths, deathsDeclared, rssGrowth }
}
