import { type MemberUpdate, MemberStatus } from './member.js'
import { updateSize } from '../codec/member-codec.js'
import { MAX_PIGGYBACK_UPDATES } from '../codec/messages.js'
import { MinHeap } from '../util/heap.js'

/** Queue key of a member's own claims; a suspicion's key appends the accuser (the length prefix keeps them apart). */
function memberKey(name: string): string {
  return `${name.length}:${name}`
}

interface Queued {
  readonly key: string
  readonly update: MemberUpdate
  /** Times it has been sent; it is dropped at the limit. */
  transmits: number
  /** Insertion order, to break ties newest first. */
  readonly seq: number
}

/** Spacing of transmit counts in the heap priority: room for 2^40 insertions, newest first within a count. */
const SEQ_SPAN = 2 ** 40
/** Updates that did not fit a message's remaining budget before `take` stops looking further. */
const MAX_SKIPPED_PER_TAKE = 64

/**
 * Membership updates waiting to ride on outgoing messages (memberlist's
 * TransmitLimitedQueue). Each is sent at most `limit` times, where the
 * caller scales `limit` with log(N): enough for an epidemic to reach every
 * node with high probability, after which it stops costing bytes.
 *
 * Invariants: at most one queued update per member for alive, dead and left
 * claims, and one per (member, accuser) for suspicions, since each
 * accuser's suspicion is an independent confirmation. A newer claim about a
 * member replaces every older queued claim about it.
 *
 * Cost: O(log n) per enqueue and per update taken, whatever the queue holds
 * (a flood of made-up members must not make every message sort the queue).
 * The order, fewest transmissions first and newest first among equals, is a
 * heap with lazy deletion: a replaced or re-filed item leaves a stale slot
 * behind, skipped when popped, and the heap is rebuilt when stale slots
 * outnumber live ones.
 */
export class BroadcastQueue {
  private readonly items = new Map<string, Queued>()
  /** The keys of the queued claims about each member (its own key, and one per accuser). */
  private readonly byName = new Map<string, Set<string>>()
  /** Items filed under priority(q) at filing time; a slot whose item was removed or re-filed since is stale. */
  private heap = new MinHeap<Queued>()
  private seq = 0

  get size(): number {
    return this.items.size
  }

  enqueue(u: MemberUpdate): void {
    const own = memberKey(u.name)
    if (u.status === MemberStatus.Suspect) {
      // Stale if a higher claim (record order: incarnation, then status) is queued; an alive claim at the same incarnation is not.
      const other = this.items.get(own)
      if (other !== undefined && (other.update.incarnation > u.incarnation || (other.update.incarnation === u.incarnation && other.update.status > u.status))) return
      if (other !== undefined) this.remove(other)
      this.insert(`${own}${u.by}`, u)
      return
    }
    const keys = this.byName.get(u.name)
    if (keys !== undefined) {
      for (const k of [...keys]) {
        const q = this.items.get(k)!
        if (k !== own && q.update.incarnation <= u.incarnation) this.remove(q)
      }
    }
    this.insert(own, u)
  }

  private insert(key: string, update: MemberUpdate): void {
    const old = this.items.get(key)
    if (old !== undefined) this.remove(old)
    const q: Queued = { key, update, transmits: 0, seq: this.seq++ }
    this.items.set(key, q)
    let keys = this.byName.get(update.name)
    if (keys === undefined) this.byName.set(update.name, (keys = new Set()))
    keys.add(key)
    this.file(q)
  }

  private file(q: Queued): void {
    this.heap.push(priority(q), q)
  }

  private remove(q: Queued): void {
    this.items.delete(q.key)
    const keys = this.byName.get(q.update.name)
    keys?.delete(q.key)
    if (keys?.size === 0) this.byName.delete(q.update.name)
    // Its heap slot goes stale; rebuild once stale slots dominate.
    if (this.heap.size > 2 * this.items.size + 64) this.rebuild()
  }

  private rebuild(): void {
    this.heap = new MinHeap<Queued>()
    for (const q of this.items.values()) this.file(q)
  }

  /**
   * Updates that fit in `budget` bytes (and the per-message count limit the
   * receiver enforces), fewest transmissions first (newest first among
   * equals), each counted as sent once more.
   */
  take(budget: number, limit: number): MemberUpdate[] {
    if (this.items.size === 0 || budget <= 0) return []
    const out: MemberUpdate[] = []
    const skipped: Queued[] = []
    const sent: Queued[] = []
    let used = 0
    while (out.length < MAX_PIGGYBACK_UPDATES && skipped.length < MAX_SKIPPED_PER_TAKE) {
      const filedAt = this.heap.peekPriority()
      const q = this.heap.pop()
      if (q === undefined) break
      // Stale: removed, replaced, or re-filed under another transmit count since.
      if (this.items.get(q.key) !== q || filedAt !== priority(q)) continue
      const size = updateSize(q.update)
      if (used + size > budget) {
        skipped.push(q)
        continue
      }
      used += size
      out.push(q.update)
      // Counted at once: any other slot of this item is now stale, so it is never taken twice.
      q.transmits++
      sent.push(q)
    }
    for (const q of skipped) this.file(q)
    for (const q of sent) {
      if (q.transmits >= limit) this.remove(q)
      else this.file(q)
    }
    return out
  }

  /** Whether an update about `name` (any claim) is still queued. */
  has(name: string): boolean {
    return this.byName.has(name)
  }

  clear(): void {
    this.items.clear()
    this.byName.clear()
    this.heap = new MinHeap<Queued>()
  }
}

/** Fewest transmissions first, newest first among equals. */
function priority(q: Queued): number {
  return q.transmits * SEQ_SPAN - q.seq
}
