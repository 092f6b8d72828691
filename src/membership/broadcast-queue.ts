import { type MemberUpdate, MemberStatus } from './member.js'
import { updateSize } from '../codec/member-codec.js'
import { MAX_PIGGYBACK_UPDATES } from '../codec/messages.js'

/** Queue key of a member's own claims; a suspicion's key appends the accuser (the length prefix keeps them apart). */
function memberKey(name: string): string {
  return `${name.length}:${name}`
}

interface Queued {
  readonly update: MemberUpdate
  /** Times it has been sent; it is dropped at the limit. */
  transmits: number
  /** Insertion order, to break ties newest first. */
  readonly seq: number
}

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
 */
export class BroadcastQueue {
  private items = new Map<string, Queued>()
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
      if (other !== undefined) this.items.delete(own)
      this.items.set(`${own}${u.by}`, { update: u, transmits: 0, seq: this.seq++ })
      return
    }
    for (const [k, q] of this.items) {
      if (q.update.name === u.name && k !== own && q.update.incarnation <= u.incarnation) this.items.delete(k)
    }
    this.items.set(own, { update: u, transmits: 0, seq: this.seq++ })
  }

  /**
   * Updates that fit in `budget` bytes (and the per-message count limit the
   * receiver enforces), fewest transmissions first (newest first among
   * equals), each counted as sent once more.
   */
  take(budget: number, limit: number): MemberUpdate[] {
    if (this.items.size === 0 || budget <= 0) return []
    const all = [...this.items.entries()].sort((a, b) => a[1].transmits - b[1].transmits || b[1].seq - a[1].seq)
    const out: MemberUpdate[] = []
    let used = 0
    for (const [key, q] of all) {
      if (out.length >= MAX_PIGGYBACK_UPDATES) break
      const size = updateSize(q.update)
      if (used + size > budget) continue
      used += size
      out.push(q.update)
      q.transmits++
      if (q.transmits >= limit) this.items.delete(key)
    }
    return out
  }

  /** Whether an update about `name` (any claim) is still queued. */
  has(name: string): boolean {
    for (const q of this.items.values()) if (q.update.name === name) return true
    return false
  }

  clear(): void {
    this.items.clear()
  }
}
