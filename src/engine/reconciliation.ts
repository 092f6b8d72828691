/**
 * Scuttlebutt anti-entropy (van Renesse et al., "Efficient Reconciliation and
 * Flow Control for Anti-Entropy Protocols", 2008), adapted to one cluster-wide
 * key space: entries are grouped by the origin that wrote them, a digest is a
 * watermark per origin, and a delta carries, per origin, the entries above the
 * peer's watermark in timestamp order. Cutting a delta anywhere leaves a valid
 * prefix per origin, so a delta cut at the packet limit is simply continued in
 * a later round.
 *
 * These are pure functions over `ClusterState`; the engine decides when to
 * call them and what to send.
 */
import type { DigestPage, Segment } from '../codec/messages.js'
import { digestRowSize, entryBodySize, pageSizeOverhead, segmentOverhead } from '../codec/messages.js'
import { type ClusterState, MergeOutcome } from '../state/cluster-state.js'
import type { Entry } from '../state/entry.js'
import { type Random, randomInt } from '../util/random.js'

/**
 * The index spans of the sorted origins inside a page's range. A range runs
 * from `start` along the name order to `end` (exclusive) and wraps around
 * past the last name: `end` undefined stops at the last origin without
 * wrapping; `end <= start` wraps (`end === start`: the whole circle).
 */
export function rangeSpans(sorted: readonly string[], start: string, end: string | undefined): [number, number][] {
  const from = lowerBound(sorted, start)
  if (end === undefined) return [[from, sorted.length]]
  if (end > start) return [[from, lowerBound(sorted, end)]]
  return [
    [from, sorted.length],
    [0, Math.min(lowerBound(sorted, end), from)],
  ]
}

/** Index of the first origin >= `start` in the sorted list. */
function lowerBound(sorted: readonly string[], start: string): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid]! < start) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * Our digest for the range from `start` (at most up to `end`), cut to
 * `budget` bytes: the page's end is then the first origin left out, so the
 * page still says exactly which origins it covers.
 */
export function digestPage(state: ClusterState, start: string, end: string | undefined, budget: number): DigestPage {
  const origins = state.origins()
  const rows = new Map<string, number>()
  let used = pageSizeOverhead(start, end)
  for (const [from, to] of rangeSpans(origins, start, end)) {
    for (let i = from; i < to; i++) {
      const o = origins[i]!
      const wm = state.watermark(o)
      const size = digestRowSize(o, wm)
      // Reserve room for the end bound we would have to add when cutting here.
      if (used + size + digestRowSize(o, 0) > budget) return { start, end: o, rows }
      rows.set(o, wm)
      used += size
    }
  }
  return { start, end, rows }
}

/**
 * A digest page to open a reconciliation: the whole circle of origin names
 * from `startAt` (whether we hold that origin or not), cut to the budget;
 * without it, all origins if they fit, else a window starting at a random
 * origin and wrapping around, so every origin is equally likely to be
 * covered. The peer answers for the same range, from its start: where the
 * range starts decides what a peer with more origins than fit its half of
 * the answer covers.
 */
export function openingDigestPage(state: ClusterState, budget: number, random: Random, startAt?: string): DigestPage {
  if (startAt !== undefined) return digestPage(state, startAt, startAt, budget)
  const full = digestPage(state, '', undefined, budget)
  if (full.end === undefined) return full
  const origins = state.origins()
  const start = origins[randomInt(random, origins.length)]!
  return digestPage(state, start, start, budget)
}

/** The indices of our origins inside a page's range, in range order. */
function indicesInRange(origins: readonly string[], page: DigestPage): number[] {
  const out: number[] = []
  for (const [from, to] of rangeSpans(origins, page.start, page.end)) for (let i = from; i < to; i++) out.push(i)
  return out
}

/**
 * Whether the peer is behind our tombstone-collection horizon for some origin
 * in its page: it has not seen a write of that origin that we have already
 * collected (a tombstone, or an expired entry), so it may hold a value that
 * write deleted. Such a peer must be reset by a full transfer, not patched.
 */
export function isBehindHorizon(state: ClusterState, page: DigestPage): boolean {
  const origins = state.origins()
  for (const i of indicesInRange(origins, page)) {
    const o = origins[i]!
    const floor = state.gcFloor(o)
    if (floor > 0 && (page.rows.get(o) ?? 0) < floor) return true
  }
  return false
}

export interface Delta {
  readonly segments: Segment[]
  /** Encoded size of the segments (without the count prefix). */
  readonly bytes: number
  /** Some needed entries did not fit the budget. */
  readonly truncated: boolean
  /** The budget was too small for even one needed entry (a value larger than a datagram). */
  readonly blockedByLargeEntry: boolean
  readonly entryCount: number
}

/**
 * What the peer lacks among the origins of its page, within `budget` bytes.
 * Origins are visited from a random one onwards so that a cut delta does not
 * starve the same origins round after round.
 *
 * `upTo` of a segment is the watermark we vouch for: our own watermark when
 * the segment holds all our entries above the peer's, else the last entry sent
 * (never above our watermark: entries we hold beyond it came by eager push and
 * prove nothing about what lies between).
 */
export function deltaFor(state: ClusterState, page: DigestPage, budget: number, random: Random): Delta {
  const origins = state.origins()
  const inPage = indicesInRange(origins, page)
  const n = inPage.length
  const segments: Segment[] = []
  let used = 0
  let truncated = false
  let blocked = false
  let entryCount = 0
  if (n <= 0) return { segments, bytes: 0, truncated, blockedByLargeEntry: false, entryCount }
  const offset = randomInt(random, n)
  for (let k = 0; k < n && !truncated; k++) {
    const origin = origins[inPage[(offset + k) % n]!]!
    const peerWm = page.rows.get(origin) ?? 0
    const ourWm = state.watermark(origin)
    const entries: Entry[] = []
    const overhead = segmentOverhead(origin, ourWm)
    if (used + overhead > budget) {
      truncated = true
      break
    }
    let segUsed = overhead
    // Only what can fit is read: every entry takes at least MIN_ENTRY_BODY_BYTES. Reading them all
    // cost O(entries of the origin) per answer, and a 60-byte Digest claiming watermark 0 for every
    // origin made a node read its whole state for one datagram (the hostile soak slowed to a crawl).
    const cap = Math.floor((budget - used) / MIN_ENTRY_BODY_BYTES) + 1
    const all: Entry[] = []
    for (const e of state.entriesAfter(origin, peerWm)) {
      all.push(e)
      if (all.length > cap) break
    }
    // Entries beyond our watermark came to us by push: they are sent
    // unvouched (upTo stays at our watermark), so they need not follow the
    // vouched ones contiguously.
    let firstUnvouched = all.findIndex((e) => e.ts > ourWm)
    if (firstUnvouched < 0) firstUnvouched = all.length
    let i = 0
    let cut = false
    let skipped = false
    for (; i < all.length; i++) {
      if (i === firstUnvouched && !skipped && all.length - i > 1 && used + segUsed + sizeOf(all, i) > budget) {
        // The unvouched entries do not all fit: start them at a random one,
        // so a small budget does not resend the same first ones every round.
        skipped = true
        i += randomInt(random, all.length - i)
        if (i >= all.length) break
      }
      const size = entryBodySize(all[i]!)
      if (used + segUsed + size <= budget) {
        entries.push(all[i]!)
        segUsed += size
        continue
      }
      cut = true
      if (entries.length === 0 && segUsed + size > budget) blocked = true
      break
    }
    if (cut || skipped) truncated = true
    // Every vouched entry went unless the cut fell among them.
    let upTo = !cut || i >= firstUnvouched ? ourWm : Math.min(entries[entries.length - 1]?.ts ?? 0, ourWm)
    if (upTo <= peerWm) upTo = 0
    if (entries.length === 0 && upTo === 0) continue
    segments.push({ origin, upTo, entries })
    used += segUsed
    entryCount += entries.length
  }
  return { segments, bytes: used, truncated, blockedByLargeEntry: blocked, entryCount }
}

/** Encoded size of the entries from index `from` on. */
/** The smallest encoded entry: a one-byte key with its length, a one-byte timestamp, the flags. */
const MIN_ENTRY_BODY_BYTES = 4

function sizeOf(entries: readonly Entry[], from: number): number {
  let n = 0
  for (let i = from; i < entries.length; i++) n += entryBodySize(entries[i]!)
  return n
}

export interface ApplyResult {
  applied: number
  /** Entries refused for a timestamp beyond our clock plus the allowed drift. */
  refused: number
  /** Entries refused as possibly deleted by a tombstone collected here (see `isBeyondHorizon`). */
  beyondHorizon: number
  /** `upTo` claims not believed: beyond our clock plus the allowed drift. */
  claimsRefused: number
}

/**
 * Applies segments in order. Entries at or below our watermark of their
 * origin are skipped (see the invariant in `ClusterState`: such a write is
 * held here or was superseded). Refused are entries with ts above `maxTs` (our
 * clock plus the allowed drift), and entries that `isBeyondHorizon` flags:
 * older than the tombstone retention, for a key we hold nothing of. Such an
 * entry may be a value whose tombstone we already collected; only a full
 * transfer, which proves the sender is not behind our horizon, may bring it.
 * A refused entry ends its segment without raising the watermark: what
 * follows it was not validated, so the origin's prefix stops there.
 */
export function applySegments(
  state: ClusterState,
  segments: readonly Segment[],
  nowMs: number,
  maxTs: number,
  isBeyondHorizon: (e: Entry) => boolean,
  onAccepted: (e: Entry) => void,
  source?: string,
  /**
   * How far to believe a segment's `upTo` given the newest entry it carries
   * (see GossipEngine.claimBeliever); undefined: in full. Beyond `maxTs` it
   * is never believed. A claim believed less than in full counts as refused.
   */
  believedClaim?: (origin: string, claim: number, newestCarried: number) => number,
  /** The highest watermark a claim may raise ours to (our clock: see GossipEngine.claimCap); a silent limit, not a refusal. */
  claimCap = Number.MAX_SAFE_INTEGER,
): ApplyResult {
  const result = { applied: 0, refused: 0, beyondHorizon: 0, claimsRefused: 0 }
  for (const seg of segments) {
    let ok = true
    let prevTs = 0
    const covered = state.watermark(seg.origin)
    for (const e of seg.entries) {
      // Entries of a segment rise. Equal timestamps cannot come from an honest origin (its clock
      // is strictly monotonic) but break no prefix either; cutting there would let one forged
      // twin stall that origin's anti-entropy for good, so only a falling one cuts.
      if (e.ts < prevTs || e.ts > maxTs) {
        ok = false
        result.refused++
        break
      }
      prevTs = e.ts
      // Covered by our watermark (it rose since we sent our digest): held, or
      // superseded, perhaps by a tombstone since collected. Taking it could
      // only resurrect, so it is skipped.
      if (e.ts <= covered) continue
      if (isBeyondHorizon(e)) {
        ok = false
        result.beyondHorizon++
        break
      }
      onAccepted(e)
      if (state.merge(e, nowMs, source) === MergeOutcome.Applied) result.applied++
    }
    // upTo may lie below the last entry: entries beyond the sender's watermark came to it by push and are sent unvouched.
    if (!ok || seg.upTo === 0 || seg.upTo <= state.watermark(seg.origin)) continue
    // No honest peer has seen a write from beyond our clock plus the drift.
    if (seg.upTo > maxTs) {
      result.claimsRefused++
      continue
    }
    const believed = believedClaim === undefined ? seg.upTo : believedClaim(seg.origin, seg.upTo, prevTs)
    if (believed < seg.upTo) result.claimsRefused++
    if (believed > 0) state.raiseWatermark(seg.origin, Math.min(believed, claimCap))
  }
  return result
}
