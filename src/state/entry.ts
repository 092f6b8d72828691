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

export function isTombstone(e: Entry): boolean {
  return e.value === undefined
}

export function isLiveAt(e: Entry, nowMs: number): boolean {
  return e.value !== undefined && (e.expiresAt === undefined || nowMs < e.expiresAt)
}

/** Fingerprint of a write's identity: two replicas holding the same version of a key hold the same write. */
export function versionHash(e: Entry): [number, number] {
  return new Hash64().string(e.key).number(e.ts).string(e.origin).digest()
}

/** Fingerprint of a live entry's content, for `stateHash`. */
export function contentHash(e: Entry): [number, number] {
  const h = new Hash64().string(e.key).number(e.ts).string(e.origin)
  const v = e.value
  if (typeof v === 'string') h.number(1).string(v)
  else if (v !== undefined) h.number(2).bytes(v)
  h.number(e.expiresAt ?? 0)
  return h.digest()
}

export function valuesEqual(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined) return false
  if (typeof a === 'string' || typeof b === 'string') return false
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
