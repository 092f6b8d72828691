import { type Message, type MessageBody, MessageType } from '../codec/messages.js'
import { stringSize } from '../codec/bytes.js'
import { MinHeap } from '../util/heap.js'
import { type Random, randomInt } from '../util/random.js'
import { BroadcastQueue } from './broadcast-queue.js'
import {
  type Member,
  type MemberUpdate,
  MemberStatus,
  NO_TAGS,
  type Tags,
  aliveUpdate,
  claimUpdate,
  INCARNATION_HEADROOM,
  incarnationCeiling,
  recordUpdate,
  tagsEqual,
} from './member.js'
import { MemberTable, SharedMembers } from './member-table.js'
import { type MembershipTiming, minSuspicionMs, retransmitLimit, suspicionTimeoutMs } from './presets.js'

export interface MembershipConfig {
  readonly name: string
  readonly address: string
  readonly generation: number
  readonly seeds: readonly string[]
  readonly tags: Tags
  readonly timing: MembershipTiming
  /** Bytes a datagram body may take (the packet limit minus our header). */
  readonly bodyBudget: number
  /** Members kept at most (the table does not grow past it from what peers claim). */
  readonly maxMembers: number
  /** Our incarnation starts above this (a previous run's, restored from a data dir). */
  readonly minIncarnation?: number
  /**
   * The sending host of a transport address, the key of per-source budgets
   * (the real network: the IP without the port, which a stream's ephemeral
   * port and a forged reply address do not change). Default: the address.
   */
  readonly peerHostOf?: (address: string) => string
}

export type MemberEventType = 'join' | 'update' | 'suspect' | 'alive' | 'dead' | 'left' | 'reaped'

export interface MemberEvent {
  readonly type: MemberEventType
  readonly member: Member
  readonly previous: Member | undefined
}

/** Two live processes claim one name. */
export interface NameConflict {
  readonly name: string
  readonly ourAddress: string
  readonly theirAddress: string
  /** True when we are the later process: we must not take part (the node stops). */
  readonly weAreNewcomer: boolean
}

/**
 * Where this node stands: `joining` (asking seeds for the member list),
 * `checking` (our name is listed alive elsewhere: pinging it before we
 * claim the name), `member`, `left` (after a graceful leave), `conflict`
 * (another live process holds our name: we do nothing more).
 */
export type MembershipPhase = 'joining' | 'checking' | 'member' | 'left' | 'conflict'

/** Sends a message body to an address; `allowStream` lets the engine move an oversized one to a stream. */
export type SendFn = (to: string, body: MessageBody, allowStream?: boolean) => void

/** Counters of membership activity (a part of the engine's stats). */
export class MembershipStats {
  pingsSent = 0
  indirectPings = 0
  probesFailed = 0
  suspicionsRaised = 0
  refutations = 0
  /** Our current record sent to a member that held older news about us (see Membership.correct). */
  corrections = 0
  deadDeclared = 0
  memberSyncsSent = 0
  stalls = 0
  misrouted = 0
  /** Alive records of new names refused because the table was full. */
  membersRefused = 0
  /** Claims refused on their meaning: an incarnation above the ceiling, new members over a source's budget. */
  claimsRefused = 0
}

interface Probe {
  readonly target: string
  readonly address: string
  readonly incarnation: number
  readonly directDeadline: number
  readonly endDeadline: number
  /**
   * `round`: the probe round. `check`: an independent check on hearing a
   * suspicion. `verify`: the last look at a suspect before its timer ends.
   */
  readonly kind: ProbeKind
  helpers: number
  helperNames: string[]
  nacks: number
  indirectSent: boolean
}

type ProbeKind = 'round' | 'check' | 'verify'

interface Relay {
  readonly requester: string
  readonly seq: number
  readonly deadline: number
}

interface Suspicion {
  readonly incarnation: number
  /** Nodes that accused it at this incarnation (ourselves included when we did). */
  readonly accusers: Set<string>
  /** Whether we accused it ourselves: accusers time out from the minimum, others from twice it (a backstop). */
  accuser: boolean
  startedAt: number
  deadline: number
  /** When the verifying probe starts: one probe interval before the deadline, so it ends by then. */
  verifyAt: number
  /** Whether the verifying probe was started (it failed if the suspicion still stands when it ends). */
  verified?: boolean
}

interface ConflictCheck {
  readonly their: MemberUpdate
  /** Every ping this check sent: an answer to an earlier try counts too. */
  readonly seqs: Set<number>
  seq: number
  tries: number
  deadline: number
}

/** Returned when nothing happened: no allocation per empty take. */
const NO_EVENTS: readonly MemberEvent[] = []

/** Pings sent to a name listed alive elsewhere before concluding it is our own dead past. */
const CONFLICT_CHECK_TRIES = 3
/** Bytes of member-list answers (joins, syncs) per probe interval in all: each may be a large stream. */
const SYNC_ANSWER_BYTES_PER_INTERVAL = 2 * 1024 * 1024
/** A generous estimate of one member's bytes in a member list. */
const SYNC_BYTES_PER_MEMBER = 64
/** Indirect probes we run for others at once. */
const MAX_RELAYS = 64
/** New members one source host may introduce per probe interval (outside member lists we asked for). */
const NEW_MEMBERS_PER_SOURCE = 256
/** Source hosts tracked per interval for that budget; beyond it new sources share no budget (refused). */
const MAX_ADMISSION_SOURCES = 4096
/** Distinct name conflicts reported (each one is logged). */
const MAX_CONFLICTS_NOTED = 16
/** Probe intervals without a membership change of our own before a fingerprint mismatch brings a full sync. */
const SYNC_SETTLE_INTERVALS = 2
/** Earlier accusers an accuser sends its confirmation to directly. */
const MAX_DIRECT_CONFIRMATIONS = 4
/** A helper of an indirect probe gives up (and sends a Nack) after this fraction of the probe timeout (memberlist's 80%). */
const NACK_TIMEOUT_FRACTION = 0.8
/** Fraction of state gossip rounds that also reach one dead member (healing partitions). */
const DEAD_CONTACT_PROBABILITY = 0.25

/**
 * Membership and failure detection of one node: SWIM with Lifeguard's
 * refinements, run by the engine (no clock, timer, randomness or socket of
 * its own: `now` comes in, messages go out through `send`).
 *
 * - Probing: every probe interval (times local health) one member, taken in
 *   a random cyclic order (an affine permutation of table slots, so each is
 *   probed once per cycle at O(1) memory), gets a Ping; without an Ack
 *   within the probe timeout, `indirectChecks` others are asked to ping it
 *   (PingReq) and answer with an Ack or a Nack; without any Ack by the end of
 *   the interval, we accuse it: Suspect, spread to all.
 * - Suspicion: a node hearing an accusation re-checks the suspect itself
 *   with probability 2k/N, so about 2k independent checks run cluster-wide
 *   per suspicion; a failed check is a new accusation. Accusers run a timer
 *   from max down to min timeout as distinct accusers confirm (Lifeguard);
 *   only accusers declare death. The suspect refutes by raising its
 *   incarnation, straight to the accusers it heard of and to everyone.
 * - Local health: failed probes without Nacks, refuting, and a stalled event
 *   loop raise a score (capped) that stretches our probe timeouts; each
 *   successful probe lowers it. After a stall, probes in flight are voided
 *   and our suspicion timers extended: we do not accuse others of our own
 *   lateness.
 * - Dissemination: updates ride on every Ping, Ack and PingReq and go out in
 *   dissemination rounds, each sent retransmitMult x log10(N) times.
 * - Anti-entropy: the state gossip probe carries the membership fingerprint;
 *   a mismatch that outlives churn brings a full member-list exchange.
 */
export class Membership {
  readonly table: MemberTable
  readonly stats = new MembershipStats()
  private readonly broadcasts = new BroadcastQueue()
  /**
   * Heard times are kept (in the member table) as ms since this epoch:
   * small integers are stored unboxed, so noting the sender of every message
   * allocates nothing (for the first twelve days; past them, still correct).
   */
  private readonly heardEpochMs: number
  private readonly recordNotified = new Map<string, number>()
  /** When each member holding stale news about us was last sent our current record (see correct). */
  private readonly corrected = new Map<string, number>()
  /**
   * New names admitted per sending host in the current probe interval: a
   * source may introduce at most NEW_MEMBERS_PER_SOURCE per interval, so a
   * flood of made-up members grows the table slowly. A member list we asked
   * for (join, sync) is exempt: a joiner learns a whole cluster from one seed.
   */
  private readonly admitted = new Map<string, number>()
  private admittedWindowStart = -Infinity
  /** When we last asked each host for its member list (JoinRequest, or a sync with reply). */
  private readonly syncAskedAt = new Map<string, number>()
  /** The transport source of the message being applied (its host keys the admission budget). */
  private source = ''
  private readonly syncAnswered = new Map<string, number>()
  private syncWindowStart = -Infinity
  /** Estimated bytes of member-list answers sent in the current window. */
  private syncsInWindow = 0
  private events: MemberEvent[] = []
  private conflicts: NameConflict[] = []
  private readonly knownConflicts = new Set<string>()
  phase: MembershipPhase
  private incarnation: number
  private tags: Tags
  private seq = 0
  /** Hosts members answered our probes from, where that is not the host they advertise (see speaksFromItsHost). */
  private readonly answeredFrom = new Map<string, string>()
  private readonly probes = new Map<number, Probe>()
  /** Seq of the probe in flight per target (at most one each). */
  private readonly probeByTarget = new Map<string, number>()
  private readonly relays = new Map<number, Relay>()
  private readonly suspicions = new Map<string, Suspicion>()
  private readonly reapQueue = new MinHeap<{ name: string; since: number }>()
  private conflictCheck: ConflictCheck | undefined
  /** Lifeguard's local health score: 0 (healthy) up to `awarenessMax`. */
  private awareness = 0
  private nextProbeMs: number
  private nextGossipMs: number
  private nextJoinMs: number
  private joinAttempts = 0
  private perm = { offset: 0, stride: 1, n: -1, step: 0 }
  private lastSyncMs = -Infinity
  private lastChangeMs: number
  private seeds: readonly string[]

  constructor(
    private readonly config: MembershipConfig,
    private readonly random: Random,
    nowMs: number,
    private readonly send: SendFn,
    /** Members known from the start (shared; the simulator's formed clusters). */
    base?: SharedMembers,
  ) {
    this.table = new MemberTable(base)
    this.seeds = config.seeds
    this.tags = config.tags
    const listed = this.table.get(config.name)
    this.incarnation = Math.max(config.generation, listed?.incarnation ?? 0, (config.minIncarnation ?? -1) + 1)
    this.lastChangeMs = nowMs
    this.heardEpochMs = Math.floor(nowMs)
    this.table.set(this.selfRecord(nowMs))
    const seeds = this.seedAddresses()
    this.phase = base === undefined && seeds.length > 0 ? 'joining' : 'member'
    const t = config.timing
    this.nextProbeMs = nowMs + random.next() * t.probeIntervalMs
    this.nextGossipMs = nowMs + random.next() * t.memberGossipIntervalMs
    this.nextJoinMs = nowMs
  }

  private get timing(): MembershipTiming {
    return this.config.timing
  }

  private get self(): string {
    return this.config.name
  }

  private selfRecord(nowMs: number, status = MemberStatus.Alive): Member {
    const c = this.config
    const cur = this.table.get(c.name)
    const since = cur !== undefined && cur.status === status ? cur.since : nowMs
    return { name: c.name, address: c.address, generation: c.generation, incarnation: this.incarnation, status, tags: this.tags, since }
  }

  /** Members believed up (alive or suspect), this node included. */
  get liveCount(): number {
    return this.table.count(MemberStatus.Alive) + this.table.count(MemberStatus.Suspect)
  }

  /** Live peers, this node excluded. */
  get livePeers(): number {
    const me = this.table.get(this.self)
    const selfLive = me !== undefined && (me.status === MemberStatus.Alive || me.status === MemberStatus.Suspect)
    return this.liveCount - (selfLive ? 1 : 0)
  }

  get localHealth(): number {
    return this.awareness
  }

  get currentIncarnation(): number {
    return this.incarnation
  }

  setSeeds(seeds: readonly string[]): void {
    this.seeds = seeds
  }

  private seedAddresses(): string[] {
    return this.seeds.filter((s) => s !== this.config.address)
  }

  /** Stretch factor of our timeouts while our own health is in doubt. */
  private scaled(ms: number): number {
    return ms * (this.awareness + 1)
  }

  private adjustAwareness(delta: number): void {
    this.awareness = Math.max(0, Math.min(this.timing.awarenessMax, this.awareness + delta))
  }

  takeEvents(): readonly MemberEvent[] {
    if (this.events.length === 0) return NO_EVENTS
    const out = this.events
    this.events = []
    return out
  }

  takeConflicts(): NameConflict[] {
    if (this.conflicts.length === 0) return []
    const out = this.conflicts
    this.conflicts = []
    return out
  }

  /** Every member known (this node included), with when we last heard from each directly. */
  list(): { member: Member; lastHeardMs: number | undefined }[] {
    const out: { member: Member; lastHeardMs: number | undefined }[] = []
    for (const m of this.table) {
      const heard = this.table.heardAt(m.name)
      out.push({ member: m, lastHeardMs: heard === undefined ? undefined : this.heardEpochMs + heard })
    }
    return out
  }

  get(name: string): Member | undefined {
    return this.table.get(name)
  }

  /** Adds a member known out of band (tests, the simulator), alive. */
  addMember(nowMs: number, name: string, address: string, generation = 1): void {
    if (name === this.self || this.table.get(name) !== undefined) return
    this.table.set({ name, address, generation, incarnation: generation, status: MemberStatus.Alive, tags: NO_TAGS, since: nowMs })
  }

  // ---- events and changes ----------------------------------------------------

  private record(nowMs: number, m: Member, type: MemberEventType | undefined, previous: Member | undefined): void {
    this.table.set(m)
    // Only a change of who is in the cluster, or of a member's status, unsettles the view: tags
    // change all the time (an agent's state hash, about once a second) and would hold back the
    // full syncs for good.
    if (previous === undefined || previous.status !== m.status || previous.generation !== m.generation) this.lastChangeMs = nowMs
    if (m.status === MemberStatus.Dead || m.status === MemberStatus.Left) {
      if (previous === undefined || previous.since !== m.since) this.reapQueue.push(m.since + this.timing.reapTimeoutMs, { name: m.name, since: m.since })
    }
    if (type !== undefined) this.events.push({ type, member: m, previous })
  }

  private enqueue(u: MemberUpdate): void {
    this.broadcasts.enqueue(u)
  }

  /** Publishes our record at our current incarnation; `unsettles` false for a change of tags only (see record). */
  private announce(nowMs: number, unsettles = true): void {
    const me = this.selfRecord(nowMs)
    this.table.set(me)
    if (unsettles) this.lastChangeMs = nowMs
    this.enqueue(aliveUpdate(me))
  }

  /** Publishes new tags: a higher incarnation carries them to every node. */
  setTags(nowMs: number, tags: Tags): void {
    if (this.phase === 'left' || this.phase === 'conflict') return
    this.tags = Object.freeze({ ...tags })
    this.raiseIncarnation(nowMs, this.incarnation, false)
  }

  get currentTags(): Tags {
    return this.tags
  }

  /** Announces a graceful departure: peers mark us left at once. */
  leave(nowMs: number): void {
    if (this.phase === 'left' || this.phase === 'conflict') return
    this.phase = 'left'
    this.table.set(this.selfRecord(nowMs, MemberStatus.Left))
    const u = claimUpdate(MemberStatus.Left, this.self, this.incarnation, this.self)
    this.enqueue(u)
    // Straight to a few peers too, so the news does not wait for a round.
    for (const to of this.pickLive(this.timing.gossipNodes * 2, undefined)) {
      this.send(to.address, { type: MessageType.MemberGossip, updates: [u] })
    }
    this.probes.clear()
    this.probeByTarget.clear()
    this.suspicions.clear()
    this.conflictCheck = undefined
  }

  /** Whether our leave announcement is still queued for dissemination (with no live peer there is no one to tell). */
  get leaving(): boolean {
    return this.phase === 'left' && this.livePeers > 0 && this.broadcasts.has(this.self)
  }

  // ---- applying updates ----------------------------------------------------

  /**
   * Applies one update from the wire; `rebroadcast` is off for full syncs
   * (pairwise anti-entropy). A record changes only to a higher
   * (incarnation, status) pair, status ordered alive < suspect < dead <
   * left: a total order, so any order and repetition of deliveries leaves
   * the same record (only the member itself raises its incarnation, so a
   * higher one is newer news whatever its status).
   */
  apply(nowMs: number, u: MemberUpdate, rebroadcast = true, solicited = true): void {
    if (u.incarnation > incarnationCeiling(nowMs) && !this.isRefutationOfHeldClaim(nowMs, u)) {
      this.stats.claimsRefused++
      return
    }
    if (u.name === this.self) {
      this.applyAboutSelf(nowMs, u)
      return
    }
    const cur = this.table.get(u.name)
    switch (u.status) {
      case MemberStatus.Alive: {
        if (cur !== undefined && u.incarnation <= cur.incarnation) return
        if (cur === undefined && this.table.size >= this.config.maxMembers) {
          this.stats.membersRefused++
          return
        }
        if (cur === undefined && !solicited && !this.admitNew(nowMs)) {
          this.stats.claimsRefused++
          return
        }
        const keepSince = cur !== undefined && cur.status === MemberStatus.Alive
        const m: Member = {
          name: u.name,
          address: u.address,
          generation: u.generation,
          incarnation: u.incarnation,
          status: MemberStatus.Alive,
          tags: u.tags,
          since: keepSince ? cur.since : nowMs,
        }
        this.suspicions.delete(u.name)
        let type: MemberEventType | undefined
        if (cur === undefined || cur.generation !== u.generation) type = 'join'
        else if (cur.status !== MemberStatus.Alive) type = 'alive'
        else if (cur.address !== u.address || !tagsEqual(cur.tags, u.tags)) type = 'update'
        this.record(nowMs, m, type, cur)
        if (rebroadcast) this.enqueue(u)
        return
      }
      case MemberStatus.Suspect: {
        if (cur === undefined || u.incarnation < cur.incarnation) return
        // The record follows the claim whoever made it (the order stays a join); only a member we
        // know as live counts as a confirmation, since a made-up accuser would shorten the timer.
        const counts = u.by !== u.name && u.by !== this.self && this.isLiveMember(u.by)
        if (u.incarnation === cur.incarnation && cur.status > MemberStatus.Suspect) return
        if (cur.status !== MemberStatus.Suspect || u.incarnation > cur.incarnation) {
          const m: Member = { ...cur, incarnation: u.incarnation, status: MemberStatus.Suspect, since: nowMs }
          const s: Suspicion = { incarnation: u.incarnation, accusers: new Set(counts ? [u.by] : []), accuser: false, startedAt: nowMs, deadline: 0, verifyAt: 0 }
          this.setDeadline(s)
          this.suspicions.set(u.name, s)
          this.record(nowMs, m, 'suspect', cur)
          if (rebroadcast) this.enqueue(u)
          // An independent check: about 2k nodes cluster-wide make one.
          const k = this.timing.indirectChecks
          if (this.phase === 'member' && this.random.next() < (2 * k) / Math.max(1, this.liveCount)) this.startProbe(nowMs, m, 'check')
          return
        }
        // Same incarnation, already suspect: a confirmation if the accuser is new.
        let s = this.suspicions.get(u.name)
        if (s === undefined || s.incarnation !== u.incarnation) {
          s = { incarnation: u.incarnation, accusers: new Set(), accuser: false, startedAt: nowMs, deadline: Infinity, verifyAt: Infinity }
          this.suspicions.set(u.name, s)
        }
        // Confirmations beyond k no longer shorten the timer: neither kept nor passed on.
        if (!counts || s.accusers.has(u.by) || s.accusers.size > this.timing.indirectChecks) return
        s.accusers.add(u.by)
        this.setDeadline(s)
        if (rebroadcast) this.enqueue(u)
        return
      }
      case MemberStatus.Dead:
      case MemberStatus.Left: {
        if (cur === undefined || u.incarnation < cur.incarnation) return
        // Only a member itself announces that it leaves.
        if (u.status === MemberStatus.Left && u.by !== u.name) return
        if (u.incarnation === cur.incarnation && cur.status >= u.status) return
        const m: Member = { ...cur, incarnation: u.incarnation, status: u.status, since: nowMs }
        this.suspicions.delete(u.name)
        this.record(nowMs, m, u.status === MemberStatus.Dead ? 'dead' : 'left', cur)
        if (rebroadcast) this.enqueue(u)
        return
      }
    }
  }

  private applyAboutSelf(nowMs: number, u: MemberUpdate): void {
    if (this.phase === 'conflict' || this.phase === 'left') return
    if (u.status === MemberStatus.Alive) {
      const mine = u.generation === this.config.generation && u.address === this.config.address
      if (mine) {
        // Our own claim echoed back; one above ours can only follow a restart within one generation.
        if (u.incarnation > this.incarnation) this.refute(nowMs, u.incarnation, undefined)
        return
      }
      if (u.generation > this.config.generation) {
        // A later process claims our name while we live: it must give way (it checks before it joins).
        this.noteConflict({ name: this.self, ourAddress: this.config.address, theirAddress: u.address, weAreNewcomer: false })
        if (u.incarnation >= this.incarnation) this.refute(nowMs, u.incarnation, undefined)
        return
      }
      // An earlier run of our name: our own past (crashed), or another live process.
      if (u.incarnation < this.incarnation && this.phase === 'member') return
      if (u.address === this.config.address) {
        // Same address: it cannot be alive while we hold the port. Supersede it.
        this.raiseIncarnation(nowMs, u.incarnation)
        return
      }
      if (this.phase === 'member') {
        // We are the member already: another process claiming our name must give way; we refute.
        this.noteConflict({ name: this.self, ourAddress: this.config.address, theirAddress: u.address, weAreNewcomer: false })
        this.raiseIncarnation(nowMs, u.incarnation)
        return
      }
      if (this.conflictCheck === undefined) this.startConflictCheck(nowMs, u)
      return
    }
    // Suspect, dead or left about us.
    if (u.incarnation < this.incarnation) {
      // Stale news about us: we have refuted it already, or our incarnation moved on since (tags).
      // Its maker may still hold it, e.g. a node that declared us dead across a partition that has
      // since healed: our later records went only to those we gossip with, not to it. It hears our
      // current record directly, or the two sides of a healed split would stay dead to each other.
      if (u.status !== MemberStatus.Left) this.correct(nowMs, u.by)
      return
    }
    const accuser = u.status === MemberStatus.Suspect || u.status === MemberStatus.Dead ? u.by : undefined
    this.refute(nowMs, u.incarnation, accuser)
  }

  /** Sends our current record to a member that holds older news about us; at most once per probe interval each. */
  private correct(nowMs: number, holder: string): void {
    if (this.phase !== 'member' || holder === this.self) return
    const to = this.table.get(holder)
    if (to === undefined) return
    const last = this.corrected.get(holder)
    if (last !== undefined && nowMs - last < this.timing.probeIntervalMs) return
    if (this.corrected.size >= 4096) this.corrected.clear()
    this.corrected.set(holder, nowMs)
    this.stats.corrections++
    this.send(to.address, { type: MessageType.MemberGossip, updates: [aliveUpdate(this.selfRecord(nowMs))] })
  }

  private refute(nowMs: number, above: number, accuser: string | undefined): void {
    this.stats.refutations++
    this.adjustAwareness(1)
    this.raiseIncarnation(nowMs, above)
    if (this.phase !== 'member') return
    // Straight to the accuser too: its timer is the one that would kill us.
    const to = accuser !== undefined ? this.table.get(accuser) : undefined
    if (to !== undefined && to.name !== this.self) {
      this.send(to.address, { type: MessageType.MemberGossip, updates: [aliveUpdate(this.selfRecord(nowMs))] })
    }
  }

  /**
   * Takes an incarnation above `above` (refuting a claim, superseding an
   * earlier run of our name, publishing tags): announced to all when we are a
   * member, else only recorded until we become one.
   */
  private raiseIncarnation(nowMs: number, above: number, unsettles = true): void {
    this.incarnation = Math.max(this.incarnation, above + 1)
    if (this.phase === 'member') this.announce(nowMs, unsettles)
    else this.table.set(this.selfRecord(nowMs))
  }

  private noteConflict(c: NameConflict): void {
    const key = `${c.theirAddress}|${c.weAreNewcomer}`
    if (this.knownConflicts.has(key) || this.knownConflicts.size >= MAX_CONFLICTS_NOTED) return
    this.knownConflicts.add(key)
    this.conflicts.push(c)
  }

  private startConflictCheck(nowMs: number, their: MemberUpdate): void {
    const seq = ++this.seq
    this.conflictCheck = { their, seqs: new Set([seq]), seq, tries: 1, deadline: nowMs + 2 * this.scaled(this.timing.probeTimeoutMs) }
    if (this.phase === 'joining') this.phase = 'checking'
    this.send(their.address, { type: MessageType.Ping, seq: this.conflictCheck.seq, target: this.self, updates: [] })
  }

  private finishConflictCheck(nowMs: number, alive: boolean): void {
    const check = this.conflictCheck!
    this.conflictCheck = undefined
    if (alive) {
      this.phase = 'conflict'
      this.noteConflict({ name: this.self, ourAddress: this.config.address, theirAddress: check.their.address, weAreNewcomer: true })
      this.broadcasts.clear()
      this.clearProbes()
      return
    }
    if (this.phase === 'checking') this.becomeMember(nowMs, check.their.incarnation)
    else this.raiseIncarnation(nowMs, check.their.incarnation)
  }

  private becomeMember(nowMs: number, above: number): void {
    this.phase = 'member'
    this.joinAttempts = 0
    this.raiseIncarnation(nowMs, above)
    // Tell a few members at once rather than waiting for a dissemination round.
    const me = aliveUpdate(this.selfRecord(nowMs))
    for (const to of this.pickLive(this.timing.gossipNodes, undefined)) this.send(to.address, { type: MessageType.MemberGossip, updates: [me] })
  }

  // ---- messages ------------------------------------------------------------

  /**
   * Every message from a peer (`address` its reply address, `source` where it
   * came from): when we last heard from it, and whether from its own host
   * (anyone can put a name in a packet; members that spoke from their host
   * are preferred as gossip targets); a member we hold a claim against is
   * told it, so it can refute.
   */
  heardFrom(nowMs: number, name: string, address: string, source: string = address): void {
    if (name === this.self || this.phase === 'conflict') return
    const known = this.table.get(name)
    if (known === undefined) return
    const m = this.table.noteHeard(name, Math.floor(nowMs) - this.heardEpochMs, this.speaksFromItsHost(known, source))!
    // A member that speaks while we hold a claim against it hears the claim, so it can refute:
    // suspect, dead or left (a claim may have reached us by a member sync, which is not passed
    // on, or from a third party that told no one else), or alive at another address than the one
    // it speaks from (a third party's claim that it moved: every probe of ours now goes where it
    // is not). If the claim is true, the record changes nothing at the member.
    const movedClaim = m.status === MemberStatus.Alive && m.address !== address
    if (m.status === MemberStatus.Alive && !movedClaim) return
    const last = this.recordNotified.get(name)
    if (last !== undefined && nowMs - last < this.timing.probeIntervalMs) return
    this.recordNotified.set(name, nowMs)
    if (this.recordNotified.size > 4096) this.recordNotified.clear()
    const held = movedClaim ? aliveUpdate(m) : claimUpdate(m.status, name, m.incarnation, m.status === MemberStatus.Left ? name : this.self)
    this.send(address, { type: MessageType.MemberGossip, updates: [held] })
  }

  /** A message from another process using our name (the engine drops our own loopback before this). */
  onNameClash(nowMs: number, msg: MessageBody, fromAddress: string, replyTo: string): void {
    if (msg.type === MessageType.Ack) {
      const check = this.conflictCheck
      // Any answer to our name from another address is another live process: a conflict.
      if (check !== undefined && check.seqs.has(msg.seq) && fromAddress === check.their.address) this.finishConflictCheck(nowMs, true)
      return
    }
    if (msg.type === MessageType.Ping && msg.target === this.self && this.phase !== 'conflict') {
      // A newcomer checking whether our name is taken: it is. Answer, and note it.
      this.noteConflict({ name: this.self, ourAddress: this.config.address, theirAddress: replyTo || fromAddress, weAreNewcomer: false })
      this.send(replyTo, { type: MessageType.Ack, seq: msg.seq, generation: this.config.generation, updates: [] })
    }
  }

  /**
   * An alive record one above the claim we hold about another member is its
   * refutation. When the claim was made near the ceiling of an accuser whose
   * clock runs ahead of ours, the refutation lies above our ceiling: it is
   * taken up to the ceiling plus the headroom once more.
   */
  private isRefutationOfHeldClaim(nowMs: number, u: MemberUpdate): boolean {
    if (u.status !== MemberStatus.Alive || u.name === this.self) return false
    const cur = this.table.get(u.name)
    return cur !== undefined && cur.status !== MemberStatus.Alive && u.incarnation === cur.incarnation + 1 && u.incarnation <= incarnationCeiling(nowMs) + INCARNATION_HEADROOM
  }

  /** Whether the current source may still introduce a new member in this probe interval. */
  private admitNew(nowMs: number): boolean {
    if (nowMs - this.admittedWindowStart >= this.timing.probeIntervalMs) {
      this.admittedWindowStart = nowMs
      this.admitted.clear()
    }
    const host = this.hostOf(this.source)
    const n = this.admitted.get(host) ?? 0
    if (n >= NEW_MEMBERS_PER_SOURCE) return false
    // The map is bounded too: a source beyond MAX_ADMISSION_SOURCES in one interval introduces no one.
    if (n === 0 && this.admitted.size >= MAX_ADMISSION_SOURCES) return false
    this.admitted.set(host, n + 1)
    return true
  }

  /**
   * Whether a message from `source` may speak for member `m`: it comes from
   * the host `m` advertises, or from the host `m` last answered one of our
   * probes from (a node bound to every interface sends from whichever
   * address routes to us, which need not be the one it advertises; the
   * answer echoes a random sequence number only the receiver of our Ping
   * knows, so it proves that host is the member's).
   */
  speaksFromItsHost(m: Member, source: string): boolean {
    const host = this.hostOf(source)
    return this.hostOf(m.address) === host || this.answeredFrom.get(m.name) === host
  }

  private noteAnsweredFrom(name: string, source: string): void {
    const m = this.table.get(name)
    if (m === undefined) return
    const host = this.hostOf(source)
    if (host === this.hostOf(m.address)) {
      this.answeredFrom.delete(name)
      return
    }
    // Bounded by the members (a removed member's entry goes with it: reap); cleared whole beyond that.
    if (this.answeredFrom.size >= this.table.size + 64) this.answeredFrom.clear()
    this.answeredFrom.set(name, host)
  }

  private hostOf(address: string): string {
    return this.config.peerHostOf === undefined ? address : this.config.peerHostOf(address)
  }

  private noteSyncAsked(nowMs: number, to: string): void {
    if (this.syncAskedAt.size >= 4096) this.syncAskedAt.clear()
    this.syncAskedAt.set(this.hostOf(to), nowMs)
  }

  /**
   * Membership messages (and their piggybacked updates). `source` is the
   * transport address the message came from (the reply address may be
   * anyone's); it keys the budget of new members a sender may introduce.
   */
  handle(nowMs: number, msg: Message, replyTo: string, source = replyTo): void {
    if (this.phase === 'conflict') return
    this.source = source
    switch (msg.type) {
      case MessageType.Ping:
        for (const u of msg.updates) this.apply(nowMs, u, true, false)
        if (msg.target !== this.self) {
          this.stats.misrouted++
          return
        }
        this.send(replyTo, { type: MessageType.Ack, seq: msg.seq, generation: this.config.generation, updates: this.piggyback(ACK_OVERHEAD) })
        return
      case MessageType.Ack: {
        for (const u of msg.updates) this.apply(nowMs, u, true, false)
        const relay = this.relays.get(msg.seq)
        if (relay !== undefined) {
          this.relays.delete(msg.seq)
          this.send(relay.requester, { type: MessageType.Ack, seq: relay.seq, generation: msg.generation, updates: [] })
          return
        }
        const probe = this.probes.get(msg.seq)
        // From the target itself, or relayed by a helper we asked.
        if (probe !== undefined && (msg.from === probe.target || probe.helperNames.includes(msg.from))) {
          if (msg.from === probe.target) this.noteAnsweredFrom(probe.target, source)
          this.deleteProbe(msg.seq, probe)
          if (probe.kind === 'round') this.adjustAwareness(-1)
          // It answered: whatever others say, we will not declare it dead.
          // It stays suspect here until its refutation (or a sync) arrives.
          const s = this.suspicions.get(probe.target)
          if (s !== undefined && s.incarnation === probe.incarnation) this.suspicions.delete(probe.target)
        }
        return
      }
      case MessageType.PingReq: {
        for (const u of msg.updates) this.apply(nowMs, u, true, false)
        if (msg.target === this.self || this.relays.size >= MAX_RELAYS) return
        const seq = ++this.seq
        // The Nack must reach the requester before its probe ends (the rest of its interval, a probe timeout in the lan preset).
        this.relays.set(seq, { requester: replyTo, seq: msg.seq, deadline: nowMs + NACK_TIMEOUT_FRACTION * this.timing.probeTimeoutMs })
        this.send(msg.targetAddress, { type: MessageType.Ping, seq, target: msg.target, updates: this.piggyback(pingOverhead(msg.target)) })
        return
      }
      case MessageType.Nack: {
        const probe = this.probes.get(msg.seq)
        if (probe !== undefined) probe.nacks++
        return
      }
      case MessageType.MemberGossip:
        for (const u of msg.updates) this.apply(nowMs, u, true, false)
        return
      case MessageType.JoinRequest:
        // A joining node answers too, asking for the list back: nodes that all start at once, each
        // with the others as seeds, would otherwise wait for a member that none of them is yet.
        if ((this.phase === 'member' || this.phase === 'joining') && this.mayAnswerSync(nowMs, replyTo)) {
          if (this.phase === 'joining') this.noteSyncAsked(nowMs, replyTo)
          this.sendSync(replyTo, this.phase === 'joining')
        }
        return
      case MessageType.MemberSync: {
        const asked = this.syncAskedAt.get(this.hostOf(source))
        const solicited = asked !== undefined && nowMs - asked <= this.timing.joinRetryMaxMs
        for (const u of msg.members) this.apply(nowMs, u, false, solicited)
        if (this.phase === 'joining') this.becomeMember(nowMs, 0)
        if (msg.reply && this.phase === 'member' && this.mayAnswerSync(nowMs, replyTo)) this.sendSync(replyTo, false)
        return
      }
      default:
        return
    }
  }

  /** Each member-list answer may be a large stream: at most one per address per join retry period. */
  private mayAnswerSync(nowMs: number, to: string): boolean {
    const last = this.syncAnswered.get(to)
    if (last !== undefined && nowMs - last < this.timing.joinRetryMs) return false
    if (nowMs - this.syncWindowStart >= this.timing.probeIntervalMs) {
      this.syncWindowStart = nowMs
      this.syncsInWindow = 0
    }
    // Roughly the bytes of one answer; the budget bounds what requests (which may be forged) cost us.
    const cost = this.table.size * SYNC_BYTES_PER_MEMBER
    if (this.syncsInWindow > 0 && this.syncsInWindow + cost > SYNC_ANSWER_BYTES_PER_INTERVAL) return false
    this.syncsInWindow += cost
    if (this.syncAnswered.size >= 4096) this.syncAnswered.clear()
    this.syncAnswered.set(to, nowMs)
    return true
  }

  private sendSync(to: string, reply: boolean): void {
    const members: MemberUpdate[] = []
    for (const m of this.table) members.push(recordUpdate(m, this.self))
    this.stats.memberSyncsSent++
    this.send(to, { type: MessageType.MemberSync, reply, members }, true)
  }

  /** The state gossip probe's membership fingerprint: a settled mismatch brings a full exchange. */
  onFingerprint(nowMs: number, hi: number, lo: number, replyTo: string): void {
    if (this.phase !== 'member' || this.table.fingerprint.equals(hi, lo)) return
    if (nowMs - this.lastSyncMs < this.timing.memberSyncIntervalMs) return
    // While our own view still changes, the difference is likely churn in flight.
    if (nowMs - this.lastChangeMs < SYNC_SETTLE_INTERVALS * this.timing.probeIntervalMs) return
    this.lastSyncMs = nowMs
    this.noteSyncAsked(nowMs, replyTo)
    this.sendSync(replyTo, true)
  }

  /** Updates to piggyback on a message whose body already takes `overhead` bytes. */
  private piggyback(overhead: number): MemberUpdate[] {
    if (this.broadcasts.size === 0) return []
    return this.broadcasts.take(this.config.bodyBudget - overhead - 3, retransmitLimit(this.timing, this.liveCount))
  }

  // ---- probing ---------------------------------------------------------------

  private startProbe(nowMs: number, m: Member, kind: ProbeKind): void {
    if (this.probeByTarget.has(m.name)) return
    // Random, not counted: a direct answer proves where the member answers from (answeredFrom),
    // so it must not be guessable by someone who never received the Ping.
    let seq = 1 + randomInt(this.random, 2 ** 31 - 1)
    while (this.probes.has(seq)) seq = 1 + randomInt(this.random, 2 ** 31 - 1)
    this.probeByTarget.set(m.name, seq)
    const t = this.timing
    this.probes.set(seq, {
      target: m.name,
      address: m.address,
      incarnation: m.incarnation,
      directDeadline: nowMs + this.scaled(t.probeTimeoutMs),
      endDeadline: nowMs + this.scaled(t.probeIntervalMs),
      kind,
      helpers: 0,
      helperNames: [],
      nacks: 0,
      indirectSent: false,
    })
    this.stats.pingsSent++
    this.send(m.address, { type: MessageType.Ping, seq, target: m.name, updates: this.piggyback(pingOverhead(m.name)) })
  }

  private probeOf(name: string): Probe | undefined {
    const seq = this.probeByTarget.get(name)
    return seq === undefined ? undefined : this.probes.get(seq)
  }

  private deleteProbe(seq: number, p: Probe): void {
    this.probes.delete(seq)
    if (this.probeByTarget.get(p.target) === seq) this.probeByTarget.delete(p.target)
  }

  private clearProbes(): void {
    this.probes.clear()
    this.probeByTarget.clear()
  }

  private isLiveMember(name: string): boolean {
    const m = this.table.get(name)
    return m !== undefined && (m.status === MemberStatus.Alive || m.status === MemberStatus.Suspect)
  }

  /** The next member in this cycle's random order that is worth probing. */
  private nextProbeTarget(): Member | undefined {
    const table = this.table
    for (let attempts = 0; attempts < 2; attempts++) {
      const n = table.slots
      if (n === 0) return undefined
      const p = this.perm
      if (p.n !== n || p.step >= n) {
        p.n = n
        p.step = 0
        p.offset = randomInt(this.random, n)
        p.stride = coprimeStride(this.random, n)
      }
      while (p.step < n) {
        const i = (p.offset + p.step * p.stride) % n
        p.step++
        const m = table.atSlot(i)
        if (m !== undefined && m.name !== this.self && (m.status === MemberStatus.Alive || m.status === MemberStatus.Suspect)) return m
      }
    }
    return undefined
  }

  private onProbeFailed(nowMs: number, probe: Probe): void {
    this.stats.probesFailed++
    if (probe.kind === 'round') this.adjustAwareness(probe.helpers > 0 ? Math.max(0, probe.helpers - probe.nacks) : 1)
    const cur = this.table.get(probe.target)
    if (cur === undefined || cur.incarnation !== probe.incarnation) return
    if (cur.status !== MemberStatus.Alive && cur.status !== MemberStatus.Suspect) return
    this.accuse(nowMs, cur)
  }

  private accuse(nowMs: number, cur: Member): void {
    let s = this.suspicions.get(cur.name)
    if (cur.status === MemberStatus.Alive || s === undefined || s.incarnation !== cur.incarnation) {
      s = { incarnation: cur.incarnation, accusers: new Set(), accuser: false, startedAt: nowMs, deadline: Infinity, verifyAt: Infinity }
      this.suspicions.set(cur.name, s)
    }
    if (cur.status === MemberStatus.Alive) {
      this.record(nowMs, { ...cur, status: MemberStatus.Suspect, since: nowMs }, 'suspect', cur)
    }
    if (s.accuser) return
    const before = s.deadline
    s.accuser = true
    s.startedAt = nowMs
    s.accusers.add(this.self)
    this.setDeadline(s)
    // A failed verification must not push back a timer that was already running.
    if (before < s.deadline) {
      s.deadline = before
      s.verifyAt = Math.min(s.verifyAt, before)
    }
    this.stats.suspicionsRaised++
    const claim = claimUpdate(MemberStatus.Suspect, cur.name, cur.incarnation, this.self)
    this.enqueue(claim)
    // Our confirmation goes straight to the earlier accusers: their timers shorten with it.
    let direct = 0
    for (const name of s.accusers) {
      const to = name === this.self ? undefined : this.table.get(name)
      if (to === undefined) continue
      this.send(to.address, { type: MessageType.MemberGossip, updates: [claim] })
      if (++direct >= MAX_DIRECT_CONFIRMATIONS) break
    }
    // News that starts timers goes out now, not at the next round.
    this.disseminate(nowMs)
  }

  /**
   * Lifeguard's timer. Accusers run it from the minimum: they declare death.
   * Others run it from twice the minimum, a backstop for when every
   * declaration is lost, long enough for a suspect that was only paused to
   * refute first.
   */
  private setDeadline(s: Suspicion): void {
    s.deadline = this.suspicionDeadline(s)
    s.verifyAt = Math.max(s.startedAt, s.deadline - this.scaled(this.timing.probeIntervalMs))
  }

  private suspicionDeadline(s: Suspicion): number {
    const n = this.liveCount
    const base = minSuspicionMs(this.timing, n)
    const max = this.timing.suspicionMaxMult * base
    const min = s.accuser ? base : Math.min(max, 2 * base)
    const k = Math.max(0, Math.min(this.timing.indirectChecks, n - 2))
    const confirmations = s.accusers.size - (s.accusers.has(this.self) ? 1 : 0)
    return s.startedAt + suspicionTimeoutMs(min, max, confirmations, k)
  }

  private declareDead(nowMs: number, name: string): void {
    const cur = this.table.get(name)
    this.suspicions.delete(name)
    if (cur === undefined || cur.status !== MemberStatus.Suspect) return
    this.stats.deadDeclared++
    this.record(nowMs, { ...cur, status: MemberStatus.Dead, since: nowMs }, 'dead', cur)
    this.enqueue(claimUpdate(MemberStatus.Dead, name, cur.incarnation, this.self))
    this.disseminate(nowMs)
  }

  // ---- time ----------------------------------------------------------------

  /**
   * Our event loop (or process) was stopped for `stallMs`: probes in flight
   * may have been answered in time without us reading the answer, and
   * refutations may be waiting unread. Void the probes, give suspicion timers
   * the stalled time back, and count it against our own health.
   */
  onStall(nowMs: number, stallMs: number): void {
    this.stats.stalls++
    this.clearProbes()
    for (const s of this.suspicions.values()) {
      s.deadline = Math.max(s.deadline + stallMs, nowMs + this.timing.probeIntervalMs)
      s.verifyAt = Math.max(s.verifyAt + stallMs, nowMs)
      s.verified = false
    }
    for (const [seq, r] of this.relays) if (r.deadline <= nowMs) this.relays.delete(seq)
    this.adjustAwareness(1)
  }

  tick(nowMs: number): void {
    const t = this.timing
    if (this.phase === 'conflict') return
    // Joining, or cut off from every peer: ask the seeds, backing off.
    if ((this.phase === 'joining' || (this.phase === 'member' && this.livePeers === 0)) && nowMs >= this.nextJoinMs) {
      const seeds = this.seedAddresses()
      for (const s of seeds) {
        this.noteSyncAsked(nowMs, s)
        this.send(s, { type: MessageType.JoinRequest })
      }
      this.joinAttempts++
      // Jittered, so joiners started together do not retry in waves.
      const backoff = Math.min(t.joinRetryMaxMs, t.joinRetryMs * 2 ** Math.min(20, this.joinAttempts - 1))
      this.nextJoinMs = nowMs + backoff * (0.5 + this.random.next())
    }
    const check = this.conflictCheck
    if (check !== undefined && nowMs >= check.deadline) {
      if (check.tries >= CONFLICT_CHECK_TRIES) {
        this.finishConflictCheck(nowMs, false)
      } else {
        check.tries++
        check.seq = ++this.seq
        check.seqs.add(check.seq)
        check.deadline = nowMs + 2 * this.scaled(t.probeTimeoutMs)
        this.send(check.their.address, { type: MessageType.Ping, seq: check.seq, target: this.self, updates: [] })
      }
    }
    for (const [seq, p] of this.probes) {
      if (!p.indirectSent && nowMs >= p.directDeadline) {
        p.indirectSent = true
        const helpers = this.pickLive(t.indirectChecks, p.target)
        p.helpers = helpers.length
        p.helperNames = helpers.map((h) => h.name)
        for (const h of helpers) {
          this.stats.indirectPings++
          this.send(h.address, {
            type: MessageType.PingReq,
            seq,
            target: p.target,
            targetAddress: p.address,
            updates: this.piggyback(pingOverhead(p.target) + stringSize(p.address)),
          })
        }
      }
      if (nowMs >= p.endDeadline) {
        this.deleteProbe(seq, p)
        this.onProbeFailed(nowMs, p)
      }
    }
    for (const [seq, r] of this.relays) {
      if (nowMs >= r.deadline) {
        this.relays.delete(seq)
        this.send(r.requester, { type: MessageType.Nack, seq: r.seq })
      }
    }
    for (const [name, s] of this.suspicions) {
      if (this.phase !== 'member' || nowMs < s.verifyAt) continue
      const pending = this.probeOf(name)
      if (!s.verified) {
        // The last look (or a probe already under way): a suspect that answers now is not declared dead.
        s.verified = true
        const m = this.table.get(name)
        if (pending === undefined && m !== undefined) this.startProbe(nowMs, m, 'verify')
        continue
      }
      if (nowMs >= s.deadline && pending === undefined) this.declareDead(nowMs, name)
    }
    if (this.phase === 'member' && nowMs >= this.nextProbeMs) {
      const target = this.nextProbeTarget()
      if (target !== undefined) this.startProbe(nowMs, target, 'round')
      this.nextProbeMs += this.scaled(t.probeIntervalMs)
      if (this.nextProbeMs <= nowMs) this.nextProbeMs = nowMs + this.scaled(t.probeIntervalMs)
    }
    // Gossip rounds fall on this node's own grid (its random phase plus whole intervals), and only
    // when there is news: an idle node does not wake for them. News that comes after at least one
    // whole idle interval waits for the next grid point, as with a ticker; so nodes that all get the
    // same news at once still gossip at their own phases, not in one burst.
    if (nowMs >= this.nextGossipMs && this.hasNewsToGossip()) {
      const interval = t.memberGossipIntervalMs
      const missed = Math.floor((nowMs - this.nextGossipMs) / interval)
      if (missed === 0) {
        this.disseminate(nowMs)
        this.nextGossipMs += interval
      } else {
        this.nextGossipMs += (missed + 1) * interval
      }
    }
    this.reap(nowMs)
  }

  private hasNewsToGossip(): boolean {
    return this.broadcasts.size > 0 && (this.phase === 'member' || this.phase === 'left')
  }

  private disseminate(nowMs: number): void {
    const t = this.timing
    const limit = retransmitLimit(t, this.liveCount)
    const targets = this.pickLive(t.gossipNodes, undefined, (m) => m.status === MemberStatus.Dead && nowMs - m.since < t.gossipToTheDeadMs)
    for (const to of targets) {
      const updates = this.broadcasts.take(this.config.bodyBudget - 3, limit)
      if (updates.length === 0) break
      this.send(to.address, { type: MessageType.MemberGossip, updates })
    }
  }

  private reap(nowMs: number): void {
    for (;;) {
      const due = this.reapQueue.peekPriority()
      if (due === undefined || due > nowMs) return
      const { name, since } = this.reapQueue.pop()!
      const cur = this.table.get(name)
      if (cur === undefined || cur.since !== since || (cur.status !== MemberStatus.Dead && cur.status !== MemberStatus.Left)) continue
      if (name === this.self) continue
      this.table.remove(name)
      this.answeredFrom.delete(name)
      this.suspicions.delete(name)
      this.lastChangeMs = nowMs
      this.events.push({ type: 'reaped', member: cur, previous: cur })
    }
  }

  nextWakeMs(): number {
    if (this.phase === 'conflict') return Infinity
    // Left in the past while idle; with news, the tick puts it back on the grid (see tick).
    let at = this.hasNewsToGossip() ? this.nextGossipMs : Infinity
    if (this.phase === 'member') at = Math.min(at, this.nextProbeMs)
    if (this.phase === 'joining' || (this.phase === 'member' && this.livePeers === 0)) at = Math.min(at, this.nextJoinMs)
    if (this.conflictCheck !== undefined) at = Math.min(at, this.conflictCheck.deadline)
    for (const p of this.probes.values()) at = Math.min(at, p.indirectSent ? p.endDeadline : p.directDeadline)
    for (const r of this.relays.values()) at = Math.min(at, r.deadline)
    for (const [name, s] of this.suspicions) {
      if (this.phase !== 'member') break
      if (!s.verified) at = Math.min(at, s.verifyAt)
      else if (this.probeOf(name) === undefined) at = Math.min(at, s.deadline)
      // else: the pending probe's own deadlines wake us.
    }
    const reap = this.reapQueue.peekPriority()
    if (reap !== undefined) at = Math.min(at, reap)
    return at
  }

  // ---- peer selection ----------------------------------------------------------

  /** Up to `k` distinct random live members (alive or suspect), not us, not `exclude`; `alsoAccept` widens the choice. */
  /**
   * `k` distinct live members at random (and those `alsoAccept` takes).
   * With `preferHeard`, each pick is, half of the time, among the members
   * whose last message came from their own host: anyone may announce members, and a
   * flood of made-up ones (at addresses that never answer) took nearly every
   * gossip target until each was probed and found dead, one per probe
   * interval; a fresh write took 40 s to cross a two-node cluster. Half
   * keeps every live member a target, heard from or not yet.
   */
  private pickLive(k: number, exclude: string | undefined, alsoAccept?: (m: Member) => boolean, preferHeard = false): Member[] {
    const out: Member[] = []
    const chosen = new Set<string>()
    const accept = (m: Member): boolean =>
      m.name !== this.self &&
      m.name !== exclude &&
      !chosen.has(m.name) &&
      (m.status === MemberStatus.Alive || m.status === MemberStatus.Suspect || (alsoAccept !== undefined && alsoAccept(m)))
    const available = this.livePeers
    for (let i = 0; i < k; i++) {
      if (alsoAccept === undefined && chosen.size >= available) break
      const m = (preferHeard && this.random.next() < 0.5 ? this.table.randomHeard(this.random, accept) : undefined) ?? this.table.random(this.random, accept)
      if (m === undefined) break
      chosen.add(m.name)
      out.push(m)
    }
    return out
  }

  /** A random live member other than us (those whose last message came from their own host preferred, as for gossip), or undefined. */
  randomLivePeer(): Member | undefined {
    return this.phase === 'conflict' ? undefined : this.pickLive(1, undefined, undefined, true)[0]
  }

  /**
   * Addresses for a state gossip round or a push: `k` live members; now and
   * then one dead member too (so halves of a healed partition meet again);
   * the seeds while we know no live peer.
   */
  gossipAddresses(k: number, exclude?: string, includeDead = false): string[] {
    if (this.phase === 'conflict') return []
    const live = this.pickLive(k, exclude, undefined, true)
    const out = live.map((m) => m.address)
    if (includeDead && this.table.count(MemberStatus.Dead) > 0 && this.random.next() < DEAD_CONTACT_PROBABILITY) {
      const dead = this.table.random(this.random, (m) => m.status === MemberStatus.Dead && m.name !== this.self)
      if (dead !== undefined) out.push(dead.address)
    }
    if (out.length === 0) {
      const seeds = this.seedAddresses()
      for (let i = seeds.length - 1; i > 0; i--) {
        const j = randomInt(this.random, i + 1)
        ;[seeds[i], seeds[j]] = [seeds[j]!, seeds[i]!]
      }
      return seeds.slice(0, k)
    }
    return out
  }
}

/** Body bytes of an Ack before its updates. */
const ACK_OVERHEAD = 9 + 9
function pingOverhead(target: string): number {
  return 9 + stringSize(target)
}

/** A stride in [1, n) coprime with n, so i -> offset + i*stride (mod n) visits every slot once. */
function coprimeStride(random: Random, n: number): number {
  if (n <= 2) return 1
  for (;;) {
    const s = 1 + randomInt(random, n - 1)
    if (gcd(s, n) === 1) return s
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b]
  return a
}

