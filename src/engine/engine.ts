import { DecodeError, type DropReason, InvalidKeyError, InvalidTtlError, ValueTooLargeError } from '../errors.js'
import { MAX_TTL_MS } from '../codec/limits.js'
import {
  type DigestPage,
  type Header,
  type Message,
  type MessageBody,
  MessageType,
  type Segment,
  decodeMessage,
  encodeParts,
  entryBodySize,
  headerSize,
} from '../codec/messages.js'
import { stringSize, varintSize } from '../codec/bytes.js'
import { ClusterState, MergeOutcome, type StateChange } from '../state/cluster-state.js'
import type { Entry, Value, Version } from '../state/entry.js'
import { HybridLogicalClock, hlcFromPhysicalMs, physicalMsOf } from '../state/hlc.js'
import type { Random } from '../util/random.js'
import type { EngineConfig } from './config.js'
import type { MemberEvent, NameConflict } from '../membership/membership.js'
import { Membership } from '../membership/membership.js'
import type { SharedMembers } from '../membership/member-table.js'
import { MemberStatus, type Tags } from '../membership/member.js'
import { applySegments, deltaFor, digestPage, isBehindHorizon, openingDigestPage } from './reconciliation.js'
import { EngineStats } from './stats.js'

/** A message the driver must deliver: a datagram, or a stream (reliable, larger) transfer. */
export interface Outgoing {
  readonly to: string
  readonly bytes: Buffer
  readonly stream: boolean
}

export interface SetOptions {
  /** Time to live: the key expires this many ms after the write, at the same instant on every node. */
  readonly ttlMs?: number
}

/**
 * The I/O-free gossip engine of one node.
 *
 * Inputs: `tick(now)`, `receive(now, from, bytes, stream)` and local calls
 * (`set`, `delete`). Outputs: `takeOutbox()` (messages to send),
 * `takeChanges()` (state changes to report) and `nextWakeMs()` (when to tick
 * next). It never reads a clock, sets a timer, draws `Math.random` or touches
 * a socket, so the same code runs under the simulator and on real sockets.
 *
 * It composes: `ClusterState` (the versioned map), `Membership` (whom to talk
 * to), reconciliation (Scuttlebutt anti-entropy, push-pull) and rumor
 * mongering (eager push of fresh writes).
 */
/** A node's state as `GossipEngine.snapshot` gives it and `restore` takes it. */
export interface StateSnapshot {
  readonly entries: Entry[]
  readonly watermarks: Map<string, number>
  readonly gcFloors: Map<string, number>
}

export class GossipEngine {
  readonly state: ClusterState
  readonly membership: Membership
  readonly stats = new EngineStats()
  private readonly clock = new HybridLogicalClock()
  private outbox: Outgoing[] = []
  /** When we last asked each peer (by address) for a full transfer. */
  private readonly resetRequestedAt = new Map<string, number>()
  /** When we last sent a stream (full state or bulk delta) in answer to each transport source address. */
  private readonly streamSentAt = new Map<string, number>()
  /** Streams sent in the current gossip interval, and when that interval began. */
  private streamsThisInterval = 0
  private streamIntervalStart = 0
  /** The transport address of the message being handled (the limiter's key: a sender names its reply address itself). */
  private currentSource = ''
  /** The sender name the message being handled claims. */
  private currentFrom = ''
  /**
   * When we last sent an anti-entropy message (Probe, Digest, DeltaDigest,
   * ResetRequest) to each host. Watermark claims about others (a Reset's
   * vector, a segment's upTo) are believed only in an exchange we took part
   * in, from the member the message names at that member's host: see
   * `isSolicited`.
   */
  private readonly solicitedAt = new Map<string, number>()
  private solicitedSweptAt = -Infinity
  /**
   * New origins introduced per sending host in the current gossip interval,
   * outside our own exchanges and by senders that are not members at their
   * own host (see `admitsOrigin`).
   */
  private readonly newOrigins = new Map<string, number>()
  private newOriginsWindowStart = -Infinity
  /** Handler failures already said in the log, by kind (see `onInternalError`). */
  private readonly internalErrorKinds = new Set<string>()
  private readonly header: Header
  private readonly headerBytes: number
  private nextRoundMs: number
  /** Addresses already reported as incompatible. */
  private readonly incompatible = new Set<string>()
  private warnings: string[] = []
  /** When we asked the driver to call `tick` next; being called much later means our process stalled. */
  private plannedWakeMs = Infinity
  /** How late a wake must be to count as a stall: half a probe timeout (a field, read on every message). */
  private readonly stallAfterMs: number
  /** Set by `restore` of an untrusted snapshot; cleared by the first full transfer received. */
  private resetWanted = false
  /** The time of the current tick (gossip rounds run inside ticks). */
  private lastRoundMs = 0
  /**
   * This node instance's origin id, `name~generation`: the stream its writes
   * are numbered in. A restarted node is a new origin, so it never claims
   * (through its watermark) writes of its previous life that it no longer holds.
   */
  readonly origin: string

  constructor(
    readonly config: EngineConfig,
    private readonly random: Random,
    nowMs: number,
    /** Members known from the start (shared; the simulator's formed clusters). */
    initialMembers?: SharedMembers,
  ) {
    this.origin = originId(config.name, config.generation)
    this.stallAfterMs = config.timing.probeTimeoutMs / 2
    this.state = new ClusterState(config.tombstoneRetentionMs)
    this.header = { label: config.label, from: config.name, fromAddress: config.address }
    this.headerBytes = headerSize(this.header)
    this.membership = new Membership(
      {
        name: config.name,
        address: config.address,
        generation: config.generation,
        seeds: config.seeds,
        tags: config.tags,
        timing: config.timing,
        bodyBudget: config.limits.maxPacketBytes - this.headerBytes,
        maxMembers: config.limits.maxMembers,
        peerHostOf: config.peerHostOf,
        minIncarnation: config.minIncarnation,
      },
      random,
      nowMs,
      (to, body, allowStream) => this.sendBody(to, body, allowStream === true),
      initialMembers,
    )
    // Rounds start at a random phase so nodes started together do not gossip in lockstep.
    this.nextRoundMs = nowMs + random.next() * config.gossipIntervalMs
  }

  get name(): string {
    return this.config.name
  }

  /** Bytes of a datagram left for the body after our header. */
  private get bodyBudget(): number {
    return this.config.limits.maxPacketBytes - this.headerBytes
  }

  // ---- local calls ----------------------------------------------------------

  /** Writes a key; returns the new version. Throws on a bad key or value. */
  set(nowMs: number, key: string, value: Value, options: SetOptions = {}): Version {
    this.validateKey(key)
    const limits = this.config.limits
    let stored: Value
    if (typeof value === 'string') {
      if (Buffer.byteLength(value, 'utf8') > limits.maxValueBytes) {
        throw new ValueTooLargeError(`value of key '${key}' exceeds maxValueBytes (${limits.maxValueBytes})`)
      }
      if (!isWellFormed(value)) throw new InvalidKeyError(`value of key '${key}' is not well-formed UTF-16 (lone surrogate)`)
      stored = value
    } else if (value instanceof Uint8Array) {
      if (value.length > limits.maxValueBytes) {
        throw new ValueTooLargeError(`value of key '${key}' exceeds maxValueBytes (${limits.maxValueBytes})`)
      }
      stored = new Uint8Array(value) // our own copy: the caller may reuse its buffer
    } else {
      throw new InvalidKeyError(`value of key '${key}' must be a string or a Uint8Array`)
    }
    let expiresAt: number | undefined
    if (options.ttlMs !== undefined) {
      if (typeof options.ttlMs !== 'number' || !Number.isFinite(options.ttlMs) || options.ttlMs <= 0 || options.ttlMs > MAX_TTL_MS) {
        throw new InvalidTtlError(`ttlMs must be a positive number of milliseconds up to ${MAX_TTL_MS} (10 years), got ${options.ttlMs}`)
      }
      expiresAt = Math.ceil(nowMs + options.ttlMs)
    }
    return this.writeLocal(nowMs, key, stored, expiresAt)
  }

  /** Deletes a key by writing a tombstone; returns its version, or undefined when the key is not live here. */
  delete(nowMs: number, key: string): Version | undefined {
    this.validateKey(key)
    if (this.state.get(key, nowMs) === undefined) return undefined
    return this.writeLocal(nowMs, key, undefined, undefined)
  }

  get(nowMs: number, key: string): Entry | undefined {
    return this.state.get(key, nowMs)
  }

  entries(nowMs: number, prefix = ''): Entry[] {
    return this.state.liveEntries(nowMs, prefix)
  }

  /** Hash of the live state (keys, values, versions) as of `nowMs`. */
  stateHash(nowMs: number): string {
    this.state.advance(nowMs)
    return this.state.stateHash
  }

  /** Adds a peer known out of band (the simulator's pre-formed clusters, tests), alive. */
  addPeer(name: string, address: string): void {
    this.membership.addMember(0, name, address)
  }

  /** Announces a graceful leave; keep ticking a little so the news goes out, then stop. */
  leave(nowMs: number): void {
    this.membership.leave(nowMs)
    this.afterActivity(nowMs)
  }

  setTags(nowMs: number, tags: Tags): void {
    this.membership.setTags(nowMs, tags)
    this.afterActivity(nowMs)
  }

  /**
   * A peer we cannot talk to (another protocol version, another cluster
   * label, not grapevine): said once per address, not per packet. The
   * counters count every packet.
   */
  private noteIncompatible(address: string, why: string): void {
    if (this.incompatible.has(address)) return
    if (this.incompatible.size >= MAX_INCOMPATIBLE_NOTED) return
    this.incompatible.add(address)
    this.warnings.push(`cannot talk to ${address}: ${why}`)
  }

  /**
   * Counts a packet the driver refused before decoding (packet security:
   * not decryptable, plaintext where encryption is required, another
   * cluster's label); a peer that cannot talk to us is said once.
   */
  dropPacket(fromAddress: string, reason: DropReason, detail: string): void {
    this.stats.drop(reason)
    // Damage and replays (a duplicate says nothing about whether we can talk to that address) are only counted.
    if (reason === 'oversized' || reason === 'truncated' || reason === 'malformed' || reason === 'limit-exceeded' || reason === 'replayed') return
    this.noteIncompatible(fromAddress, detail)
  }

  /** Warnings for the log, each said once (see noteIncompatible). */
  takeWarnings(): string[] {
    if (this.warnings.length === 0) return []
    const out = this.warnings
    this.warnings = []
    return out
  }

  takeMemberEvents(): readonly MemberEvent[] {
    return this.membership.takeEvents()
  }

  takeConflicts(): NameConflict[] {
    return this.membership.takeConflicts()
  }

  private validateKey(key: string): void {
    if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError('a key must be a non-empty string')
    const n = Buffer.byteLength(key, 'utf8')
    if (n > this.config.limits.maxKeyBytes) {
      throw new InvalidKeyError(`key of ${n} bytes exceeds maxKeyBytes (${this.config.limits.maxKeyBytes})`)
    }
    if (!isWellFormed(key)) throw new InvalidKeyError('a key must be well-formed UTF-16 (no lone surrogate)')
  }

  private writeLocal(nowMs: number, key: string, value: Value | undefined, expiresAt: number | undefined): Version {
    this.state.advance(nowMs)
    const prevTs = this.state.watermark(this.origin)
    const ts = this.clock.tick(nowMs)
    const entry: Entry = { key, value, ts, origin: this.origin, expiresAt }
    this.state.merge(entry, nowMs)
    // Our own writes are contiguous by construction.
    this.state.raiseWatermark(this.origin, ts)
    if (this.config.eagerPush) this.push(entry, prevTs, this.pushHops(), undefined)
    return { ts, origin: this.origin }
  }

  // ---- rumor mongering ------------------------------------------------------

  /** ceil(log_fanout(N)) + 1 hops reach the whole cluster with high probability; anti-entropy mends the rest. */
  private pushHops(): number {
    if (this.config.pushHops !== undefined) return this.config.pushHops
    const n = this.membership.liveCount
    const base = Math.max(2, this.config.fanout)
    return Math.ceil(Math.log(n) / Math.log(base)) + 1
  }

  private push(entry: Entry, prevTs: number, hops: number, exclude: string | undefined): void {
    // A write too large for a datagram is left to anti-entropy, which streams it. The exact size
    // of the relay: a forwarded push carries its sender's hops and link, up to 8 bytes each.
    if (entryBodySize(entry) + stringSize(entry.origin) + varintSize(prevTs) + varintSize(hops) > this.bodyBudget) return
    const bytes = encodeParts(this.header, { type: MessageType.Push, hops, prevTs, entry })
    for (const to of this.membership.gossipAddresses(this.config.fanout, exclude)) {
      this.send(to, bytes, MessageType.Push, false)
      this.stats.pushesSent++
    }
  }

  // ---- time -----------------------------------------------------------------

  /** Runs what is due at `nowMs`: expiry, collection, and the gossip round. */
  tick(nowMs: number): void {
    this.lastRoundMs = nowMs
    this.checkStall(nowMs)
    this.state.advance(nowMs)
    this.membership.tick(nowMs)
    if (nowMs >= this.nextRoundMs) {
      if (this.membership.phase !== 'conflict') this.gossipRound()
      this.nextRoundMs += this.config.gossipIntervalMs
      // After a stall, do not replay missed rounds in a burst.
      if (this.nextRoundMs <= nowMs) this.nextRoundMs = nowMs + this.config.gossipIntervalMs
    }
    this.afterActivity(nowMs)
  }

  /** When the engine next needs `tick`. */
  nextWakeMs(): number {
    const due = this.state.nextDueMs()
    const at = Math.min(this.nextRoundMs, this.membership.nextWakeMs())
    return due === undefined ? at : Math.min(due, at)
  }

  /** Notes when we want the next tick; a wake already due means now (we are awake), not a time in the past. */
  private afterActivity(nowMs: number): void {
    this.plannedWakeMs = Math.max(nowMs, this.nextWakeMs())
  }

  /**
   * Called far later than we asked (a stopped process, a long GC, a blocked
   * event loop): our own lateness must not count as others' silence.
   */
  private checkStall(nowMs: number): void {
    const late = nowMs - this.plannedWakeMs
    if (late > this.stallAfterMs) this.membership.onStall(nowMs, late)
    this.plannedWakeMs = Infinity
  }

  get phase(): string {
    return this.membership.phase
  }

  /** One anti-entropy round: a fingerprint probe to `fanout` random peers. */
  private gossipRound(): void {
    const sync = this.state.syncFingerprint
    const wm = this.state.watermarkFingerprint
    const members = this.membership.table.fingerprint
    const bytes = encodeParts(this.header, {
      type: MessageType.Probe,
      syncHi: sync.hi,
      syncLo: sync.lo,
      wmHi: wm.hi,
      wmLo: wm.lo,
      memberHi: members.hi,
      memberLo: members.lo,
    })
    const targets = this.membership.gossipAddresses(this.config.fanout, undefined, true)
    for (const to of targets) {
      this.noteSolicited(this.lastRoundMs, to)
      this.send(to, bytes, MessageType.Probe, false)
      this.stats.probesSent++
    }
    // A restored snapshot older than the retention is not trusted: a live peer's full state decides.
    if (this.resetWanted && this.membership.livePeers > 0 && targets.length > 0) this.requestReset(this.lastRoundMs, targets[0]!)
  }

  /** Everything `restore` needs to rebuild this node's state (a data-dir snapshot). */
  snapshot(): StateSnapshot {
    const watermarks = new Map<string, number>()
    const gcFloors = new Map<string, number>()
    for (const o of this.state.origins()) {
      const wm = this.state.watermark(o)
      if (wm > 0) watermarks.set(o, wm)
      const floor = this.state.gcFloor(o)
      if (floor > 0) gcFloors.set(o, floor)
    }
    return { entries: [...this.state.allEntries()], watermarks, gcFloors }
  }

  /**
   * Loads a snapshot taken by `snapshot` (of an earlier run of this node)
   * into this engine's state, before it has talked to anyone. `trusted`
   * false (the snapshot is older than the tombstone retention: deletes it
   * never saw may have been collected since) makes the engine ask live peers
   * for a full transfer until one arrives; the reset then drops what they saw
   * deleted and keeps what only this node had.
   */
  restore(nowMs: number, snap: StateSnapshot, trusted: boolean): void {
    for (const e of snap.entries) this.clock.observe(e.ts)
    this.state.reset(snap.entries, snap.watermarks, snap.gcFloors, nowMs)
    this.state.advance(nowMs)
    this.state.takeChanges()
    this.resetWanted = !trusted
    this.afterActivity(nowMs)
  }

  // ---- network --------------------------------------------------------------

  takeOutbox(): readonly Outgoing[] {
    if (this.outbox.length === 0) return NO_OUTGOING
    const out = this.outbox
    this.outbox = []
    return out
  }

  takeChanges(): readonly StateChange[] {
    return this.state.takeChanges()
  }

  private send(to: string, bytes: Buffer, type: MessageType, stream: boolean): void {
    // Every path sizes its datagrams; this is the one place that makes sure, so a peer never
    // counts ours as oversized whatever hostile values they relay (hops, links, sequence numbers).
    if (!stream && bytes.length > this.config.limits.maxPacketBytes) {
      this.stats.unsendable++
      return
    }
    this.outbox.push({ to, bytes, stream })
    this.stats.sent(type, bytes.length, stream)
  }

  /** Encodes and sends a membership message; one over the datagram limit goes by stream when allowed, else is counted (`unsendable`) and not sent. */
  private sendBody(to: string, body: MessageBody, allowStream: boolean): void {
    const bytes = encodeParts(this.header, body)
    const stream = bytes.length > this.config.limits.maxPacketBytes
    if (stream && (!allowStream || bytes.length > this.config.limits.maxStreamBytes)) {
      this.stats.unsendable++
      return
    }
    this.send(to, bytes, body.type, stream)
  }

  /**
   * The highest timestamp we accept from others: our wall clock plus the
   * allowed drift. Measured from the wall clock, not from our hybrid clock,
   * which absorbs accepted remote timestamps: otherwise a stream of writes
   * each just inside the bound would ratchet the bound ever further ahead.
   */
  private maxAcceptableTs(nowMs: number): number {
    return hlcFromPhysicalMs(nowMs + this.config.maxClockDriftMs)
  }

  /**
   * Handles inbound bytes. Nothing in them can make this throw: undecodable
   * input is dropped and counted by reason.
   */
  receive(nowMs: number, fromAddress: string, bytes: Buffer, stream: boolean): void {
    const limits = this.config.limits
    if (stream) {
      this.stats.streamsIn++
      this.stats.streamBytesIn += bytes.length
    } else {
      this.stats.messagesIn++
      this.stats.bytesIn += bytes.length
    }
    let msg: Message
    try {
      msg = decodeMessage(bytes, limits, stream ? limits.maxStreamBytes : limits.maxPacketBytes, this.config.isUsableAddress)
    } catch (err) {
      if (err instanceof DecodeError) {
        this.stats.drop(err.reason)
        if (err.reason === 'protocol-version' || err.reason === 'bad-magic') this.noteIncompatible(fromAddress, err.message)
        return
      }
      throw err
    }
    this.stats.received(msg.type, bytes.length)
    if (msg.label !== this.config.label) {
      this.stats.drop('label-mismatch')
      this.noteIncompatible(fromAddress, `${msg.from} is in cluster '${msg.label}', we are in '${this.config.label}'`)
      return
    }
    const replyTo = msg.fromAddress.length > 0 ? msg.fromAddress : fromAddress
    if (msg.from === this.name) {
      // Our own message looped back (a seed that is ourselves), or another process using our name.
      if (msg.fromAddress !== this.config.address) this.membership.onNameClash(nowMs, msg, fromAddress, replyTo)
      this.afterActivity(nowMs)
      return
    }
    this.checkStall(nowMs)
    this.currentSource = fromAddress
    this.currentFrom = msg.from
    try {
      this.handle(nowMs, msg, replyTo)
    } catch (err) {
      this.onInternalError(`handling ${MessageType[msg.type] ?? msg.type}`, err)
    }
    this.afterActivity(nowMs)
  }

  /**
   * The last-resort guard: a handler that throws is a bug, but one message
   * must never stop the node. Counted (`internal-error`), said once per kind
   * in the log, and the node goes on. Drivers report their own such failures
   * here too.
   */
  onInternalError(kind: string, err: unknown): void {
    this.stats.drop('internal-error')
    const name = err instanceof Error ? err.name : typeof err
    const key = `${kind}: ${name}`
    if (this.internalErrorKinds.has(key) || this.internalErrorKinds.size >= MAX_INCOMPATIBLE_NOTED) return
    this.internalErrorKinds.add(key)
    const message = err instanceof Error ? err.message : String(err)
    this.warnings.push(`internal error ${key} (${message}); the message was dropped and counted as internal-error, said once per kind`)
  }

  private handle(nowMs: number, msg: Message, replyTo: string): void {
    this.membership.heardFrom(nowMs, msg.from, replyTo, this.currentSource)
    this.state.advance(nowMs)
    switch (msg.type) {
      case MessageType.Probe:
        this.membership.onFingerprint(nowMs, msg.memberHi, msg.memberLo, replyTo)
        this.onProbe(nowMs, msg.syncHi, msg.syncLo, msg.wmHi, msg.wmLo, replyTo)
        break
      case MessageType.Digest:
        this.onDigest(nowMs, msg.page, replyTo)
        break
      case MessageType.DeltaDigest:
        this.onDeltaDigest(nowMs, msg.page, msg.segments, replyTo, msg.from)
        break
      case MessageType.Delta:
        this.applyDelta(nowMs, msg.segments, msg.from, replyTo)
        break
      case MessageType.ResetRequest:
        this.sendReset(nowMs, replyTo)
        break
      case MessageType.Push:
        this.onPush(nowMs, msg.entry, msg.prevTs, msg.hops, msg.from)
        break
      case MessageType.Reset:
        this.onReset(nowMs, msg.entries, msg.watermarks, msg.gcFloors, msg.from, replyTo)
        break
      case MessageType.Ping:
      case MessageType.Ack:
      case MessageType.PingReq:
      case MessageType.Nack:
      case MessageType.MemberGossip:
      case MessageType.JoinRequest:
      case MessageType.MemberSync: {
        const refused = this.membership.stats.claimsRefused
        this.membership.handle(nowMs, msg, replyTo, this.currentSource)
        const n = this.membership.stats.claimsRefused - refused
        if (n > 0) this.stats.drop('claim-refused', n)
        break
      }
    }
  }

  /**
   * Notes an answer to the current message's sender, when it is a live
   * member speaking from its own host: only such answers can ever pass
   * `isSolicited`, so a flood of messages from made-up senders cannot
   * crowd real peers out of the map.
   */
  private noteSolicitedReply(nowMs: number, to: string): void {
    if (this.isMemberAtItsHost() && this.config.peerHostOf(to) === this.config.peerHostOf(this.membership.get(this.currentFrom)!.address)) this.noteSolicited(nowMs, to)
  }

  /** Notes that we opened or continued an exchange with `to`: its answers may carry claims we believe. */
  private noteSolicited(nowMs: number, to: string): void {
    const window = this.solicitedWindowMs
    // Entries older than the window mean nothing: swept once per window, so the map holds about
    // the hosts of one window (the simulator runs ten thousand of these).
    if (this.solicitedAt.size >= 64 && nowMs - this.solicitedSweptAt >= window) {
      this.solicitedSweptAt = nowMs
      for (const [host, at] of this.solicitedAt) if (nowMs - at > window) this.solicitedAt.delete(host)
    }
    if (this.solicitedAt.size >= MAX_SOLICITED_HOSTS) this.solicitedAt.clear()
    this.solicitedAt.set(this.config.peerHostOf(to), nowMs)
  }

  /** How long after we last sent to a host its answers count as part of our exchange. */
  private get solicitedWindowMs(): number {
    return Math.max(SOLICITED_WINDOW_MS, 3 * this.config.gossipIntervalMs)
  }

  /**
   * Whether the current message belongs to an exchange we took part in: it
   * comes from a host we sent an anti-entropy message to within
   * SOLICITED_WINDOW_MS, and names a live member at that very host.
   *
   * A watermark claim ("I hold, or saw superseded, every write of o up to
   * w") decides which writes we skip from then on and, in a Reset, which of
   * ours we drop. No message can prove it, so in full it is taken only from
   * a peer we chose to talk to. Anyone else's claims are believed as far as
   * the message itself shows them (see `claimBeliever`); the rest is refused
   * and counted (`watermark-refused`): a forged Reset deletes nothing it
   * does not carry a newer version of, and a forged upTo hides no write.
   */
  private isSolicited(nowMs: number): boolean {
    if (!this.isMemberAtItsHost()) return false
    // Keyed by where we sent: the member's advertised host (its answers may come from another of its addresses).
    const at = this.solicitedAt.get(this.config.peerHostOf(this.membership.get(this.currentFrom)!.address))
    return at !== undefined && nowMs - at <= this.solicitedWindowMs
  }

  /** Whether the current message names a live member and comes from that member's own host (Membership.speaksFromItsHost). */
  private isMemberAtItsHost(): boolean {
    const m = this.membership.get(this.currentFrom)
    return m !== undefined && m.status <= MemberStatus.Suspect && this.membership.speaksFromItsHost(m, this.currentSource)
  }

  /**
   * How far the current message's watermark claims are believed: `(origin,
   * claim, newest write of origin it carries) => believed`; undefined: in
   * full (an exchange we took part in). Otherwise in full when the origin
   * speaks for itself; from another live member at its own host, up to the
   * newest write of the origin the message carries; from an outsider, not at
   * all (its writes are taken, as writes from anyone are in plaintext:
   * THREAT_MODEL.md). A watermark says every write up to it is held, which
   * one carried write does not show: an outsider's claim up to a made-up
   * origin's newest write, skipping one it had given another node, left that
   * write on some nodes and hidden from the rest for good (the digests
   * agreed). Whatever is believed is applied up to `claimCap` only.
   */
  private claimBeliever(nowMs: number): ((origin: string, claim: number, newestCarried: number) => number) | undefined {
    if (this.isSolicited(nowMs)) return undefined
    const member = this.isMemberAtItsHost()
    return (origin, claim, newest) => (this.speaksForItself(origin) ? claim : member ? Math.min(claim, newest) : 0)
  }

  /**
   * Whether `origin` is written by a live member (or by us). Its writes reach
   * us from it or through other members, never only from an outsider, so an
   * outsider's are refused (`admitsOrigin`). Before, an outsider's forged
   * write of a live member's origin dated now, with a link from nothing,
   * raised our watermark over that member's writes still in flight to us,
   * and no exchange ever brought them (the digests agreed).
   */
  private isLiveOrigin(origin: string): boolean {
    const node = originNodeName(origin)
    if (node === this.name) return true
    const m = this.membership.get(node)
    return m !== undefined && m.status <= MemberStatus.Suspect
  }

  /**
   * The highest watermark any claim may raise ours to: the end of our clock's
   * current millisecond. A claim ahead of our clock would make us skip the
   * origin's writes still to come, which no honest peer has seen yet (a
   * forged push dated at the drift bound hid the origin's writes of the next
   * minute); a peer whose clock runs ahead is believed once ours catches up.
   * Not counted as a refusal: honest peers with clocks a little ahead meet it.
   */
  private claimCap(nowMs: number): number {
    return hlcFromPhysicalMs(Math.floor(nowMs) + 1) - 1
  }

  /**
   * Whether the current message may bring writes of `origin`. Any, from a
   * live member speaking from its own host. From anyone else: none of a live
   * member's origin (or ours; see `isLiveOrigin`), any other origin we know,
   * and at most NEW_ORIGINS_PER_SOURCE new origins per source host per
   * gossip interval. Every origin takes room in each digest page, and one no
   * member ever vouches for is offered again in every exchange, so a flood
   * of writes under made-up origins would dilute anti-entropy for everyone
   * (THREAT_MODEL.md). Refused writes are counted (`claim-refused`).
   */
  private admitsOrigin(nowMs: number, origin: string): boolean {
    if (this.isMemberAtItsHost()) return true
    if (this.isLiveOrigin(origin)) return false
    if (this.state.knowsOrigin(origin)) return true
    if (nowMs - this.newOriginsWindowStart >= this.config.gossipIntervalMs) {
      this.newOriginsWindowStart = nowMs
      this.newOrigins.clear()
    }
    const host = this.config.peerHostOf(this.currentSource)
    const n = this.newOrigins.get(host) ?? 0
    if (n >= NEW_ORIGINS_PER_SOURCE || (n === 0 && this.newOrigins.size >= MAX_SOLICITED_HOSTS)) return false
    this.newOrigins.set(host, n + 1)
    return true
  }

  /**
   * Where an opening page starts when the origins do not fit one page: a
   * quarter each at our origin, at the prober's, at a random live member's
   * (those heard from their own host preferred), and at a random origin.
   * The writes of the two parties and of live members are the ones in
   * flight; with every origin equally likely, a flood of made-up origins
   * (a row each) made a live member's row as rare in the pages as a made-up
   * one, and a fresh write that missed its push waited half a minute for a
   * page that held its origin. Each origin still has its turn.
   */
  private pageStart(): string | undefined {
    const r = this.random.next()
    if (r < 0.25) return this.origin
    if (r < 0.5) {
      const m = this.membership.get(this.currentFrom)
      return m === undefined ? undefined : originId(m.name, m.generation)
    }
    if (r < 0.75) {
      const m = this.membership.randomLivePeer()
      return m === undefined ? undefined : originId(m.name, m.generation)
    }
    return undefined
  }

  /** Whether the current sender is the node that wrote as `origin`, a live member at its own host. */
  private speaksForItself(origin: string): boolean {
    return originNodeName(origin) === this.currentFrom && this.isMemberAtItsHost()
  }

  /** Leg 1 at the responder: equal fingerprints end the exchange at O(1) cost. */
  private onProbe(nowMs: number, syncHi: number, syncLo: number, wmHi: number, wmLo: number, replyTo: string): void {
    if (this.state.syncFingerprint.equals(syncHi, syncLo) && this.state.watermarkFingerprint.equals(wmHi, wmLo)) return
    this.stats.reconciliations++
    this.noteSolicitedReply(nowMs, replyTo)
    const page = openingDigestPage(this.state, this.bodyBudget, this.random, this.pageStart())
    this.send(replyTo, encodeParts(this.header, { type: MessageType.Digest, page }), MessageType.Digest, false)
  }

  /** Leg 2 at the initiator: the responder's digest. Send what it lacks, and our digest of the same range. */
  private onDigest(nowMs: number, page: DigestPage, replyTo: string): void {
    if (isBehindHorizon(this.state, page)) {
      this.sendReset(nowMs, replyTo)
      return
    }
    // Our digest takes at most half the datagram; the delta fills the rest.
    const ourPage = digestPage(this.state, page.start, page.end, Math.floor(this.bodyBudget / 2))
    const used = encodeParts(this.header, { type: MessageType.DeltaDigest, page: ourPage, segments: [] }).length
    const { segments, viaStream } = this.planDelta(nowMs, page, this.config.limits.maxPacketBytes - used, replyTo)
    if (viaStream !== undefined) this.send(replyTo, viaStream, MessageType.Delta, true)
    const bytes = encodeParts(this.header, { type: MessageType.DeltaDigest, page: ourPage, segments })
    this.noteSolicitedReply(nowMs, replyTo)
    this.send(replyTo, bytes, MessageType.DeltaDigest, false)
  }

  /** Leg 3 at the responder: apply the initiator's delta, answer with what it lacks. */
  private onDeltaDigest(nowMs: number, page: DigestPage, segments: readonly Segment[], replyTo: string, from: string): void {
    if (isBehindHorizon(this.state, page)) {
      // Its delta may carry values that a collected tombstone deleted: do not apply it.
      this.sendReset(nowMs, replyTo)
      return
    }
    this.applyDelta(nowMs, segments, from, replyTo)
    const budget = this.bodyBudget - 1
    const { segments: ours, viaStream } = this.planDelta(nowMs, page, budget, replyTo)
    if (viaStream !== undefined) {
      this.send(replyTo, viaStream, MessageType.Delta, true)
    } else if (ours.length > 0) {
      this.send(replyTo, encodeParts(this.header, { type: MessageType.Delta, segments: ours }), MessageType.Delta, false)
    }
  }

  /**
   * The delta for a peer's page: in the datagram when it fits; cut at the
   * datagram when it is small enough to finish in a few rounds; otherwise (or
   * when one value is larger than a datagram) in one stream message, up to the
   * stream limit.
   */
  private planDelta(nowMs: number, page: DigestPage, datagramBudget: number, to: string): { segments: Segment[]; viaStream: Buffer | undefined } {
    const small = deltaFor(this.state, page, datagramBudget, this.random)
    if (!small.truncated) return { segments: small.segments, viaStream: undefined }
    // Whether a stream may go at all is asked first: the delta for it reads up to the stream
    // limit's worth of entries, work no one who may not receive it should make us do.
    if (this.streamRefusal(nowMs, to) !== undefined) return { segments: small.segments, viaStream: undefined }
    const streamBudget = this.config.limits.maxStreamBytes - this.headerBytes - 16
    const big = deltaFor(this.state, page, streamBudget, this.random)
    if ((big.bytes <= this.config.bulkThresholdBytes && !small.blockedByLargeEntry) || this.mayStream(nowMs, to) !== undefined) {
      return { segments: small.segments, viaStream: undefined }
    }
    const bytes = encodeParts(this.header, { type: MessageType.Delta, segments: big.segments })
    return { segments: [], viaStream: bytes }
  }

  private applyDelta(nowMs: number, segments: readonly Segment[], from: string, replyTo: string): void {
    const admitted = segments.filter((seg) => seg.entries.length === 0 || this.admitsOrigin(nowMs, seg.origin))
    if (admitted.length < segments.length) this.stats.drop('claim-refused', segments.length - admitted.length)
    const result = applySegments(
      this.state,
      admitted,
      nowMs,
      this.maxAcceptableTs(nowMs),
      (e) => this.isBeyondHorizon(e, nowMs) && this.state.getEntry(e.key) === undefined,
      (e) => this.clock.observe(e.ts),
      from,
      this.claimBeliever(nowMs),
      this.claimCap(nowMs),
    )
    this.stats.entriesApplied += result.applied
    if (result.claimsRefused > 0) this.stats.drop('watermark-refused', result.claimsRefused)
    if (result.refused > 0) this.stats.drop('clock-drift', result.refused)
    if (result.beyondHorizon > 0) {
      this.stats.drop('past-horizon', result.beyondHorizon)
      this.requestReset(nowMs, replyTo)
    }
  }

  /**
   * Whether a write is old enough that a tombstone deleting it may already
   * have been collected somewhere. Half the retention leaves room for clocks
   * that disagree by less than that.
   */
  private isBeyondHorizon(e: Entry, nowMs: number): boolean {
    return physicalMsOf(e.ts) + this.config.tombstoneRetentionMs / 2 < nowMs
  }

  /** Asks a peer for its full state, at most once per gossip interval per peer. */
  private requestReset(nowMs: number, to: string): void {
    const last = this.resetRequestedAt.get(to)
    if (last !== undefined && nowMs - last < this.config.gossipIntervalMs) return
    this.resetRequestedAt.set(to, nowMs)
    if (this.resetRequestedAt.size > 1024) this.resetRequestedAt.clear()
    this.noteSolicited(nowMs, to)
    this.send(to, encodeParts(this.header, { type: MessageType.ResetRequest }), MessageType.ResetRequest, false)
  }

  /**
   * Why we may not answer the current message with a stream (undefined: we may) (a full state or
   * a bulk delta, up to maxStreamBytes for a few bytes in): at most one per
   * source address per gossip interval, and MAX_STREAMS_PER_INTERVAL in all.
   */
  private mayStream(nowMs: number, to: string): 'unproven-destination' | 'rate-limited' | undefined {
    const refusal = this.streamRefusal(nowMs, to)
    if (refusal !== undefined) return refusal
    if (nowMs - this.streamIntervalStart >= this.config.gossipIntervalMs) {
      this.streamIntervalStart = nowMs
      this.streamsThisInterval = 0
    }
    const host = this.config.peerHostOf(this.currentSource)
    if (this.streamSentAt.size >= 4096) this.streamSentAt.clear()
    this.streamSentAt.set(host, nowMs)
    this.streamsThisInterval++
    return undefined
  }

  /** Why a stream to `to` may not go now (see mayStream), without taking a slot. */
  private streamRefusal(nowMs: number, to: string): 'unproven-destination' | 'rate-limited' | undefined {
    // Only to the sender itself, at its own host and the address its member record gives: a
    // plaintext request names its reply address, and a forged one would aim our full state
    // at a third party (reflection). A sender not yet a member is answered by datagrams.
    if (!this.isMemberAtItsHost() || this.membership.get(this.currentFrom)!.address !== to) return 'unproven-destination'
    const sameInterval = nowMs - this.streamIntervalStart < this.config.gossipIntervalMs
    if (sameInterval && this.streamsThisInterval >= MAX_STREAMS_PER_INTERVAL) return 'rate-limited'
    // Per host, not per address: the source port is the sender's choice.
    const last = this.streamSentAt.get(this.config.peerHostOf(this.currentSource))
    if (last !== undefined && nowMs - last < this.config.gossipIntervalMs) return 'rate-limited'
    return undefined
  }

  /** Sends our full state, if the stream limits allow (a refusal is a counted drop; a bulk delta refused falls back to datagrams). */
  private sendReset(nowMs: number, to: string): void {
    const refused = this.mayStream(nowMs, to)
    if (refused !== undefined) {
      this.stats.drop(refused)
      return
    }
    const state = this.state
    const watermarks = new Map<string, number>()
    const gcFloors = new Map<string, number>()
    for (const o of state.origins()) {
      const wm = state.watermark(o)
      if (wm > 0) watermarks.set(o, wm)
      const floor = state.gcFloor(o)
      if (floor > 0) gcFloors.set(o, floor)
    }
    // Size it before encoding: a state over the limit must cost no buffer of its size.
    let estimate = 64
    for (const e of state.allEntries()) {
      estimate += entryBodySize(e) + stringSize(e.origin)
      if (estimate > this.config.limits.maxStreamBytes) {
        this.stats.resetsTooLarge++
        return
      }
    }
    const bytes = encodeParts(this.header, { type: MessageType.Reset, watermarks, gcFloors, entries: [...state.allEntries()] })
    if (bytes.length > this.config.limits.maxStreamBytes) {
      this.stats.resetsTooLarge++
      return
    }
    this.send(to, bytes, MessageType.Reset, true)
    this.stats.resetsSent++
  }

  private onReset(
    nowMs: number,
    entries: Entry[],
    watermarks: Map<string, number>,
    gcFloors: Map<string, number>,
    from: string,
    replyTo: string,
  ): void {
    // A sender behind our own horizon may carry values whose tombstones we
    // collected: refuse its state and reset it instead. The reset carries its
    // whole watermark vector, so this check is complete. When we are also
    // behind the sender's horizon (two sides that each collected tombstones
    // the other never saw: a split longer than the retention), neither state
    // can simply replace the other: both merge, each dropping what the other
    // saw and deleted, so the two converge (see ARCHITECTURE.md, limits).
    // Its whole watermark vector, as a page covering every origin.
    if (isBehindHorizon(this.state, { start: '', end: undefined, rows: watermarks })) {
      if (!this.isBehindFloorsOf(gcFloors)) {
        this.stats.drop('past-horizon')
        this.sendReset(nowMs, replyTo)
        return
      }
      this.sendReset(nowMs, replyTo)
    }
    const maxTs = this.maxAcceptableTs(nowMs)
    const inTime = entries.filter((e) => e.ts <= maxTs)
    if (inTime.length < entries.length) this.stats.drop('clock-drift', entries.length - inTime.length)
    const admitted = new Map<string, boolean>()
    const admits = (o: string): boolean => {
      let yes = admitted.get(o)
      if (yes === undefined) admitted.set(o, (yes = this.admitsOrigin(nowMs, o)))
      return yes
    }
    const accepted = inTime.filter((e) => admits(e.origin))
    if (accepted.length < inTime.length) this.stats.drop('claim-refused', inTime.length - accepted.length)
    // Claims no honest peer can make are refused and counted: a watermark ahead of our clock
    // plus the drift, a gc floor of a tombstone collected before the retention passed.
    const maxFloor = hlcFromPhysicalMs(nowMs + this.config.maxClockDriftMs - this.config.tombstoneRetentionMs)
    let refused = 0
    const solicited = this.isSolicited(nowMs)
    const believe = this.claimBeliever(nowMs)
    const cap = this.claimCap(nowMs)
    const newest = new Map<string, number>()
    if (!solicited) for (const e of accepted) if (e.ts > (newest.get(e.origin) ?? 0)) newest.set(e.origin, e.ts)
    for (const [o, ts] of watermarks) {
      const believed = believe === undefined ? ts : believe(o, ts, newest.get(o) ?? 0)
      if (ts > maxTs || believed === 0) {
        watermarks.delete(o)
        refused++
        continue
      }
      if (believed < ts) refused++
      watermarks.set(o, Math.min(believed, cap))
    }
    for (const [o, ts] of gcFloors) {
      // A floor says a tombstone was collected: nothing a message can show, so only from a peer we exchanged with, or about itself.
      if (ts > maxFloor || (!solicited && !this.speaksForItself(o))) {
        gcFloors.delete(o)
        refused++
      }
    }
    if (refused > 0) this.stats.drop('watermark-refused', refused)
    for (const e of accepted) this.clock.observe(e.ts)
    this.state.reset(accepted, watermarks, gcFloors, nowMs, from, new Set(entries.map((e) => e.key)))
    this.stats.resetsReceived++
    this.resetWanted = false
  }

  /** Whether we have not seen a write that the given gc floors say was collected. */
  private isBehindFloorsOf(gcFloors: ReadonlyMap<string, number>): boolean {
    for (const [o, floor] of gcFloors) if (this.state.watermark(o) < floor) return true
    return false
  }

  private onPush(nowMs: number, entry: Entry, prevTs: number, hops: number, from: string): void {
    if (entry.ts > this.maxAcceptableTs(nowMs)) {
      this.stats.drop('clock-drift')
      return
    }
    // An old push may be a value whose tombstone we have already collected;
    // only anti-entropy, which checks horizons, may bring it.
    if (this.isBeyondHorizon(entry, nowMs)) {
      this.stats.drop('past-horizon')
      return
    }
    // Covered by our watermark: we hold it, or it was superseded (maybe by a
    // tombstone since collected). Either way it must change nothing.
    if (entry.ts <= this.state.watermark(entry.origin)) return
    if (!this.admitsOrigin(nowMs, entry.origin)) {
      this.stats.drop('claim-refused')
      return
    }
    this.clock.observe(entry.ts)
    if (this.state.merge(entry, nowMs, from) !== MergeOutcome.Applied) return
    this.stats.entriesApplied++
    // The origin's previous write is the link: if we hold everything up to it, we now hold up to
    // this one. Not beyond our own clock (see claimBeliever): a forged push dated at the drift
    // bound must not make us skip the origin's writes of the next minute.
    // A link is a claim like any other: from a member at its own host only (see claimBeliever).
    const held = this.state.watermark(entry.origin)
    const linked = held >= prevTs && this.isMemberAtItsHost()
    if (linked) this.state.raiseWatermark(entry.origin, Math.min(entry.ts, this.claimCap(nowMs)))
    // Passed on with the link we can vouch for: our own watermark before this write (we hold
    // everything up to it), or none (the write's own timestamp, which no receiver lacking the
    // write can meet). Passing the sender's link on unchecked laundered a forged one: a push
    // linked to nothing raised every relay's receivers over a write only the first node held.
    if (hops > 0) this.push(entry, linked ? held : entry.ts, hops - 1, from)
  }
}

/** Returned when nothing was queued: no allocation per empty take. */
const NO_OUTGOING: readonly Outgoing[] = []

/** Incompatible peer addresses reported at most (each once). */
const MAX_INCOMPATIBLE_NOTED = 256

/** Streams (full states, bulk deltas) we answer with per gossip interval, in all. */
const MAX_STREAMS_PER_INTERVAL = 4

/**
 * How long after we last sent to a host its answers count as part of our
 * exchange (at least three gossip intervals): long enough for a full
 * transfer of some MiB to arrive on a slow link. A later answer is believed
 * only as far as it shows (isSolicited), and the next exchange repeats it.
 */
const SOLICITED_WINDOW_MS = 10_000
/** Hosts remembered for that (cleared whole beyond it: then every claim waits for the next exchange). */
const MAX_SOLICITED_HOSTS = 4096
/** New origins a sender that is not a member at its own host may introduce per gossip interval. */
const NEW_ORIGINS_PER_SOURCE = 64

function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1)
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false
      i++
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false
    }
  }
  return true
}

/** The origin id of a node instance: its name and its generation (start time, base 36). */
export function originId(name: string, generation: number): string {
  return `${name}~${generation.toString(36)}`
}

/** The node name inside an origin id. */
export function originNodeName(origin: string): string {
  const i = origin.lastIndexOf('~')
  return i < 0 ? origin : origin.slice(0, i)
}
