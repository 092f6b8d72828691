import { Hash64 } from '../util/hash.js'

/** A value is text or bytes; the distinction is preserved end to end. */
export type Value = string | Uint8Array

/**
 * A version orders all writes of the cluster: the higher `ts` wins, the origin
 * name breaks ties, so two distinct writes never compare equal and equal
 * versions always denote the same write.
 */
export interface Version {
  readonly ts: number
  readonly origin: string
}

export function compareVersions(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1
  if (a.origin === b.origin) return 0
  return a.origin < b.origin ? -1 : 1
}

/**
 * One stored entry. `value === undefined` is a tombstone. `expiresAt`
 * (absolute wall-clock ms) is part of the write, so every replica stops
 * serving the key at the same instant; after that the entry behaves as a
 * tombstone until collected.
 */
export interface Entry extends Version {
  readonly key: string
  readonly value: Value | undefined
  readonly expiresAt: number | undefined
}

export function isLiveAt(e: Entry, nowMs: number): boolean {
  return e.value !== undefined && (e.expiresAt === undefined || nowMs < e.expiresAt)
}

const hasher = new Hash64()

/**
 * Writes an entry's two fingerprint hashes into `out` at `at`: the version
 * hash (key, ts, origin: identifies the write) as out[at], out[at + 1], and
 * the content hash (the version plus value and expiry, for `stateHash`) as
 * out[at + 2], out[at + 3]. The content hash continues from the version
 * hash, and nothing is allocated.
 *
 * The key enters as its 32-bit table hash (`keyHashOf`, computed anyway to
 * find its slot), not character by character: a write is already named by
 * (ts, origin) alone, since an origin's hybrid-clock timestamps never repeat,
 * so the key adds a check, not identity. This saved a fifth of the cost of
 * merging a new key.
 */
export function hashEntryInto(e: Entry, out: Uint32Array, at: number, keyHash: number): void {
  const h = hasher.reset().int32(keyHash).number(e.ts).string(e.origin)
  out[at] = h.hi()
  out[at + 1] = h.lo()
  const v = e.value
  if (typeof v === 'string') h.number(1).string(v)
  else if (v !== undefined) h.number(2).bytes(v)
  h.number(e.expiresAt ?? 0)
  out[at + 2] = h.hi()
  out[at + 3] = h.lo()
}
