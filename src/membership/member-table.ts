import { SetFingerprint } from '../util/hash.js'
import { type Random, randomInt } from '../util/random.js'
import { type Member, MemberStatus, memberHash } from './member.js'

/**
 * An immutable member list that many tables can start from: the simulator
 * gives ten thousand nodes of a formed cluster one base instead of ten
 * thousand copies (O(N) memory, not O(N^2)).
 */
export class SharedMembers {
  readonly list: readonly Member[]
  readonly byName: ReadonlyMap<string, Member>
  readonly index: ReadonlyMap<string, number>
  readonly counts: readonly number[]
  readonly fingerprint: SetFingerprint

  constructor(members: readonly Member[]) {
    this.list = [...members]
    this.byName = new Map(members.map((m) => [m.name, m]))
    this.index = new Map(members.map((m, i) => [m.name, i]))
    const counts = [0, 0, 0, 0]
    const fp = new SetFingerprint()
    for (const m of members) {
      counts[m.status]!++
      fp.toggle(...memberHash(m))
    }
    this.counts = counts
    this.fingerprint = fp
  }
}

const EMPTY = new SharedMembers([])

/**
 * The members one node knows, by name: a shared base plus this node's own
 * changes (copy-on-write per record). Keeps counts by status and an XOR
 * fingerprint of (name, incarnation, status class) in O(1) per change, and
 * samples uniformly by slot: slots are the base list followed by names added
 * later, so a random slot costs O(1) without a per-node array of all members.
 *
 * It also keeps when we last heard from each member: every received message
 * notes its sender (`noteHeard`), so the times sit in a structure of their
 * own keyed by the table's name strings, with numbers as values (no
 * allocation per message: the simulator runs this for ten thousand nodes).
 * The members whose last message came from their own host can be sampled in
 * O(1) (`randomHeard`): gossip prefers them (see Membership.pickLive).
 */
export class MemberTable {
  private readonly base: SharedMembers
  /** Changed records; null marks a base member that was removed (reaped). */
  private readonly overlay = new Map<string, Member | null>()
  /** Names added after the base, in slot order (removed ones are skipped lazily). */
  private added: string[] = []
  private addedRemoved = 0
  private readonly counts: number[]
  private readonly fp: SetFingerprint
  private sizeNow: number
  /**
   * Slot of each member heard from in `heardNames` and `heardCodes`
   * (swap-removed, so a random one costs O(1)). A code is the time times two,
   * plus one if the member last spoke from its own host.
   */
  private readonly heardSlot = new Map<string, number>()
  private readonly heardNames: string[] = []
  private readonly heardCodes: number[] = []

  constructor(base: SharedMembers = EMPTY) {
    this.base = base
    this.counts = [...base.counts]
    this.fp = new SetFingerprint()
    this.fp.toggle(base.fingerprint.hi, base.fingerprint.lo)
    this.sizeNow = base.list.length
  }

  get size(): number {
    return this.sizeNow
  }

  count(status: MemberStatus): number {
    return this.counts[status]!
  }

  get fingerprint(): SetFingerprint {
    return this.fp
  }

  get(name: string): Member | undefined {
    const o = this.overlay.get(name)
    if (o !== undefined) return o ?? undefined
    return this.base.byName.get(name)
  }

  /** Adds or replaces the record of `m.name`. */
  set(m: Member): void {
    const cur = this.get(m.name)
    if (cur !== undefined) {
      this.counts[cur.status]!--
      this.fp.toggle(...memberHash(cur))
    } else {
      this.sizeNow++
      if (!this.base.byName.has(m.name)) {
        if (!this.overlay.has(m.name)) this.added.push(m.name)
        else this.addedRemoved-- // a removed name back in its old slot
      }
    }
    this.counts[m.status]!++
    this.fp.toggle(...memberHash(m))
    this.overlay.set(m.name, m)
  }

  remove(name: string): void {
    const cur = this.get(name)
    if (cur === undefined) return
    this.counts[cur.status]!--
    this.fp.toggle(...memberHash(cur))
    this.sizeNow--
    this.forgetHeard(name)
    this.overlay.set(name, null)
    if (!this.base.byName.has(name)) {
      // Keep the name in `added` (skipped while absent) so slot order stays put.
      this.addedRemoved++
      if (this.addedRemoved > 64 && this.addedRemoved * 2 > this.added.length) this.compactAdded()
    }
  }

  private compactAdded(): void {
    this.added = this.added.filter((n) => this.overlay.get(n) != null)
    for (const [name, m] of this.overlay) if (m === null && !this.base.byName.has(name)) this.overlay.delete(name)
    this.addedRemoved = 0
  }

  /**
   * A message named `name` as its sender: stamps when (`at`, in the caller's
   * units) and whether it came from the member's own host, and returns the
   * member, or undefined (and stamps nothing) if we do not hold it.
   */
  noteHeard(name: string, at: number, atItsHost: boolean): Member | undefined {
    const m = this.get(name)
    if (m === undefined) return undefined
    // Keyed by the record's own string: the sender's name was decoded from the packet, a fresh copy.
    const code = at * 2 + (atItsHost ? 1 : 0)
    const slot = this.heardSlot.get(m.name)
    if (slot !== undefined) this.heardCodes[slot] = code
    else {
      this.heardSlot.set(m.name, this.heardNames.length)
      this.heardNames.push(m.name)
      this.heardCodes.push(code)
    }
    return m
  }

  private forgetHeard(name: string): void {
    const slot = this.heardSlot.get(name)
    if (slot === undefined) return
    const last = this.heardNames.length - 1
    if (slot !== last) {
      const moved = this.heardNames[last]!
      this.heardNames[slot] = moved
      this.heardCodes[slot] = this.heardCodes[last]!
      this.heardSlot.set(moved, slot)
    }
    this.heardNames.pop()
    this.heardCodes.pop()
    this.heardSlot.delete(name)
  }

  /** When we last heard from `name` (as given to `noteHeard`), or undefined. */
  heardAt(name: string): number | undefined {
    const slot = this.heardSlot.get(name)
    return slot === undefined ? undefined : Math.floor(this.heardCodes[slot]! / 2)
  }

  /**
   * A uniformly random member whose last message came from its own host and
   * that satisfies `accept`, or undefined after a few unlucky tries (no scan:
   * the caller falls back to `random`).
   */
  randomHeard(random: Random, accept: (m: Member) => boolean): Member | undefined {
    const n = this.heardNames.length
    if (n === 0) return undefined
    for (let tries = 0; tries < 8; tries++) {
      const i = randomInt(random, n)
      if (this.heardCodes[i]! % 2 === 0) continue
      const m = this.get(this.heardNames[i]!)
      if (m !== undefined && accept(m)) return m
    }
    return undefined
  }

  /** Number of sampling slots (some may be empty). */
  get slots(): number {
    return this.base.list.length + this.added.length
  }

  /** The member in slot `i`, or undefined when that slot is empty. */
  atSlot(i: number): Member | undefined {
    const b = this.base.list
    const name = i < b.length ? b[i]!.name : this.added[i - b.length]
    return name === undefined ? undefined : this.get(name)
  }

  /**
   * A uniformly random member satisfying `accept`, or undefined. Rejection
   * sampling over slots, then (if unlucky, e.g. most members dead) a scan
   * from a random slot, so it always finds one when one exists.
   */
  random(random: Random, accept: (m: Member) => boolean): Member | undefined {
    const n = this.slots
    if (n === 0) return undefined
    for (let tries = 0; tries < 32; tries++) {
      const m = this.atSlot(randomInt(random, n))
      if (m !== undefined && accept(m)) return m
    }
    const start = randomInt(random, n)
    for (let k = 0; k < n; k++) {
      const m = this.atSlot((start + k) % n)
      if (m !== undefined && accept(m)) return m
    }
    return undefined
  }

  *[Symbol.iterator](): IterableIterator<Member> {
    for (const b of this.base.list) {
      const o = this.overlay.get(b.name)
      if (o === undefined) yield b
      else if (o !== null) yield o
    }
    for (const name of this.added) {
      const o = this.overlay.get(name)
      if (o != null) yield o
    }
  }
}
