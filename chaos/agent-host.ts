/**
 * One grapevine agent on one lab host: a real `grapevine agent` process
 * started inside the host's network namespace (`ip netns exec`), its JSON
 * log lines kept with their times, its memory sampled from /proc, and the
 * process faults of a scenario: SIGKILL, restart (with or without its data
 * dir), SIGSTOP/SIGCONT, and a graceful SIGTERM leave.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { readSnapshot } from '../src/agent/snapshot.js'
import { originNodeName } from '../src/engine/engine.js'
import { parseJsonOrUndefined } from '../src/util/json.js'
import type { LabHost } from './lab.js'
import type { Version } from './workload.js'

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))
export const GOSSIP_PORT = 7946
export const HTTP_PORT = 7070
/** How often each agent writes its data-dir snapshot (`--snapshot-interval`). */
const SNAPSHOT_INTERVAL_MS = 2000

export interface AgentSettings {
  /** Every agent's gossip address, for --join (an agent skips its own). */
  readonly seeds: readonly string[]
  readonly tombstoneRetention: string
  readonly dataRoot: string
}

/** A log line of the agent (pino JSON), as read. */
export interface LogLine {
  readonly level: number
  readonly time: number
  readonly msg: string
  readonly [field: string]: unknown
}

export type HostState = 'running' | 'stopped' | 'killed' | 'left'

/** The data-dir snapshot a life started from, as the harness read it just before the start. */
export interface RestoredSnapshot {
  /** When the agent took it: every change it had applied by then is in it. */
  readonly savedAtMs: number
  /** Every entry, tombstones included (`deleted`). */
  readonly entries: ReadonlyMap<string, { readonly version: Version; readonly deleted: boolean }>
}

/** One life of an agent: one process, from its start to its end. */
export interface AgentLife {
  /** 1 for the first life. */
  readonly life: number
  readonly startedAt: number
  /** Started on the data dir its previous life left (a restart that kept the data). */
  readonly keptData: boolean
  /** The snapshot it started from (kept data only; undefined when there was none). */
  readonly restored?: RestoredSnapshot
}

export class AgentHost {
  readonly name: string
  readonly http: string
  readonly gossip: string
  private child: ChildProcess | undefined
  state: HostState = 'killed'
  /** Every log line of every life of this agent. */
  readonly logs: LogLine[] = []
  /** Exits the harness did not cause (a crash). */
  readonly unexpectedExits: string[] = []
  /** RSS samples of the current life (bytes). */
  rss: number[] = []
  /** Lives started (1 after the first start). */
  lives = 0
  /** Every life, in order. */
  readonly lifeLog: AgentLife[] = []
  /** Snapshots in the data dir that could not be read before a restart (the agent would refuse them too). */
  readonly unreadableSnapshots: string[] = []
  private expectingExit = false
  /** The exit of a stop in progress (a leave takes up to a few seconds): a restart waits for it. */
  private stopping: Promise<void> | undefined

  constructor(
    readonly host: LabHost,
    private readonly settings: AgentSettings,
  ) {
    this.name = `h${host.index}`
    this.http = `${host.address}:${HTTP_PORT}`
    this.gossip = `${host.address}:${GOSSIP_PORT}`
  }

  get dataDir(): string {
    return path.join(this.settings.dataRoot, this.name)
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /**
   * Starts a new life and resolves once its HTTP API answers (or rejects
   * after 20 s). `keptData`: the data dir is the one the previous life left.
   */
  async start(keptData = false): Promise<void> {
    const restored = keptData ? this.readRestoredSnapshot() : undefined
    const seeds = this.settings.seeds.filter((s) => s !== this.gossip)
    const args = [
      'netns', 'exec', this.host.ns,
      process.execPath, CLI, 'agent',
      '--name', this.name,
      '--bind', this.gossip,
      '--http', this.http,
      // The lab's namespace address is not loopback; only the harness can reach it.
      '--http-allow-unauthenticated',
      '--join', seeds.join(','),
      '--preset', 'lan',
      '--data-dir', this.dataDir,
      '--snapshot-interval', `${SNAPSHOT_INTERVAL_MS}ms`,
      '--tombstone-retention', this.settings.tombstoneRetention,
      '--log-level', 'info',
    ]
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    this.lives++
    this.lifeLog.push({ life: this.lives, startedAt: Date.now(), keptData, ...(restored !== undefined ? { restored } : {}) })
    this.rss = []
    this.expectingExit = false
    let buffered = ''
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString()
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        try {
          const entry = JSON.parse(line) as LogLine
          if (typeof entry.level === 'number' && typeof entry.time === 'number') this.logs.push(entry)
        } catch {
          if (line.trim().length > 0) this.logs.push({ level: 50, time: Date.now(), msg: `unparsed output: ${line.slice(0, 300)}` })
        }
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined
      if (!this.expectingExit) {
        this.unexpectedExits.push(`${this.name} life ${this.lives} exited by itself (${signal ?? `code ${code}`})`)
        this.state = 'killed'
      }
    })
    this.state = 'running'
    const deadline = Date.now() + 20_000
    for (;;) {
      if (this.child !== child) throw new Error(`${this.name} exited while starting`)
      try {
        const res = await fetch(`http://${this.http}/v1/status`, { signal: AbortSignal.timeout(1000) })
        if (res.ok) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.name} did not answer on ${this.http} within 20 s`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child
    if (child === undefined) return
    this.expectingExit = true
    const exited = once(child, 'exit').then(() => undefined)
    this.stopping = exited
    child.kill(sig)
    await exited
    if (this.stopping === exited) this.stopping = undefined
  }

  /** SIGKILL: the process is gone at once, its data dir as the last snapshot left it. */
  async kill(): Promise<void> {
    const had = this.child !== undefined
    await this.signal('SIGKILL')
    if (had && this.child === undefined) this.state = 'killed'
  }

  /** A graceful leave (SIGTERM): the others must see it `left`. */
  async leave(): Promise<void> {
    const had = this.child !== undefined
    await this.signal('SIGTERM')
    // A restart may have begun a new life meanwhile: that life's state stands.
    if (had && this.child === undefined) this.state = 'left'
  }

  freeze(): void {
    if (this.state !== 'running') return
    this.child?.kill('SIGSTOP')
    this.state = 'stopped'
  }

  thaw(): void {
    if (this.state !== 'stopped') return
    this.child?.kill('SIGCONT')
    this.state = 'running'
  }

  /** Starts again after a kill; `keepData` false wipes the data dir first (a new disk). */
  async restart(keepData: boolean): Promise<void> {
    if (this.stopping !== undefined) await this.stopping
    if (this.child !== undefined) await this.kill()
    if (!keepData) rmSync(this.dataDir, { recursive: true, force: true })
    await this.start(keepData)
  }

  /** The snapshot the next life will start from, read the way the agent reads it. */
  private readRestoredSnapshot(): RestoredSnapshot | undefined {
    try {
      const snap = readSnapshot(this.dataDir, { name: this.name, label: '' })
      if (snap === undefined) return undefined
      const entries = new Map<string, { version: Version; deleted: boolean }>()
      for (const e of snap.state.entries) entries.set(e.key, { version: { ts: e.ts, origin: originNodeName(e.origin) }, deleted: e.value === undefined })
      return { savedAtMs: snap.meta.savedAtMs, entries }
    } catch (err) {
      this.unreadableSnapshots.push(`${this.name}: ${(err as Error).message}`)
      return undefined
    }
  }

  /** Reads the process's resident set size (its own, not the `ip` wrapper's: `ip netns exec` execs it). */
  sampleRss(): void {
    const pid = this.child?.pid
    if (pid === undefined || this.state !== 'running') return
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m !== null) this.rss.push(Number(m[1]) * 1024)
    } catch {
      // exited meanwhile
    }
  }

  /** Stops the agent at the end of a scenario (SIGKILL: the checks are done). */
  async shutdown(): Promise<void> {
    if (this.state === 'stopped') this.thaw()
    await this.signal('SIGKILL')
  }
}

/** An HTTP request to an agent, with a timeout; undefined when it did not answer. */
export async function request(
  http: string,
  method: string,
  route: string,
  body?: string,
  timeoutMs = 3000,
): Promise<{ status: number; json: unknown } | undefined> {
  try {
    const res = await fetch(`http://${http}${route}`, { method, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(timeoutMs) })
    return { status: res.status, json: parseJsonOrUndefined(await res.text()) }
  } catch {
    return undefined
  }
}
