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
 * This node's own view of one member, beside the shared base: its record
 * when it differs from the base, and when we last heard from the member.
 */
interface LocalView {
  /** undefined: the base record stands; null: removed (reaped); else this node's record. */
  record: Member | null | undefined
  /** When we last heard from the member directly, in the caller's units; -1: never. */
  heardAt: number
}

/**
 * The members one node knows, by name: a shared base plus this node's own
 * changes (copy-on-write per record). Keeps counts by status and an XOR
 * fingerprint of (name, incarnation, status class) in O(1) per change, and
 * samples uniformly by slot: slots are the base list followed by names added
 * later, so a random slot costs O(1) without a per-node array of all members.
 *
 * When we last heard from each member lives in the same per-node map as
 * the changed records: every received message notes its sender, and one
 * lookup (`noteHeard`) both finds the member and stamps it.
 */
export class MemberTable {
  private readonly base: SharedMembers
  /** This node's views: changed records, removals, and heard times. */
  private readonly overlay = new Map<string, LocalView>()
  /** Names added after the base, in slot order (removed ones are skipped lazily). */
  private added: string[] = []
  private addedRemoved = 0
  private readonly counts: number[]
  private readonly fp: SetFingerprint
  private sizeNow: number

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
    if (o === undefined || o.record === undefined) return this.base.byName.get(name)
    return o.record ?? undefined
  }

  /** Adds or replaces the record of `m.name`. */
  set(m: Member): void {
    const cur = this.get(m.name)
    const o = this.overlay.get(m.name)
    if (cur !== undefined) {
      this.counts[cur.status]!--
      this.fp.toggle(...memberHash(cur))
    } else {
      this.sizeNow++
      if (!this.base.byName.has(m.name)) {
        if (o === undefined) this.added.push(m.name)
        else this.addedRemoved-- // a removed name back in its old slot
      }
    }
    this.counts[m.status]!++
    this.fp.toggle(...memberHash(m))
    if (o === undefined) this.overlay.set(m.name, { record: m, heardAt: -1 })
    else o.record = m
  }

  remove(name: string): void {
    const cur = this.get(name)
    if (cur === undefined) return
    this.counts[cur.status]!--
    this.fp.toggle(...memberHash(cur))
    this.sizeNow--
    const o = this.overlay.get(name)
    if (o === undefined) this.overlay.set(name, { record: null, heardAt: -1 })
    else {
      o.record = null
      o.heardAt = -1
    }
    if (!this.base.byName.has(name)) {
      // Keep the name in `added` (skipped while absent) so slot order stays put.
      this.addedRemoved++
      if (this.addedRemoved > 64 && this.addedRemoved * 2 > this.added.length) this.compactAdded()
    }
  }

  private compactAdded(): void {
    this.added = this.added.filter((n) => this.overlay.get(n)?.record != null)
    for (const [name, o] of this.overlay) if (o.record === null && !this.base.byName.has(name)) this.overlay.delete(name)
    this.addedRemoved = 0
  }

  /**
   * A message came from `name`: stamps when (`at`, in the caller's units)
   * and returns the member, or undefined (and stamps nothing) if we do not
   * hold it.
   */
  noteHeard(name: string, at: number): Member | undefined {
    const o = this.overlay.get(name)
    if (o !== undefined) {
      const m = o.record === undefined ? this.base.byName.get(name) : o.record
      if (m == null) return undefined
      o.heardAt = at
      return m
    }
    const b = this.base.byName.get(name)
    if (b === undefined) return undefined
    this.overlay.set(b.name, { record: undefined, heardAt: at })
    return b
  }

  /** When we last heard from `name` (as given to `noteHeard`), or undefined. */
  heardAt(name: string): number | undefined {
    const h = this.overlay.get(name)?.heardAt
    return h === undefined || h < 0 ? undefined : h
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
      if (o === undefined || o.record === undefined) yield b
      else if (o.record !== null) yield o.record
    }
    for (const name of this.added) {
      const o = this.overlay.get(name)
      if (o !== undefined && o.record != null) yield o.record
    }
  }
}
