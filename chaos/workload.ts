/**
 * The workload of a chaos scenario, through the agents' HTTP API: writes,
 * overwrites, deletes and TTL writes at a steady rate, each on a random
 * running agent, over a small key space so that keys are overwritten and
 * deleted often. Every operation is recorded with its outcome: acknowledged
 * (with the version the agent returned), refused (an answer that is not a
 * success: nothing was written) or unknown (no answer in time: it may or
 * may not have been written). The checks judge acknowledged operations.
 *
 * Each agent's change stream (`/v1/watch`, Server-Sent Events) is read for
 * as long as the agent's current life runs: the history of what won on that
 * agent, in order, which the resurrection check reads.
 */
import { type Random, randomInt } from '../src/util/random.js'
import { SseReader } from '../src/util/sse.js'
import { type AgentHost, request } from './agent-host.js'

export interface Version {
  readonly ts: number
  readonly origin: string
}

/** Total order of versions: higher ts wins, the origin breaks ties (as the engine orders them). */
export function compareVersions(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1
  return a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0
}

export function formatVersion(v: Version | undefined): string {
  return v === undefined ? 'none' : `${v.ts}@${v.origin}`
}

export type OpKind = 'put' | 'ttl-put' | 'delete'

export interface Op {
  readonly kind: OpKind
  readonly key: string
  readonly value: string
  readonly agent: string
  readonly sentAt: number
  outcome: 'pending' | 'acked' | 'refused' | 'unknown'
  version?: Version
  ackedAt?: number
  /** For TTL writes: the TTL asked for (the agent sets the expiry between the request's sending and its answer). */
  ttlMs?: number
}

/** One change an agent reported on its watch stream. */
export interface WatchedChange {
  readonly agent: string
  readonly life: number
  readonly key: string
  readonly version: Version
  readonly deleted: boolean
  readonly at: number
}

/**
 * The keys an agent held when its life's change stream began (read right
 * after the stream was open, so no change falls between the two): what it
 * restored from its data dir plus what it had learned since starting. The
 * stream shows changes only; this shows what a restarted agent came back with.
 */
export interface StartView {
  readonly agent: string
  readonly life: number
  readonly at: number
  readonly keys: ReadonlyMap<string, Version>
}

export interface WorkloadOptions {
  readonly opsPerSec: number
  readonly keys: number
  /** At most this many requests in flight (a frozen agent holds its requests until the timeout). */
  readonly maxInFlight: number
  readonly ttlMs: readonly [number, number]
}

export class Workload {
  readonly ops: Op[] = []
  readonly changes: WatchedChange[] = []
  readonly startViews: StartView[] = []
  private inFlight = 0
  private timer: NodeJS.Timeout | undefined
  private seq = 0
  private readonly watches = new Map<string, AbortController>()
  private readonly pending = new Set<Promise<void>>()

  constructor(
    private readonly agents: readonly AgentHost[],
    private readonly random: Random,
    private readonly options: WorkloadOptions,
  ) {}

  keyName(i: number): string {
    return `k${String(i).padStart(3, '0')}`
  }

  start(): void {
    const period = 1000 / this.options.opsPerSec
    this.timer = setInterval(() => this.issue(), period)
  }

  /** Stops issuing and waits for the requests in flight. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    await Promise.all([...this.pending])
  }

  private issue(): void {
    if (this.inFlight >= this.options.maxInFlight) return
    const running = this.agents.filter((a) => a.state === 'running')
    if (running.length === 0) return
    const agent = running[randomInt(this.random, running.length)]!
    const key = this.keyName(randomInt(this.random, this.options.keys))
    const roll = this.random.next()
    const kind: OpKind = roll < 0.55 ? 'put' : roll < 0.8 ? 'delete' : 'ttl-put'
    const value = `v${++this.seq}`
    const op: Op = { kind, key, value, agent: agent.name, sentAt: Date.now(), outcome: 'pending' }
    this.ops.push(op)
    this.inFlight++
    const done = this.send(agent, op).finally(() => {
      this.inFlight--
      this.pending.delete(done)
    })
    this.pending.add(done)
  }

  private async send(agent: AgentHost, op: Op): Promise<void> {
    let route = `/v1/kv/${op.key}`
    if (op.kind === 'ttl-put') {
      const [lo, hi] = this.options.ttlMs
      const ttl = lo + randomInt(this.random, hi - lo + 1)
      route += `?ttl=${ttl}ms`
      op.ttlMs = ttl
    }
    const res = await request(agent.http, op.kind === 'delete' ? 'DELETE' : 'PUT', route, op.kind === 'delete' ? undefined : op.value)
    if (res === undefined) {
      op.outcome = 'unknown'
      return
    }
    const body = res.json as { version?: Version } | undefined
    if (res.status === 200 && body?.version !== undefined) {
      op.outcome = 'acked'
      op.version = body.version
      op.ackedAt = Date.now()
    } else {
      op.outcome = 'refused'
    }
  }

  /** Reads an agent's change stream for its current life (call after each start). */
  watch(agent: AgentHost): void {
    this.watches.get(agent.name)?.abort()
    const ctl = new AbortController()
    this.watches.set(agent.name, ctl)
    const life = agent.lives
    const read = async (): Promise<void> => {
      try {
        const res = await fetch(`http://${agent.http}/v1/watch`, { signal: ctl.signal })
        if (res.body === null) return
        // The stream is subscribed once its headers are sent: read the keys now (in parallel with the stream).
        void this.readStartView(agent, life)
        const decoder = new TextDecoder()
        const sse = new SseReader()
        for await (const chunk of res.body) {
          for (const data of sse.push(decoder.decode(chunk as Uint8Array, { stream: true }))) {
            const c = JSON.parse(data) as { key: string; version: Version; deleted: boolean }
            this.changes.push({ agent: agent.name, life, key: c.key, version: c.version, deleted: c.deleted, at: Date.now() })
          }
        }
      } catch {
        // the agent was killed or stopped watching: this life's stream ends here
      }
    }
    void read()
  }

  private async readStartView(agent: AgentHost, life: number): Promise<void> {
    const res = await request(agent.http, 'GET', '/v1/kv', undefined, 5000)
    if (res?.status !== 200 || !Array.isArray(res.json)) return
    const keys = new Map<string, Version>()
    for (const e of res.json as { key: string; version: Version }[]) keys.set(e.key, e.version)
    this.startViews.push({ agent: agent.name, life, at: Date.now(), keys })
  }

  unwatchAll(): void {
    for (const c of this.watches.values()) c.abort()
    this.watches.clear()
  }
}
