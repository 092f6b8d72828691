import { MinHeap } from '../util/heap.js'
import { Hash64, SetFingerprint } from '../util/hash.js'
import { physicalMsOf } from './hlc.js'
import { type Entry, type Value, type Version, compareVersions, isLiveAt } from './entry.js'
import { EntrySlots } from './entry-slots.js'

/** Returned when nothing changed: no allocation per empty take. */
const NO_CHANGES: readonly StateChange[] = []

/**
 * How long (at least; a tenth of the retention when longer) a due tombstone
 * that the watermark does not cover yet waits before the next look: its gap
 * may never fill (a write lost with its origin), so the looks must be rare.
 */
const COLLECT_RECHECK_MS = 1000

/** The hash of one (origin, watermark) row, for the watermark fingerprint. */
function watermarkHash(origin: string, ts: number): [number, number] {
  return new Hash64().string(origin).number(ts).digest()
}

/** A visible change of a key: a new live value, or the key going away (delete or expiry). */
export interface StateChange {
  readonly key: string
  /** The new live value; undefined when the key was deleted or expired. */
  readonly value: Value | undefined
  readonly version: Version
  readonly expiresAt: number | undefined
  readonly previous: { readonly value: Value; readonly version: Version } | undefined
  /** The peer whose message brought the change; undefined for local writes, expiry and collection. */
  readonly source: string | undefined
}

/** Outcome of merging one entry. */
export enum MergeOutcome {
  /** The entry was newer than what we held and replaced it. */
  Applied,
  /** We already held this version or a newer one; nothing changed. */
  Stale,
}

/**
 * Entries of one origin, kept in timestamp order for Scuttlebutt deltas.
 * Superseded entries are removed lazily: an item is current only while the
 * slots still hold that very entry object for its key.
 */
class OriginLog {
  entries: Entry[] = []
  sorted = true
  stale = 0

  add(entry: Entry): void {
    const last = this.entries[this.entries.length - 1]
    if (last !== undefined && last.ts > entry.ts) this.sorted = false
    this.entries.push(entry)
  }
}

/**
 * The replicated key-value state of one node.
 *
 * Invariants:
 * - `entries` holds at most one entry per key: the highest version this node
 *   has seen, live or tombstone, unless that tombstone (or expired entry) was
 *   collected after `tombstoneRetentionMs`.
 * - `watermark(o)` = w means: every write of origin `o` with ts <= w is held
 *   here, or was superseded by a higher version that is held here or was
 *   collected as a tombstone. Only contiguous (prefix) knowledge advances it;
 *   entries received out of order (eager pushes) are stored without moving it.
 * - `gcFloor(o)` is the highest ts of a collected entry of origin `o`, and
 *   never exceeds `watermark(o)`: a tombstone is collected only once the
 *   watermark covers it, so "behind my floor" is provable from a digest. A
 *   peer whose watermark for `o` is below it may still hold a value that the
 *   collected tombstone deleted, so it must be reset, not patched.
 * - `syncFingerprint` is the XOR of the version hashes of all stored entries
 *   (tombstones included): equal fingerprints mean nothing to reconcile.
 * - `liveFingerprint` is the XOR of the content hashes of the live entries:
 *   it is `stateHash`.
 * - An entry's slot is live (counted in `liveFingerprint` and `liveSize`)
 *   while its value is live and `advance` has not yet passed its expiry.
 */
export class ClusterState {
  private readonly slots = new EntrySlots()
  private readonly logs = new Map<string, OriginLog>()
  private readonly watermarks = new Map<string, number>()
  private readonly gcFloors = new Map<string, number>()
  private sortedOrigins: string[] | undefined
  private readonly expiryQueue = new MinHeap<Entry>()
  private readonly collectQueue = new MinHeap<Entry>()
  private readonly syncFp = new SetFingerprint()
  private readonly liveFp = new SetFingerprint()
  private readonly watermarkFp = new SetFingerprint()
  private liveCount = 0
  private tombstoneCount = 0
  /** Time up to which expiries and collection have been processed. */
  private advancedTo = 0
  private readonly pendingChanges: StateChange[] = []

  constructor(private readonly tombstoneRetentionMs: number) {}

  get size(): number {
    return this.slots.size
  }

  get liveSize(): number {
    return this.liveCount
  }

  get tombstones(): number {
    return this.tombstoneCount
  }

  get syncFingerprint(): SetFingerprint {
    return this.syncFp
  }

  /** XOR of (origin, watermark) hashes: equal on two nodes with the same watermarks. */
  get watermarkFingerprint(): SetFingerprint {
    return this.watermarkFp
  }

  get stateHash(): string {
    return this.liveFp.toHex()
  }

  /** The stored entry for a key, live or not. */
  getEntry(key: string): Entry | undefined {
    const slot = this.slots.slotOf(key)
    return slot === undefined ? undefined : this.slots.entryIn(slot)
  }

  /** The live entry for a key at `nowMs`, if any. */
  get(key: string, nowMs: number): Entry | undefined {
    const entry = this.getEntry(key)
    return entry !== undefined && isLiveAt(entry, nowMs) ? entry : undefined
  }

  /** Live entries at `nowMs`, optionally under a key prefix, in key order. */
  liveEntries(nowMs: number, prefix = ''): Entry[] {
    const out: Entry[] = []
    for (const [key, slot] of this.slots.slots()) {
      if (!key.startsWith(prefix)) continue
      const entry = this.slots.entryIn(slot)
      if (isLiveAt(entry, nowMs)) out.push(entry)
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  /** Every stored entry, tombstones included (for full transfers). */
  allEntries(): IterableIterator<Entry> {
    const slots = this.slots
    const it = slots.slots()
    return (function* () {
      for (const [, slot] of it) yield slots.entryIn(slot)
    })()
  }

  watermark(origin: string): number {
    return this.watermarks.get(origin) ?? 0
  }

  gcFloor(origin: string): number {
    return this.gcFloors.get(origin) ?? 0
  }

  /** Raises the watermark of `origin` (never lowers it). */
  raiseWatermark(origin: string, ts: number): void {
    const old = this.watermarks.get(origin)
    if (old === undefined) {
      if (ts <= 0) return
      this.sortedOrigins = undefined
    } else {
      if (ts <= old) return
      this.watermarkFp.toggle(...watermarkHash(origin, old))
    }
    this.watermarks.set(origin, ts)
    this.watermarkFp.toggle(...watermarkHash(origin, ts))
  }

  raiseGcFloor(origin: string, ts: number): void {
    if (ts > (this.gcFloors.get(origin) ?? 0)) {
      if (!this.gcFloors.has(origin) && !this.watermarks.has(origin)) this.sortedOrigins = undefined
      this.gcFloors.set(origin, ts)
    }
  }

  /** Whether this node knows anything about `origin` (a watermark, an entry or a gc floor). */
  knowsOrigin(origin: string): boolean {
    return this.watermarks.has(origin) || this.logs.has(origin) || this.gcFloors.has(origin)
  }

  /** All origins this node knows anything about, in name order (cached). */
  origins(): readonly string[] {
    if (this.sortedOrigins === undefined) {
      const set = new Set<string>(this.watermarks.keys())
      for (const o of this.logs.keys()) set.add(o)
      for (const o of this.gcFloors.keys()) set.add(o)
      this.sortedOrigins = [...set].sort()
    }
    return this.sortedOrigins
  }

  /**
   * Merges one entry: the higher version wins (join of a semilattice, so any
   * order and duplication of merges gives the same state). Live-value changes
   * are queued for `takeChanges`.
   */
  merge(entry: Entry, nowMs: number, source?: string): MergeOutcome {
    const slots = this.slots
    let slot = slots.slotOf(entry.key)
    let previous: StateChange['previous']
    if (slot !== undefined) {
      const held = slots.entryIn(slot)
      if (compareVersions(held, entry) >= 0) return MergeOutcome.Stale
      if (slots.isLive(slot)) previous = { value: held.value!, version: held }
      this.unlink(slot)
      slots.replace(slot, entry)
    } else {
      slot = slots.insert(entry)
    }
    this.syncFp.toggle(slots.versionHi(slot), slots.versionLo(slot))
    let log = this.logs.get(entry.origin)
    if (log === undefined) {
      log = new OriginLog()
      this.logs.set(entry.origin, log)
      this.sortedOrigins = undefined
    }
    log.add(entry)
    // An entry that is already due for collection carries no information a
    // peer still needs, but it must still win over an older live value, so
    // it is stored, and collected soon.
    const live = isLiveAt(entry, Math.max(nowMs, this.advancedTo))
    if (live) {
      slots.setLive(slot, true)
      this.liveFp.toggle(slots.contentHi(slot), slots.contentLo(slot))
      this.liveCount++
      if (entry.expiresAt !== undefined) this.expiryQueue.push(entry.expiresAt, entry)
    } else {
      this.tombstoneCount++
      this.collectQueue.push(this.collectDueMs(entry), entry)
    }
    if (live || previous !== undefined) {
      this.pendingChanges.push({
        key: entry.key,
        value: live ? entry.value : undefined,
        version: entry,
        expiresAt: entry.expiresAt,
        previous,
        source,
      })
    }
    return MergeOutcome.Applied
  }

  /**
   * Takes a slot's entry out of the fingerprints, counts and origin log (the
   * caller then replaces or removes it).
   */
  private unlink(slot: number): void {
    const slots = this.slots
    this.syncFp.toggle(slots.versionHi(slot), slots.versionLo(slot))
    if (slots.isLive(slot)) {
      this.liveFp.toggle(slots.contentHi(slot), slots.contentLo(slot))
      this.liveCount--
      slots.setLive(slot, false)
    } else {
      this.tombstoneCount--
    }
    const origin = slots.entryIn(slot).origin
    const log = this.logs.get(origin)
    if (log !== undefined) {
      log.stale++
      if (log.stale > 32 && log.stale * 2 > log.entries.length) this.compact(origin, log)
    }
  }

  private compact(origin: string, log: OriginLog): void {
    log.entries = log.entries.filter((e) => this.slots.isCurrent(e))
    log.stale = 0
    if (log.entries.length === 0) {
      this.logs.delete(origin)
      this.sortedOrigins = undefined
    }
  }

  private collectDueMs(entry: Entry): number {
    const deadAt = entry.value === undefined ? physicalMsOf(entry.ts) : entry.expiresAt!
    return deadAt + this.tombstoneRetentionMs
  }

  /**
   * Processes time: live entries whose TTL passed leave the live state (a
   * change is queued), and tombstones and expired entries older than the
   * retention are collected, raising their origin's gc floor.
   */
  advance(nowMs: number): void {
    if (nowMs > this.advancedTo) this.advancedTo = nowMs
    for (;;) {
      const due = this.expiryQueue.peekPriority()
      if (due === undefined || due > nowMs) break
      const entry = this.expiryQueue.pop()!
      const slot = this.slots.slotOf(entry.key)
      if (slot === undefined || this.slots.entryIn(slot) !== entry || !this.slots.isLive(slot)) continue
      this.liveFp.toggle(this.slots.contentHi(slot), this.slots.contentLo(slot))
      this.slots.setLive(slot, false)
      this.liveCount--
      this.tombstoneCount++
      this.collectQueue.push(this.collectDueMs(entry), entry)
      this.pendingChanges.push({
        key: entry.key,
        value: undefined,
        version: { ts: entry.ts, origin: entry.origin },
        expiresAt: entry.expiresAt,
        previous: { value: entry.value!, version: entry },
        source: undefined,
      })
    }
    for (;;) {
      const due = this.collectQueue.peekPriority()
      if (due === undefined || due > nowMs) break
      const entry = this.collectQueue.pop()!
      const slot = this.slots.slotOf(entry.key)
      if (slot === undefined || this.slots.entryIn(slot) !== entry) continue
      if (entry.ts > this.watermark(entry.origin)) {
        // Came out of order (an eager push): keep it until anti-entropy fills
        // the gap below it, so the gc floor stays under the watermark.
        this.collectQueue.push(nowMs + Math.max(COLLECT_RECHECK_MS, this.tombstoneRetentionMs / 10), entry)
        continue
      }
      this.unlink(slot)
      this.slots.remove(slot)
      this.raiseGcFloor(entry.origin, entry.ts)
    }
  }

  /** The earliest time at which `advance` has work to do, if any. */
  nextDueMs(): number | undefined {
    const a = this.expiryQueue.peekPriority()
    const b = this.collectQueue.peekPriority()
    if (a === undefined) return b
    if (b === undefined) return a
    return Math.min(a, b)
  }

  takeChanges(): readonly StateChange[] {
    if (this.pendingChanges.length === 0) return NO_CHANGES
    return this.pendingChanges.splice(0)
  }

  /**
   * Current entries of `origin` with ts > `afterTs`, in ts order. The
   * iteration must not interleave with merges.
   */
  *entriesAfter(origin: string, afterTs: number): Generator<Entry> {
    const log = this.logs.get(origin)
    if (log === undefined) return
    if (!log.sorted) {
      log.entries = log.entries.filter((e) => this.slots.isCurrent(e))
      log.entries.sort((a, b) => a.ts - b.ts)
      log.sorted = true
      log.stale = 0
    }
    const entries = log.entries
    // Binary search for the first slot after afterTs.
    let lo = 0
    let hi = entries.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (entries[mid]!.ts <= afterTs) lo = mid + 1
      else hi = mid
    }
    for (let i = lo; i < entries.length; i++) {
      const e = entries[i]!
      if (this.slots.isCurrent(e)) yield e
    }
  }

  /**
   * Reset from a peer's full state (the peer judged us behind its tombstone
   * collection horizon, or we asked). Both directions of "seen and dropped"
   * are honoured:
   * - an entry of ours that the peer lacks, with ts <= the peer's watermark
   *   for its origin, is one the peer saw and then superseded or deleted and
   *   collected: it goes;
   * - an entry of the peer's for a key we lack, with ts <= our watermark for
   *   its origin, is one we saw and dropped the same way: it is not taken.
   * Everything else merges as usual; then watermarks and gc floors join.
   */
  reset(
    peerEntries: readonly Entry[],
    peerWatermarks: ReadonlyMap<string, number>,
    peerGcFloors: ReadonlyMap<string, number>,
    nowMs: number,
    source?: string,
    /** Every key the peer holds, including entries the caller refused to merge (so ours are not dropped for them). */
    peerKeys: ReadonlySet<string> = new Set(peerEntries.map((e) => e.key)),
  ): void {
    const incoming = peerEntries.filter((e) => this.slots.slotOf(e.key) !== undefined || e.ts > this.watermark(e.origin))
    // Without watermarks nothing of ours is dropped: skip the walk over every entry (a Reset
    // whose claims were all refused, as an outsider's are, cost a pass over the whole state).
    const ours = peerWatermarks.size === 0 ? [] : [...this.slots.slots()]
    for (const [key, slot] of ours) {
      const e = this.slots.entryIn(slot)
      if (peerKeys.has(key)) continue
      if (e.ts <= (peerWatermarks.get(e.origin) ?? 0)) {
        if (this.slots.isLive(slot)) {
          this.pendingChanges.push({
            key,
            value: undefined,
            version: { ts: e.ts, origin: e.origin },
            expiresAt: e.expiresAt,
            previous: { value: e.value!, version: e },
            source,
          })
        }
        this.unlink(slot)
        this.slots.remove(slot)
      }
    }
    for (const e of incoming) this.merge(e, nowMs, source)
    for (const [o, ts] of peerGcFloors) this.raiseGcFloor(o, ts)
    for (const [o, ts] of peerWatermarks) this.raiseWatermark(o, ts)
  }
}
