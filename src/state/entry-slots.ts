import { type Entry, hashEntryInto } from './entry.js'

/**
 * Slots at first; the slot arrays double as they fill. Small, because a
 * simulator holds one table per node (10,000 nodes of mostly empty state).
 */
const INITIAL_CAPACITY = 8
/** Key table positions at first (a power of two); doubles past half full. */
export const INITIAL_TABLE = 16

/**
 * A key's 32-bit table hash, as a signed integer (the table is an Int32Array):
 * one lane of murmur3 over the UTF-16 code units, two per round, then its
 * finaliser. It never leaves this node, so it can be this cheap; the 64-bit
 * entry hashes that peers compare are `hashEntryInto`'s.
 */
export function keyHashOf(key: string): number {
  const n = key.length
  let h = 0x2f0b5a1d ^ n
  let i = 0
  for (; i + 1 < n; i += 2) {
    let k = Math.imul(key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16), 0xcc9e2d51)
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
    h ^= k
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0
  }
  if (i < n) {
    let k = Math.imul(key.charCodeAt(i), 0xcc9e2d51)
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
    h ^= k
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}

/**
 * The stored entries of one node, one slot per key, with the bookkeeping a
 * merge needs (the two fingerprint hashes and the live flag) in typed arrays
 * indexed by slot number.
 *
 * Why arrays and not an object per entry: a 32-bit hash does not fit V8's
 * 31-bit small integers, so an object field holding one is a boxed number,
 * and a per-entry object with four hashes meant five allocations per merge,
 * all of them retained (copied by the young-generation collector, then
 * promoted). Here a merge allocates nothing but amortised array growth, and
 * an overwrite reuses the key's slot.
 *
 * Why an own key table and not a `Map`: at a million keys a `Map` lookup
 * that misses walks a bucket chain through scattered entries and reads each
 * candidate key's string header to compare hashes, several cache misses per
 * merge (it was the largest single cost of merging new keys). The table here
 * is open addressing with linear probing over (hash, slot) pairs in one
 * Int32Array: a miss usually costs one cache line, and a key string is read
 * only when its 32-bit hash matches. Deletion shifts later pairs back, so
 * there are no deletion markers and probes stay short.
 *
 * Invariants:
 * - The key table holds exactly one pair (hash of k, s + 1) for each stored
 *   key k, where `entryAt[s]` is k's entry, reachable from position
 *   hash & mask without crossing an empty position; every slot number not in
 *   the table is on the free list with `entryAt[s]` undefined. The table is
 *   at most half full.
 * - An entry object is current (stored) exactly when `isCurrent` says so:
 *   other structures (origin logs, expiry and collection queues) hold entry
 *   objects and drop the ones that were replaced or removed lazily, by that
 *   identity test, which a slot number reused by another key cannot fool.
 */
export class EntrySlots {
  /** Pairs (key hash, slot + 1); slot + 1 = 0 marks an empty position. */
  private table = new Int32Array(2 * INITIAL_TABLE)
  private mask = INITIAL_TABLE - 1
  private count = 0
  private readonly entryAt: (Entry | undefined)[] = []
  /** vHi, vLo, cHi, cLo per slot (see `hashEntryInto`). */
  private hashes = new Uint32Array(4 * INITIAL_CAPACITY)
  private liveFlags = new Uint8Array(INITIAL_CAPACITY)
  private readonly free: number[] = []
  /** The last key looked up and its hash: a merge looks a key up, then inserts it. */
  private lastKey: string | undefined
  private lastHash = 0

  get size(): number {
    return this.count
  }

  slotOf(key: string): number | undefined {
    const table = this.table
    const at = 2 * this.positionOf(key, this.hashOf(key)) + 1
    return table[at] === 0 ? undefined : table[at]! - 1
  }

  private hashOf(key: string): number {
    if (key !== this.lastKey) {
      this.lastKey = key
      this.lastHash = keyHashOf(key)
    }
    return this.lastHash
  }

  /** The table position holding `key`, or the empty position where it would go. */
  private positionOf(key: string, hash: number): number {
    const table = this.table
    const mask = this.mask
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slotPlus1 = table[2 * i + 1]!
      if (slotPlus1 === 0) return i
      if (table[2 * i] === hash && this.entryAt[slotPlus1 - 1]!.key === key) return i
    }
  }

  /** The entry in a slot that `slotOf` returned. */
  entryIn(slot: number): Entry {
    return this.entryAt[slot]!
  }

  /** Whether `entry` (this very object) is the one stored for its key. */
  isCurrent(entry: Entry): boolean {
    const slot = this.slotOf(entry.key)
    return slot !== undefined && this.entryAt[slot] === entry
  }

  /** Stores the entry of a key not held yet, not live; returns its slot. */
  insert(entry: Entry): number {
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.entryAt.length
      if (slot === this.liveFlags.length) this.grow()
      this.entryAt.push(entry)
    } else {
      this.entryAt[slot] = entry
    }
    const hash = this.hashOf(entry.key)
    hashEntryInto(entry, this.hashes, 4 * slot, hash)
    this.liveFlags[slot] = 0
    if (2 * (this.count + 1) > this.mask + 1) this.growTable()
    const at = this.positionOf(entry.key, hash)
    this.table[2 * at] = hash
    this.table[2 * at + 1] = slot + 1
    this.count++
    return slot
  }

  /** Puts a newer entry of the same key into its slot, not live. */
  replace(slot: number, entry: Entry): void {
    this.entryAt[slot] = entry
    hashEntryInto(entry, this.hashes, 4 * slot, this.hashOf(entry.key))
    this.liveFlags[slot] = 0
  }

  /** Frees the slot of a key. */
  remove(slot: number): void {
    const entry = this.entryAt[slot]!
    this.deleteAt(this.positionOf(entry.key, this.hashOf(entry.key)))
    this.count--
    this.entryAt[slot] = undefined
    this.liveFlags[slot] = 0
    this.free.push(slot)
  }

  /**
   * Empties table position `hole` and moves back any later pair of the same
   * probe run that could not be found past the hole (backward-shift deletion
   * for linear probing), so every key stays reachable from its home position
   * without passing an empty one.
   */
  private deleteAt(hole: number): void {
    const table = this.table
    const mask = this.mask
    for (let i = (hole + 1) & mask; table[2 * i + 1] !== 0; i = (i + 1) & mask) {
      const home = table[2 * i]! & mask
      // The pair at i may move to the hole when its home is not in the
      // cyclic range (hole, i]: then the hole lies on its probe path.
      const homeInRange = hole <= i ? hole < home && home <= i : hole < home || home <= i
      if (homeInRange) continue
      table[2 * hole] = table[2 * i]!
      table[2 * hole + 1] = table[2 * i + 1]!
      hole = i
    }
    table[2 * hole] = 0
    table[2 * hole + 1] = 0
  }

  isLive(slot: number): boolean {
    return this.liveFlags[slot] === 1
  }

  setLive(slot: number, live: boolean): void {
    this.liveFlags[slot] = live ? 1 : 0
  }

  versionHi(slot: number): number {
    return this.hashes[4 * slot]!
  }

  versionLo(slot: number): number {
    return this.hashes[4 * slot + 1]!
  }

  contentHi(slot: number): number {
    return this.hashes[4 * slot + 2]!
  }

  contentLo(slot: number): number {
    return this.hashes[4 * slot + 3]!
  }

  /** Key and slot of every stored entry, in slot order (the iteration must not interleave with changes). */
  *slots(): Generator<[string, number]> {
    const entryAt = this.entryAt
    for (let slot = 0; slot < entryAt.length; slot++) {
      const entry = entryAt[slot]
      if (entry !== undefined) yield [entry.key, slot]
    }
  }

  private growTable(): void {
    const old = this.table
    const size = 2 * (this.mask + 1)
    const table = new Int32Array(2 * size)
    const mask = size - 1
    for (let j = 0; j < old.length; j += 2) {
      if (old[j + 1] === 0) continue
      let i = old[j]! & mask
      while (table[2 * i + 1] !== 0) i = (i + 1) & mask
      table[2 * i] = old[j]!
      table[2 * i + 1] = old[j + 1]!
    }
    this.table = table
    this.mask = mask
  }

  private grow(): void {
    const capacity = this.liveFlags.length * 2
    const hashes = new Uint32Array(4 * capacity)
    hashes.set(this.hashes)
    this.hashes = hashes
    const live = new Uint8Array(capacity)
    live.set(this.liveFlags)
    this.liveFlags = live
  }
}
