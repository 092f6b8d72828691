import { type EngineConfigInput, engineConfig } from '../engine/config.js'
import { GossipEngine, type SetOptions } from '../engine/engine.js'
import { type Member, MemberStatus, NO_TAGS } from '../membership/member.js'
import { SharedMembers } from '../membership/member-table.js'
import type { MemberEvent } from '../membership/membership.js'
import type { StateChange } from '../state/cluster-state.js'
import type { Value, Version } from '../state/entry.js'
import { MinHeap } from '../util/heap.js'
import { SeededRandom } from '../util/random.js'
import { DEFAULT_LIMITS } from '../codec/limits.js'
import { type WireLimits, receiveInto, sendAll } from '../runtime/transport.js'
import { type EncryptionSetting, PacketSecurity, SALT_BYTES, sealOverhead, sealStreamOverhead } from '../security/packet-security.js'
import { SimNetwork } from './network.js'
import { SimTransport } from './sim-transport.js'

export interface SimNode {
  /** A node is its own tick event in the queue (see `schedule`): no allocation per wake. */
  readonly kind: 'node'
  readonly index: number
  readonly name: string
  readonly address: string
  engine: GossipEngine
  readonly transport: SimTransport
  /** Packet encryption of this node's current process, when the simulation runs encrypted. */
  security: PacketSecurity | undefined
  up: boolean
  generation: number
  /** Virtual time of the scheduled tick (on the simulation's clock); a tick popped at any other time is stale. */
  wakeAt: number
  /** This node's wall clock minus the true (simulation) time: a skewed or broken clock. */
  clockOffsetMs: number
  /** While frozen (a stopped process), until this time; messages wait in `inbox`. */
  frozenUntil: number
  inbox: { from: SimNode; bytes: Buffer; stream: boolean }[]
}

export interface SimulationOptions {
  /** Seed of every random choice of the run: the same seed replays the same run. */
  readonly seed: number
  /** Virtual wall-clock time at the start (ms since the epoch). */
  readonly startMs?: number
  /** Engine settings shared by all nodes (name, address and generation are set per node). */
  readonly engine?: Omit<EngineConfigInput, 'name' | 'address' | 'generation'>
  /** Packet encryption on every node, as `Grapevine`'s `encryption` option (session salts come from the seed). */
  readonly encryption?: EncryptionSetting
}

type SimEvent =
  | SimNode
  | { kind: 'deliver'; from: SimNode; to: SimNode; bytes: Buffer; stream: boolean; generation: number }
  | { kind: 'call'; fn: () => void }
  | { kind: 'thaw'; node: SimNode; generation: number }

/** Virtual start time used unless given: 2026-01-01T00:00:00Z. */
export const DEFAULT_SIM_START_MS = 1_767_225_600_000

/**
 * A deterministic discrete-event simulation of a cluster running the real
 * engine: a virtual clock, one seeded random source, and `SimNetwork` for
 * every byte between nodes. Nothing is modelled: each node is a
 * `GossipEngine` exactly as the real runtime drives it.
 */
export class Simulation {
  readonly random: SeededRandom
  readonly network: SimNetwork
  readonly nodes: SimNode[] = []
  readonly seed: number
  private readonly queue = new MinHeap<SimEvent>()
  private readonly byAddress = new Map<string, SimNode>()
  private readonly engineOptions: SimulationOptions['engine']
  now: number
  /** Called for every visible change on every node. */
  onChange: ((node: SimNode, change: StateChange, now: number) => void) | undefined
  /** Called for every membership event on every node. */
  onMemberEvent: ((node: SimNode, event: MemberEvent, now: number) => void) | undefined
  /** Events processed so far (for progress and performance figures). */
  eventsProcessed = 0
  /** Called with every message as it reaches a live node, before it is opened (a tap for fuzzing corpora and traces). */
  onDeliver: ((fromAddress: string, to: SimNode, bytes: Buffer, stream: boolean) => void) | undefined
  private readonly encryption: SimulationOptions['encryption']
  /** What sealing adds to a message (0 unencrypted), and the wire limits that follow. */
  private readonly sealBytes: number
  private readonly wire: WireLimits
  private readonly route = (fromIndex: number, to: string, bytes: Buffer, stream: boolean): void => this.routeMessage(fromIndex, to, bytes, stream)

  constructor(options: SimulationOptions) {
    this.seed = options.seed
    this.random = new SeededRandom(options.seed)
    this.now = options.startMs ?? DEFAULT_SIM_START_MS
    this.engineOptions = options.engine
    this.encryption = options.encryption
    const maxPacketBytes = options.engine?.limits?.maxPacketBytes ?? 1400
    this.network = new SimNetwork(this.random.fork(), maxPacketBytes)
    this.sealBytes = options.encryption === undefined ? 0 : sealOverhead(options.engine?.label ?? '')
    // A sealed stream carries a preamble as well as the body's envelope.
    const streamSealBytes = options.encryption === undefined ? 0 : sealStreamOverhead(options.engine?.label ?? '')
    this.wire = { packetBytes: maxPacketBytes, streamBytes: (options.engine?.limits?.maxStreamBytes ?? DEFAULT_LIMITS.maxStreamBytes) + streamSealBytes }
  }

  /** Adds a node. `seeds` defaults to the first node's address. */
  addNode(options: { name?: string; seeds?: readonly string[]; members?: SharedMembers; address?: string } = {}): SimNode {
    const index = this.nodes.length
    const name = options.name ?? `n${index}`
    const address = options.address ?? `sim:${index}`
    const generation = 1
    const seeds = options.seeds ?? (this.nodes.length > 0 ? [this.nodes[0]!.address] : [])
    const engine = this.makeEngine(name, address, generation, seeds, this.now, options.members)
    const node: SimNode = {
      kind: 'node',
      index,
      name,
      address,
      engine,
      transport: new SimTransport(index, this.route),
      security: this.makeSecurity(),
      up: true,
      generation,
      wakeAt: Infinity,
      clockOffsetMs: 0,
      frozenUntil: -Infinity,
      inbox: [],
    }
    this.nodes.push(node)
    this.byAddress.set(address, node)
    this.network.ensureNode(index)
    this.schedule(node)
    return node
  }

  private makeEngine(
    name: string,
    address: string,
    generation: number,
    seeds: readonly string[],
    clockMs = this.now,
    members?: SharedMembers,
  ): GossipEngine {
    const input: EngineConfigInput = { ...this.engineOptions, name, address, generation, seeds }
    // As `Grapevine` does: messages leave room for the seal.
    if (this.sealBytes > 0) input.limits = { ...this.engineOptions?.limits, maxPacketBytes: this.wire.packetBytes - this.sealBytes }
    return new GossipEngine(engineConfig(input), this.random.fork(), clockMs, members)
  }

  private makeSecurity(): PacketSecurity | undefined {
    const e = this.encryption
    if (e === undefined) return undefined
    const salt = Buffer.alloc(SALT_BYTES)
    for (let i = 0; i < SALT_BYTES; i += 4) salt.writeUInt32BE(Math.floor(this.random.next() * 2 ** 32), i)
    return PacketSecurity.fromSetting(e, this.engineOptions?.label ?? '', salt)
  }

  /**
   * Adds `n` nodes that already know each other (a formed cluster), so that
   * dissemination is measured apart from discovery.
   */
  addCluster(n: number): SimNode[] {
    const first = this.nodes.length
    const existing = this.nodes.slice()
    const all = [...existing.map((x) => ({ name: x.name, address: x.address }))]
    for (let i = 0; i < n; i++) all.push({ name: `n${first + i}`, address: `sim:${first + i}` })
    // One directory shared copy-on-write by the new nodes: O(N) memory, not O(N^2).
    const records: Member[] = all.map((p) => ({
      name: p.name,
      address: p.address,
      generation: 1,
      incarnation: 1,
      status: MemberStatus.Alive,
      tags: NO_TAGS,
      since: this.now,
    }))
    const base = new SharedMembers(records)
    const added: SimNode[] = []
    for (let i = 0; i < n; i++) added.push(this.addNode({ seeds: [], members: base }))
    for (const b of existing) for (const a of added) b.engine.addPeer(a.name, a.address)
    return added
  }

  /** Runs `fn` at virtual time `atMs`. */
  at(atMs: number, fn: () => void): void {
    this.queue.push(Math.max(atMs, this.now), { kind: 'call', fn })
  }

  /** Processes events up to and including `untilMs`, then sets the clock to it. */
  runUntil(untilMs: number): void {
    const q = this.queue
    for (;;) {
      const at = q.peekPriority()
      if (at === undefined || at > untilMs) break
      const ev = q.pop()!
      this.now = at
      this.eventsProcessed++
      this.handle(ev)
    }
    if (untilMs > this.now) this.now = untilMs
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms)
  }

  /**
   * Runs until `done()` holds (checked every `stepMs`) or `maxMs` passes.
   * Returns the virtual time it took, or undefined if it never held.
   */
  runUntilTrue(done: () => boolean, maxMs: number, stepMs = 100): number | undefined {
    const start = this.now
    while (this.now - start <= maxMs) {
      if (done()) return this.now - start
      this.runFor(stepMs)
    }
    return done() ? this.now - start : undefined
  }

  private handle(ev: SimEvent): void {
    switch (ev.kind) {
      case 'node': {
        const node = ev
        // Stale: the node was rescheduled, crashed, frozen or restarted since this wake was queued.
        if (!node.up || node.wakeAt !== this.now) return
        node.wakeAt = Infinity
        if (this.now < node.frozenUntil) return
        // Woken for a deadline that has since gone (an answered probe): nothing is due, as a real timer firing early finds.
        const wakeMs = node.engine.nextWakeMs()
        if (wakeMs - node.clockOffsetMs > this.now) {
          this.schedule(node, wakeMs)
          return
        }
        node.engine.tick(this.clockOf(node))
        this.flush(node)
        return
      }
      case 'deliver': {
        const to = ev.to
        // A message to a crashed node, or to the previous life of a restarted one, is lost.
        if (!to.up || to.generation !== ev.generation) return
        if (this.now < to.frozenUntil) {
          // A stopped process: the kernel queues its datagrams until it runs again.
          to.inbox.push({ from: ev.from, bytes: ev.bytes, stream: ev.stream })
          return
        }
        this.receive(to, ev.from.address, ev.bytes, ev.stream)
        return
      }
      case 'call':
        ev.fn()
        return
      case 'thaw': {
        const node = ev.node
        if (!node.up || node.generation !== ev.generation) return
        // Node.js runs due timers before it reads sockets: the tick comes first.
        node.engine.tick(this.clockOf(node))
        this.flush(node)
        const inbox = node.inbox
        node.inbox = []
        for (const m of inbox) this.receive(node, m.from.address, m.bytes, m.stream)
        return
      }
    }
  }

  /** A message reaches a running node: opened by its packet security (if any), then handed to its engine. */
  private receive(to: SimNode, fromAddress: string, bytes: Buffer, stream: boolean): void {
    this.onDeliver?.(fromAddress, to, bytes, stream)
    receiveInto(to.engine, to.security, this.wire, this.clockOf(to), fromAddress, bytes, stream)
    this.flush(to)
  }

  /** `SimTransport`'s sends: the network decides each message's fate; survivors become delivery events. */
  private routeMessage(fromIndex: number, toAddress: string, bytes: Buffer, stream: boolean): void {
    const to = this.byAddress.get(toAddress)
    if (to === undefined) return
    const from = this.nodes[fromIndex]!
    const copies = this.network.route(fromIndex, to.index, bytes.length, stream)
    for (let c = 0; c < copies; c++) {
      this.queue.push(this.now + this.network.delays[c]!, { kind: 'deliver', from, to, bytes, stream, generation: to.generation })
    }
  }

  /** Sends what the engine queued, reports its changes, and reschedules its tick. */
  private flush(node: SimNode): void {
    const engine = node.engine
    sendAll(engine.takeOutbox(), node.transport, node.security)
    const changes = engine.takeChanges()
    if (changes.length > 0 && this.onChange !== undefined) {
      for (const c of changes) this.onChange(node, c, this.now)
    }
    const events = engine.takeMemberEvents()
    if (events.length > 0 && this.onMemberEvent !== undefined) {
      for (const e of events) this.onMemberEvent(node, e, this.now)
    }
    this.schedule(node)
  }

  /** Queues the node's next tick; `wakeMs` (its own clock) when the caller has just asked the engine. */
  private schedule(node: SimNode, wakeMs?: number): void {
    if (!node.up || this.now < node.frozenUntil) return
    const at = Math.max((wakeMs ?? node.engine.nextWakeMs()) - node.clockOffsetMs, this.now)
    if (at >= node.wakeAt) return
    node.wakeAt = at
    // The node itself is the event; `wakeAt` tells the live wake from earlier ones still queued.
    this.queue.push(at, node)
  }

  // ---- operations on nodes (each flushes what the engine produced) ----------

  /** The time on a node's own clock. */
  clockOf(node: SimNode): number {
    return this.now + node.clockOffsetMs
  }

  set(node: SimNode, key: string, value: Value, options?: SetOptions): Version {
    const v = node.engine.set(this.clockOf(node), key, value, options)
    this.flush(node)
    return v
  }

  delete(node: SimNode, key: string): Version | undefined {
    const v = node.engine.delete(this.clockOf(node), key)
    this.flush(node)
    return v
  }

  /** Stops a node abruptly: it neither sends nor receives until restarted. */
  crash(node: SimNode): void {
    node.up = false
    node.wakeAt = Infinity
  }

  /**
   * Stops a node's process for `ms` (SIGSTOP): it runs no timer and reads no
   * message meanwhile; messages to it wait and are read after its first tick.
   */
  freeze(node: SimNode, ms: number): void {
    node.frozenUntil = this.now + ms
    node.wakeAt = Infinity
    this.queue.push(node.frozenUntil, { kind: 'thaw', node, generation: node.generation })
  }

  /**
   * Hands `bytes` to a running node now, as if they came from `fromAddress`
   * (which need not be a node): how tests feed hostile input through the
   * same path as the network's deliveries.
   */
  inject(to: SimNode, fromAddress: string, bytes: Buffer, stream: boolean): void {
    if (!to.up || this.now < to.frozenUntil) return
    this.receive(to, fromAddress, bytes, stream)
  }

  /** Gracefully leaves the cluster (the node keeps running until crashed). */
  leave(node: SimNode): void {
    node.engine.leave(this.clockOf(node))
    this.flush(node)
  }

  /** Brings a crashed or partitioned-away node back with its state intact (a process that was paused or cut off). */
  resume(node: SimNode): void {
    if (node.up) return
    node.up = true
    this.schedule(node)
  }

  /** Restarts a node as a new process: a new generation with empty state that knows its old peers' seeds. */
  restart(node: SimNode, seeds: readonly string[] = [this.nodes[0]!.address]): void {
    node.generation++
    node.frozenUntil = -Infinity
    node.inbox = []
    node.engine = this.makeEngine(node.name, node.address, node.generation, seeds, this.clockOf(node))
    node.security = this.makeSecurity()
    node.up = true
    node.wakeAt = Infinity
    this.schedule(node)
  }

  liveNodes(): SimNode[] {
    return this.nodes.filter((n) => n.up)
  }

  /** Whether every live node reports the same state hash. */
  converged(): boolean {
    let hash: string | undefined
    for (const n of this.nodes) {
      if (!n.up) continue
      const h = n.engine.stateHash(this.clockOf(n))
      if (hash === undefined) hash = h
      else if (h !== hash) return false
    }
    return true
  }
}
