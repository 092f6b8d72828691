import { randomBytes } from 'node:crypto'
import { Resolver, lookup } from 'node:dns/promises'
import { EventEmitter, on } from 'node:events'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { engineConfig } from './engine/config.js'
import { GossipEngine, type StateSnapshot, originNodeName } from './engine/engine.js'
import type { EngineStats } from './engine/stats.js'
import { KeyringError, NameConflictError, StoppedError } from './errors.js'
import { type Member as MemberRecord, STATUS_NAMES, type StatusName, type Tags, incarnationCeiling } from './membership/member.js'
import type { MemberEvent as EngineMemberEvent, MemberEventType, NameConflict } from './membership/membership.js'
import { PRESETS } from './membership/presets.js'
import { STATE_HASH_TAG, type StartOptions, checkTags, resolveOptions } from './options.js'
import { formatHostPort, hostOf, isUsableInetAddress, parseHostPort } from './runtime/address.js'
import { type WireLimits, receiveInto, sendAll } from './runtime/transport.js'
import { type StreamRefusal, UdpTransport } from './runtime/udp-transport.js'
import { type KeyInfo, parseKey } from './security/keyring.js'
import { PacketSecurity, SALT_BYTES, sealOverhead, sealStreamOverhead } from './security/packet-security.js'
import type { StateChange } from './state/cluster-state.js'
import type { Entry, Value } from './state/entry.js'
import { SeededRandom } from './util/random.js'

/** Which write a value is: its hybrid-logical-clock timestamp and the node that wrote it. */
export interface Version {
  readonly ts: number
  /** Name of the node that wrote it. */
  readonly origin: string
}

export interface KeyValue {
  readonly key: string
  readonly value: Value
  readonly version: Version
  /** Absolute expiry (ms since the epoch) when written with a TTL. */
  readonly expiresAt?: number
}

export interface ChangeEvent {
  readonly key: string
  /** The new value; undefined when the key was deleted or expired. */
  readonly value: Value | undefined
  readonly version: Version
  readonly previous?: { readonly value: Value; readonly version: Version }
  /** Name of the peer whose message brought the change; absent for local writes and expiry. */
  readonly from?: string
}

export interface Member {
  readonly name: string
  /** The advertised address. */
  readonly address: string
  readonly status: StatusName
  readonly incarnation: number
  readonly tags: Tags
  /** When this node last received a message from it directly (ms since the epoch); undefined if never. */
  readonly lastHeardMs: number | undefined
}

export interface MemberEvent {
  readonly type: MemberEventType
  readonly member: Member
}

function publicMember(m: MemberRecord, lastHeardMs: number | undefined): Member {
  return { name: m.name, address: m.address, status: STATUS_NAMES[m.status], incarnation: m.incarnation, tags: m.tags, lastHeardMs }
}

/**
 * The host to advertise for a bind address: itself, or for a wildcard bind
 * the first non-internal address of that family (as memberlist does), or
 * loopback when the machine has none.
 */
function advertisableHost(bindHost: string): string {
  if (bindHost !== '0.0.0.0' && bindHost !== '::') return bindHost
  const family = bindHost === '::' ? 'IPv6' : 'IPv4'
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === family) return a.address
  }
  return family === 'IPv6' ? '::1' : '127.0.0.1'
}

function publicVersion(v: { ts: number; origin: string }): Version {
  return { ts: v.ts, origin: originNodeName(v.origin) }
}

function publicEntry(e: Entry): KeyValue {
  const kv: { -readonly [K in keyof KeyValue]: KeyValue[K] } = { key: e.key, value: e.value!, version: publicVersion(e) }
  if (e.expiresAt !== undefined) kv.expiresAt = e.expiresAt
  return kv
}

function publicChange(c: StateChange): ChangeEvent {
  const ev: { -readonly [K in keyof ChangeEvent]: ChangeEvent[K] } = { key: c.key, value: c.value, version: publicVersion(c.version) }
  if (c.previous !== undefined) ev.previous = { value: c.previous.value, version: publicVersion(c.previous.version) }
  if (c.source !== undefined) ev.from = c.source
  return ev
}

/** Keyring operations of an encrypted node; keys are base64 (32 bytes). */
export interface NodeKeyring {
  list(): KeyInfo[]
  /** Adds a key that decrypts. */
  install(key: string): void
  /** Makes an installed key the one that encrypts. */
  use(key: string): void
  /**
   * Removes a key (not the primary). Refused with `GV_ERR_KEY_IN_USE` while
   * peers still seal with it (a packet under it opened in the last
   * `encryption.keyInUseMs`, 10 s by default), unless `force`.
   */
  remove(key: string, options?: { force?: boolean }): void
}

interface GrapevineEvents {
  change: [ChangeEvent]
  member: [MemberEvent]
  /** Another live process uses our name (logged with both addresses). */
  conflict: [NameConflict]
  /** Something for the log, said once: e.g. a peer of another protocol version or cluster label. */
  warning: [string]
  error: [Error]
  stopped: []
}

/** How often seeds given as DNS names are resolved again while no peer is alive. */
const SEED_RESOLVE_MS = 5000

/**
 * A grapevine node on real sockets: the gossip engine driven by the wall
 * clock, timers and UDP/TCP. Start one with `Grapevine.start(options)`.
 */
export class Grapevine extends EventEmitter<GrapevineEvents> {
  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  private stopped = false
  private seedTimer: NodeJS.Timeout | undefined
  private seedSpecs: readonly string[] = []
  private dnsServers: readonly string[] | undefined
  /** Transient network errors seen (counted, never fatal). */
  networkErrors = 0

  private constructor(
    private readonly engine: GossipEngine,
    private readonly transport: UdpTransport,
    /** The address peers reach this node at. */
    readonly address: string,
    private readonly security: PacketSecurity | undefined,
    /** Largest packet and stream message on the wire, sealed or not. */
    private readonly wire: WireLimits,
  ) {
    super()
  }

  /**
   * Validates the options, binds the sockets and starts gossiping. `restore`
   * gives back what `persistentState()` saved in an earlier run (the agent's
   * data dir): the state is loaded before the first message, and the
   * membership incarnation starts above the saved one. An untrusted snapshot
   * (older than the tombstone retention) is reconciled by a full transfer
   * from the first live peer.
   */
  static async start(options: StartOptions, restore?: { snapshot: StateSnapshot; trusted: boolean; incarnation: number }): Promise<Grapevine> {
    const o = resolveOptions(options)
    const bind = parseHostPort(o.bind, 'bind')
    // Sealing adds bytes: the engine builds messages that still fit a datagram once sealed.
    const overhead = o.encryption === undefined ? 0 : sealOverhead(o.label)
    // A sealed stream carries a preamble as well as its body's envelope.
    const streamOverhead = o.encryption === undefined ? 0 : sealStreamOverhead(o.label)
    const security = o.encryption === undefined ? undefined : PacketSecurity.fromSetting(o.encryption, o.label, randomBytes(SALT_BYTES))
    // The transport delivers to the node created once the sockets are bound.
    const holder: { node?: Grapevine } = {}
    const transport = await UdpTransport.open(
      bind,
      {
        maxPacketBytes: o.maxPacketBytes,
        maxStreamBytes: o.maxStreamBytes + streamOverhead,
        streamTimeoutMs: o.streamTimeoutMs,
        maxConcurrentStreams: o.maxConcurrentStreams,
        maxStreamsPerIp: o.maxStreamsPerIp,
        streamHeaderTimeoutMs: o.streamHeaderTimeoutMs,
        minStreamBytesPerSec: o.minStreamBytesPerSec,
        streamRateWindowMs: o.streamRateWindowMs,
        ...(o.maxStreamBufferBytes !== undefined ? { maxStreamBufferBytes: o.maxStreamBufferBytes } : {}),
        ...(security !== undefined
          ? {
              streamAuthenticator: {
                preambleBytes: (first: number) => security.streamPreambleBytes(first),
                openPreamble: (from: string, preamble: Buffer) => {
                  const opened = security.openStreamPreamble(preamble, Date.now())
                  if (!opened.ok && holder.node !== undefined) holder.node.engine.dropPacket(from, opened.reason, opened.detail)
                  return opened
                },
              },
            }
          : {}),
      },
      {
        onMessage: (from, bytes, stream) => holder.node?.onMessage(from, bytes, stream),
        onError: (err, context) => holder.node?.onNetworkError(err, context),
      },
    )
    const address = o.advertise ?? formatHostPort(advertisableHost(bind.host), transport.bound.port)
    const seeds = await resolveSeeds(o.seeds, o.dnsServers)
    const now = Date.now()
    let minIncarnation = restore?.incarnation ?? 0
    if (minIncarnation > incarnationCeiling(now)) {
      // A hostile claim raised it before the snapshot was taken; peers would refuse our records.
      process.emitWarning(`restored incarnation ${minIncarnation} is beyond the ceiling (${incarnationCeiling(now)}); starting from the clock instead`, 'GrapevineRestoredIncarnation')
      minIncarnation = 0
    }
    const preset = PRESETS[o.preset]
    const config = engineConfig({
      name: o.name,
      address,
      generation: now,
      label: o.label,
      seeds,
      tags: o.tags,
      minIncarnation,
      isUsableAddress: isUsableInetAddress,
      peerHostOf: hostOf,
      timing: {
        ...preset,
        ...(o.reapTimeoutMs !== undefined ? { reapTimeoutMs: o.reapTimeoutMs } : {}),
        ...(o.probeIntervalMs !== undefined ? { probeIntervalMs: o.probeIntervalMs } : {}),
        ...(o.probeTimeoutMs !== undefined ? { probeTimeoutMs: o.probeTimeoutMs } : {}),
      },
      gossipIntervalMs: o.gossipIntervalMs,
      fanout: o.fanout,
      eagerPush: o.eagerPush,
      tombstoneRetentionMs: o.tombstoneRetentionMs,
      maxClockDriftMs: o.maxClockDriftMs,
      limits: {
        maxPacketBytes: o.maxPacketBytes - overhead,
        maxKeyBytes: o.maxKeyBytes,
        maxValueBytes: o.maxValueBytes,
        maxStreamBytes: o.maxStreamBytes,
        maxItemsPerMessage: o.maxItemsPerMessage,
        maxMembers: o.maxMembers,
      },
    })
    const random = new SeededRandom(randomBytes(4).readUInt32BE(0))
    const engine = new GossipEngine(config, random, now)
    if (restore !== undefined) engine.restore(now, restore.snapshot, restore.trusted)
    const node = new Grapevine(engine, transport, address, security, { packetBytes: o.maxPacketBytes, streamBytes: o.maxStreamBytes + streamOverhead })
    holder.node = node
    node.seedSpecs = o.seeds
    node.dnsServers = o.dnsServers
    node.userTags = { ...o.tags }
    if (o.announceStateHash) node.announce = { intervalMs: o.announceIntervalMs, hash: '', at: -Infinity, timer: undefined }
    node.announceHash()
    node.flush()
    node.watchSeeds()
    // Wait (bounded) for a seed to answer, so a name conflict fails the start.
    const deadline = Date.now() + o.joinTimeoutMs
    while (engine.phase === 'joining' || engine.phase === 'checking') {
      if (Date.now() >= deadline || node.stopped) break
      await new Promise((r) => setTimeout(r, 20))
    }
    if (engine.phase === 'conflict') {
      const c = node.lastConflict!
      await node.stop()
      throw new NameConflictError(o.name, c.ourAddress, c.theirAddress)
    }
    return node
  }

  private lastConflict: NameConflict | undefined

  /** Seeds given as DNS names are looked up again while we have no live peer. */
  private watchSeeds(): void {
    if (!this.seedSpecs.some((s) => !isIP(parseHostPort(s, 'seeds').host))) return
    this.seedTimer = setInterval(() => {
      if (this.stopped || this.engine.membership.livePeers > 0) return
      resolveSeeds(this.seedSpecs, this.dnsServers).then(
        (seeds) => this.engine.membership.setSeeds(seeds),
        (err: unknown) => this.onNetworkError(err as Error, 'seed lookup'),
      )
    }, SEED_RESOLVE_MS)
    this.seedTimer.unref()
  }

  get name(): string {
    return this.engine.name
  }

  /** Hash of this node's live state; equal on two nodes exactly when they hold the same live data. */
  get stateHash(): string {
    return this.engine.stateHash(Date.now())
  }

  /** Engine counters (messages, bytes, drops by reason, resets...). */
  get stats(): EngineStats {
    return this.engine.stats
  }

  /** What a data dir keeps across restarts: the state (tombstones included), our incarnation, the members. */
  persistentState(): { snapshot: StateSnapshot; incarnation: number; members: Member[] } {
    return { snapshot: this.engine.snapshot(), incarnation: this.engine.membership.currentIncarnation, members: this.members() }
  }

  /** Stored entries: live keys and tombstones awaiting collection. */
  get storeCounts(): { live: number; tombstones: number } {
    return { live: this.engine.state.liveSize, tombstones: this.engine.state.tombstones }
  }

  set(key: string, value: Value, options: { ttlMs?: number } = {}): Version {
    this.assertRunning()
    const v = this.engine.set(Date.now(), key, value, options)
    this.flush()
    return publicVersion(v)
  }

  /** Deletes a key (a tombstone that spreads like a write). Undefined when the key is not live here. */
  delete(key: string): Version | undefined {
    this.assertRunning()
    const v = this.engine.delete(Date.now(), key)
    this.flush()
    return v === undefined ? undefined : publicVersion(v)
  }

  get(key: string): { value: Value; version: Version; expiresAt?: number } | undefined {
    const e = this.engine.get(Date.now(), key)
    if (e === undefined) return undefined
    const { value, version, expiresAt } = publicEntry(e)
    return expiresAt === undefined ? { value, version } : { value, version, expiresAt }
  }

  entries(options: { prefix?: string } = {}): KeyValue[] {
    return this.engine.entries(Date.now(), options.prefix ?? '').map(publicEntry)
  }

  /** Every member this node knows (itself included), with status, tags and when last heard from. */
  members(): Member[] {
    return this.engine.membership.list().map((r) => publicMember(r.member, r.lastHeardMs))
  }

  /** Publishes new tags for this member; they spread like any membership change. */
  setTags(tags: Record<string, string>): void {
    this.assertRunning()
    checkTags(tags, this.announce !== undefined)
    this.userTags = { ...tags }
    this.engine.setTags(Date.now(), this.publishedTags())
    this.flush()
  }

  private userTags: Record<string, string> = {}
  private announce: { readonly intervalMs: number; hash: string; at: number; timer: NodeJS.Timeout | undefined } | undefined

  private publishedTags(): Record<string, string> {
    return this.announce === undefined ? this.userTags : { ...this.userTags, [STATE_HASH_TAG]: this.announce.hash }
  }

  /** With `announceStateHash`: publishes a changed state hash, at most once per interval. */
  private announceHash(): void {
    const a = this.announce
    if (a === undefined || a.timer !== undefined || this.stopped) return
    const hash = this.engine.stateHash(Date.now())
    if (hash === a.hash) return
    const wait = a.at + a.intervalMs - Date.now()
    if (wait > 0) {
      a.timer = setTimeout(() => {
        a.timer = undefined
        this.announceHash()
      }, wait)
      return
    }
    a.hash = hash
    a.at = Date.now()
    this.engine.setTags(a.at, this.publishedTags())
    this.flush()
  }

  /**
   * Whether the cluster has converged, as far as this node can tell: every
   * alive member published (`announceStateHash`) the state hash this node
   * has now. Members that publish none count as not agreeing.
   */
  clusterStatus(): { converged: boolean; stateHash: string; alive: number; agreeing: number; members: { name: string; stateHash: string | undefined }[] } {
    const stateHash = this.stateHash
    const members = this.members()
      .filter((m) => m.status === 'alive' && m.name !== this.name)
      .map((m) => ({ name: m.name, stateHash: m.tags[STATE_HASH_TAG] }))
    const agreeing = members.filter((m) => m.stateHash === stateHash).length
    const published = this.announce === undefined || this.announce.hash === stateHash
    return { converged: published && agreeing === members.length, stateHash, alive: members.length + 1, agreeing: agreeing + 1, members }
  }

  /**
   * Announces a graceful departure: the others mark this member `left` at
   * once rather than detecting it dead. Waits (up to `timeoutMs`) until the
   * news has been sent out; call `stop()` afterwards.
   */
  async leave(timeoutMs = 2000): Promise<void> {
    this.assertRunning()
    this.engine.leave(Date.now())
    this.flush()
    const deadline = Date.now() + timeoutMs
    while (this.engine.membership.leaving && Date.now() < deadline && !this.stopped) {
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** Changes under a prefix as an async iterable; ends when `signal` aborts or the node stops. */
  async *watch(options: { prefix?: string; signal?: AbortSignal } = {}): AsyncGenerator<ChangeEvent> {
    const prefix = options.prefix ?? ''
    const stop = new AbortController()
    const onAbort = (): void => stop.abort()
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.once('stopped', onAbort)
    try {
      for await (const [ev] of on(this, 'change', { signal: stop.signal }) as AsyncIterable<[ChangeEvent]>) {
        if (ev.key.startsWith(prefix)) yield ev
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      this.off('stopped', onAbort)
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.seedTimer !== undefined) clearInterval(this.seedTimer)
    if (this.announce?.timer !== undefined) clearTimeout(this.announce.timer)
    this.emit('stopped')
    await this.transport.close()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  private assertRunning(): void {
    if (this.stopped) throw new StoppedError()
  }

  /**
   * The keyring of an encrypted node (started with `encryption`). Rotate on a
   * live cluster by installing the new key on every node, then `use` on every
   * node, then `remove` of the old one; each step is safe on its own.
   */
  get keyring(): NodeKeyring {
    const security = this.security
    if (security === undefined) throw new KeyringError('this node was started without encryption; start it with the encryption option')
    return {
      list: () => security.keyring.list(),
      install: (key) => security.keyring.install(parseKey(key)),
      use: (key) => {
        const warning = security.useKey(parseKey(key), Date.now())
        if (warning !== undefined) this.warn(warning, 'GrapevineKeyring')
      },
      remove: (key, options) => security.removeKey(parseKey(key), Date.now(), options),
    }
  }

  /** Current encryption switches (undefined for a node without encryption). */
  get encryption(): { verifyIncoming: boolean; verifyOutgoing: boolean } | undefined {
    const s = this.security
    return s === undefined ? undefined : { verifyIncoming: s.verifyIncoming, verifyOutgoing: s.verifyOutgoing }
  }

  /** Changes the encryption switches of a running node (see the `encryption` option). */
  setEncryption(switches: { verifyIncoming?: boolean; verifyOutgoing?: boolean }): void {
    const s = this.security
    if (s === undefined) throw new KeyringError('this node was started without encryption; start it with the encryption option')
    if (switches.verifyIncoming !== undefined) s.verifyIncoming = switches.verifyIncoming
    if (switches.verifyOutgoing !== undefined) s.verifyOutgoing = switches.verifyOutgoing
  }

  private onMessage(from: string, bytes: Buffer, stream: boolean): void {
    if (this.stopped) return
    try {
      receiveInto(this.engine, this.security, this.wire, Date.now(), from, bytes, stream)
    } catch (err) {
      // The engine guards its handlers; this catches what lies between (packet security, the driver).
      this.engine.onInternalError('receiving', err)
    }
    this.flush()
  }

  /**
   * A transient network error (a peer gone, ECONNREFUSED, ENOBUFS, EPERM...):
   * counted by code, given to 'error' listeners, and said once per code in
   * the log (the 'warning' event, else a process warning). Never fatal.
   */
  private onNetworkError(err: Error, context: string): void {
    this.networkErrors++
    const code = (err as NodeJS.ErrnoException).code ?? 'other'
    const seen = this.networkErrorCodes.get(code) ?? 0
    this.networkErrorCodes.set(code, seen + 1)
    if (this.listenerCount('error') > 0) this.emit('error', Object.assign(err, { context }))
    if (seen === 0 && code !== 'other') this.warn(`network error ${code} (${context}): ${err.message}; counted, said once per code`, 'GrapevineNetworkError')
  }

  /** Transient network errors seen, by code ('other' when the error has none). */
  get networkErrorsByCode(): ReadonlyMap<string, number> {
    return this.networkErrorCodes
  }

  private readonly networkErrorCodes = new Map<string, number>()

  /** Inbound streams refused or cut by the transport, by reason (slowloris, per-IP cap, memory cap, unauthenticated...). */
  get streamRefusalsByReason(): ReadonlyMap<StreamRefusal, number> {
    return this.transport.streamRefusals
  }

  /** Bytes reserved now for inbound stream bodies being read (bounded by `maxStreamBufferBytes`), and the most ever. */
  get streamBufferedBytes(): { now: number; peak: number } {
    return { now: this.transport.streamBufferedBytes, peak: this.transport.peakStreamBufferedBytes }
  }

  private warn(message: string, type: string): void {
    if (this.listenerCount('warning') > 0) this.emit('warning', message)
    else process.emitWarning(message, type)
  }

  /** Sends what the engine queued, emits its changes, and arms the timer for its next wake. */
  private flush(): void {
    if (this.stopped) return
    try {
      sendAll(this.engine.takeOutbox(), this.transport, this.security)
    } catch (err) {
      // Transports never throw by contract; a bug here must still not stop the timer below.
      this.engine.onInternalError('sending', err)
    }
    const changes = this.engine.takeChanges()
    for (const c of changes) this.emit('change', publicChange(c))
    if (changes.length > 0) this.announceHash()
    for (const e of this.engine.takeMemberEvents()) this.emitMember(e)
    for (const w of this.engine.takeWarnings()) this.warn(w, 'GrapevineIncompatiblePeer')
    for (const c of this.engine.takeConflicts()) {
      this.lastConflict = c
      if (this.listenerCount('conflict') > 0) this.emit('conflict', c)
      else {
        const who = c.weAreNewcomer ? 'refusing to join' : 'a newcomer tried to join with it'
        process.emitWarning(`node name '${c.name}' is used by ${c.theirAddress} and by us at ${c.ourAddress}: ${who}`, 'GrapevineNameConflict')
      }
    }
    const at = this.engine.nextWakeMs()
    if (at < this.timerAt || this.timer === undefined) {
      if (this.timer !== undefined) clearTimeout(this.timer)
      this.timerAt = at
      this.timer = setTimeout(() => this.onTimer(), Math.max(0, at - Date.now()))
    }
  }

  private emitMember(e: EngineMemberEvent): void {
    if (this.listenerCount('member') === 0) return
    this.emit('member', { type: e.type, member: publicMember(e.member, undefined) })
  }

  private onTimer(): void {
    this.timer = undefined
    this.timerAt = Infinity
    if (this.stopped) return
    try {
      this.engine.tick(Date.now())
    } catch (err) {
      this.engine.onInternalError('tick', err)
    }
    this.flush()
  }
}

/**
 * Resolves seeds given as DNS names to addresses (each name may give
 * several: a headless Service lists every pod); IP seeds pass through. With
 * `dnsServers`, names are asked of those servers (A and AAAA records), else
 * of the system resolver.
 */
async function resolveSeeds(specs: readonly string[], dnsServers?: readonly string[]): Promise<string[]> {
  const out: string[] = []
  let resolver: Resolver | undefined
  if (dnsServers !== undefined && dnsServers.length > 0) {
    resolver = new Resolver({ timeout: 2000, tries: 2 })
    resolver.setServers([...dnsServers])
  }
  for (const spec of specs) {
    const { host, port } = parseHostPort(spec, 'seeds')
    if (isIP(host) !== 0) {
      out.push(spec)
      continue
    }
    try {
      if (resolver !== undefined) {
        const found = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)])
        for (const f of found) if (f.status === 'fulfilled') for (const ip of f.value) out.push(formatHostPort(ip, port))
      } else {
        for (const a of await lookup(host, { all: true })) out.push(formatHostPort(a.address, port))
      }
    } catch {
      // Not resolvable now: retried while no peer is alive.
    }
  }
  return out
}
