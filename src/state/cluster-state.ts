import { MinHeap } from '../util/heap.js'
import { Hash64, SetFingerprint } from '../util/hash.js'
import { physicalMsOf } from './hlc.js'
import { type Entry, type EntryHashes, type Value, type Version, compareVersions, hashEntry, isLiveAt } from './entry.js'

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

/** Per-stored-entry bookkeeping kept beside the immutable entry. */
interface Slot extends EntryHashes {
  readonly entry: Entry
  /** Whether the entry is counted in the live fingerprint (live and not yet expired by `advance`). */
  live: boolean
}

/**
 * Entries of one origin, kept in timestamp order for Scuttlebutt deltas.
 * Superseded entries are removed lazily: an item is current only while the
 * map still holds that very slot for its key.
 */
class OriginLog {
  slots: Slot[] = []
  sorted = true
  stale = 0

  add(slot: Slot): void {
    const last = this.slots[this.slots.length - 1]
    if (last !== undefined && last.entry.ts > slot.entry.ts) this.sorted = false
    this.slots.push(slot)
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
 */
export class ClusterState {
  private readonly entries = new Map<string, Slot>()
  private readonly logs = new Map<string, OriginLog>()
  private readonly watermarks = new Map<string, number>()
  private readonly gcFloors = new Map<string, number>()
  private sortedOrigins: string[] | undefined
  private readonly expiryQueue = new MinHeap<Slot>()
  private readonly collectQueue = new MinHeap<Slot>()
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
    return this.entries.size
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
    return this.entries.get(key)?.entry
  }

  /** The live entry for a key at `nowMs`, if any. */
  get(key: string, nowMs: number): Entry | undefined {
    const slot = this.entries.get(key)
    return slot !== undefined && isLiveAt(slot.entry, nowMs) ? slot.entry : undefined
  }

  /** Live entries at `nowMs`, optionally under a key prefix, in key order. */
  liveEntries(nowMs: number, prefix = ''): Entry[] {
    const out: Entry[] = []
    for (const [key, slot] of this.entries) {
      if (key.startsWith(prefix) && isLiveAt(slot.entry, nowMs)) out.push(slot.entry)
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  /** Every stored entry, tombstones included (for full transfers). */
  allEntries(): IterableIterator<Entry> {
    const it = this.entries.values()
    return (function* () {
      for (const slot of it) yield slot.entry
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
    const prev = this.entries.get(entry.key)
    if (prev !== undefined && compareVersions(prev.entry, entry) >= 0) return MergeOutcome.Stale
    // An entry that is already due for collection carries no information a
    // peer still needs, and storing it could resurrect nothing: but it must
    // still win over an older live value, so it is stored and collected soon.
    const slot: Slot = { entry, live: false, vHi: 0, vLo: 0, cHi: 0, cLo: 0 }
    hashEntry(entry, slot)
    let previous: StateChange['previous']
    if (prev !== undefined) {
      if (prev.live) previous = { value: prev.entry.value!, version: prev.entry }
      this.unlink(prev)
    }
    this.entries.set(entry.key, slot)
    this.syncFp.toggle(slot.vHi, slot.vLo)
    let log = this.logs.get(entry.origin)
    if (log === undefined) {
      log = new OriginLog()
      this.logs.set(entry.origin, log)
      this.sortedOrigins = undefined
    }
    log.add(slot)
    if (isLiveAt(entry, Math.max(nowMs, this.advancedTo))) {
      slot.live = true
      this.liveFp.toggle(slot.cHi, slot.cLo)
      this.liveCount++
      if (entry.expiresAt !== undefined) this.expiryQueue.push(entry.expiresAt, slot)
    } else {
      this.tombstoneCount++
      this.collectQueue.push(this.collectDueMs(entry), slot)
    }
    if (slot.live || previous !== undefined) {
      this.pendingChanges.push({
        key: entry.key,
        value: slot.live ? entry.value : undefined,
        version: entry,
        expiresAt: entry.expiresAt,
        previous,
        source,
      })
    }
    return MergeOutcome.Applied
  }

  /** Removes a slot from the map's accounting (the caller replaces or deletes it). */
  private unlink(slot: Slot): void {
    this.syncFp.toggle(slot.vHi, slot.vLo)
    if (slot.live) {
      this.liveFp.toggle(slot.cHi, slot.cLo)
      this.liveCount--
      slot.live = false
    } else {
      this.tombstoneCount--
    }
    const log = this.logs.get(slot.entry.origin)
    if (log !== undefined) {
      log.stale++
      if (log.stale > 32 && log.stale * 2 > log.slots.length) this.compact(slot.entry.origin, log)
    }
  }

  private compact(origin: string, log: OriginLog): void {
    log.slots = log.slots.filter((s) => this.entries.get(s.entry.key) === s)
    log.stale = 0
    if (log.slots.length === 0) {
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
      const slot = this.expiryQueue.pop()!
      if (this.entries.get(slot.entry.key) !== slot || !slot.live) continue
      this.liveFp.toggle(slot.cHi, slot.cLo)
      slot.live = false
      this.liveCount--
      this.tombstoneCount++
      this.collectQueue.push(this.collectDueMs(slot.entry), slot)
      this.pendingChanges.push({
        key: slot.entry.key,
        value: undefined,
        version: { ts: slot.entry.ts, origin: slot.entry.origin },
        expiresAt: slot.entry.expiresAt,
        previous: { value: slot.entry.value!, version: slot.entry },
        source: undefined,
      })
    }
    for (;;) {
      const due = this.collectQueue.peekPriority()
      if (due === undefined || due > nowMs) break
      const slot = this.collectQueue.pop()!
      if (this.entries.get(slot.entry.key) !== slot) continue
      if (slot.entry.ts > this.watermark(slot.entry.origin)) {
        // Came out of order (an eager push): keep it until anti-entropy fills
        // the gap below it, so the gc floor stays under the watermark.
        this.collectQueue.push(nowMs + Math.max(COLLECT_RECHECK_MS, this.tombstoneRetentionMs / 10), slot)
        continue
      }
      this.entries.delete(slot.entry.key)
      this.unlink(slot)
      this.raiseGcFloor(slot.entry.origin, slot.entry.ts)
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

  takeChanges(): StateChange[] {
    if (this.pendingChanges.length === 0) return []
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
      log.slots = log.slots.filter((s) => this.entries.get(s.entry.key) === s)
      log.slots.sort((a, b) => a.entry.ts - b.entry.ts)
      log.sorted = true
      log.stale = 0
    }
    const slots = log.slots
    // Binary search for the first slot after afterTs.
    let lo = 0
    let hi = slots.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (slots[mid]!.entry.ts <= afterTs) lo = mid + 1
      else hi = mid
    }
    for (let i = lo; i < slots.length; i++) {
      const s = slots[i]!
      if (this.entries.get(s.entry.key) === s) yield s.entry
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
    const incoming = peerEntries.filter((e) => this.entries.has(e.key) || e.ts > this.watermark(e.origin))
    for (const [key, slot] of [...this.entries]) {
      const e = slot.entry
      if (peerKeys.has(key)) continue
      if (e.ts <= (peerWatermarks.get(e.origin) ?? 0)) {
        if (slot.live) {
          this.pendingChanges.push({
            key,
            value: undefined,
            version: { ts: e.ts, origin: e.origin },
            expiresAt: e.expiresAt,
            previous: { value: e.value!, version: e },
            source,
          })
        }
        this.entries.delete(key)
        this.unlink(slot)
      }
    }
    for (const e of incoming) this.merge(e, nowMs, source)
    for (const [o, ts] of peerGcFloors) this.raiseGcFloor(o, ts)
    for (const [o, ts] of peerWatermarks) this.raiseWatermark(o, ts)
  }
}
