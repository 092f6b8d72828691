import { Hash64 } from '../util/hash.js'

/** A member's status as one node sees it. */
export enum MemberStatus {
  Alive = 0,
  /** A prober failed to reach it; it may refute with a higher incarnation. */
  Suspect = 1,
  /** Declared dead after a suspicion timed out. */
  Dead = 2,
  /** Announced a graceful departure. */
  Left = 3,
}

export const STATUS_NAMES = ['alive', 'suspect', 'dead', 'left'] as const
export type StatusName = (typeof STATUS_NAMES)[MemberStatus]

/** Small string map a member publishes about itself (role, zone, ...). */
export type Tags = Readonly<Record<string, string>>

export const NO_TAGS: Tags = Object.freeze({})

/**
 * One member as this node knows it. Records are immutable: a change replaces
 * the record, so a table shared by many simulated nodes is never written.
 */
export interface Member {
  readonly name: string
  /** The advertised address peers reach it at. */
  readonly address: string
  /** Which run of the process this is (the real runtime: its start time in ms). */
  readonly generation: number
  /**
   * Only the member itself raises it: to refute a suspicion, to change its
   * tags, or (as a new process) to supersede its previous run.
   */
  readonly incarnation: number
  readonly status: MemberStatus
  readonly tags: Tags
  /** Local time of the last status change (reaping counts from here). */
  readonly since: number
}

/**
 * A membership claim on the wire. Alive claims carry the address,
 * generation and tags; suspect, dead and left claims carry `by`, the node
 * making the claim (the accuser, the declarer, or the leaver itself).
 */
export interface MemberUpdate {
  readonly status: MemberStatus
  readonly name: string
  readonly incarnation: number
  readonly address: string
  readonly generation: number
  readonly tags: Tags
  readonly by: string
}

export function aliveUpdate(m: Pick<Member, 'name' | 'address' | 'generation' | 'incarnation' | 'tags'>): MemberUpdate {
  return { status: MemberStatus.Alive, name: m.name, incarnation: m.incarnation, address: m.address, generation: m.generation, tags: m.tags, by: '' }
}

export function claimUpdate(status: MemberStatus, name: string, incarnation: number, by: string): MemberUpdate {
  return { status, name, incarnation, address: '', generation: 0, tags: NO_TAGS, by }
}

/** The update that describes a record as it stands (for full syncs). */
export function recordUpdate(m: Member, self: string): MemberUpdate {
  // A suspicion is this node's own doubt, not a fact to hand on in a sync:
  // suspect members travel as alive, so only accusers' timers can kill them.
  if (m.status === MemberStatus.Alive || m.status === MemberStatus.Suspect) return aliveUpdate(m)
  return { ...aliveUpdate(m), status: m.status, by: self }
}

export function tagsEqual(a: Tags, b: Tags): boolean {
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) if (a[k] !== b[k]) return false
  return true
}

/** Encoded size of tags: a count, then each key and value with a length prefix. */
export function tagsSize(tags: Tags): number {
  let n = 1
  for (const [k, v] of Object.entries(tags)) n += 2 + Buffer.byteLength(k) + Buffer.byteLength(v)
  return n
}

/**
 * The class of a status in the membership fingerprint: suspect counts as
 * alive, since suspicions are local doubts that differ between honest nodes.
 */
function fingerprintClass(status: MemberStatus): number {
  return status === MemberStatus.Suspect ? MemberStatus.Alive : status
}

const hasher = new Hash64()

/** Hash of (name, incarnation, status class): two nodes agree on a member exactly when these agree. */
export function memberHash(m: Pick<Member, 'name' | 'incarnation' | 'status'>): [number, number] {
  return hasher.reset().string(m.name).number(m.incarnation).number(fingerprintClass(m.status)).digest()
}

/**
 * How far an incarnation may lie above the wall clock (ms). A member starts
 * at its generation (its start time in ms) and raises its incarnation by one
 * per refutation or change of tags, so an honest incarnation stays within a
 * few million of the clock for years. A claim far above it is hostile: it
 * would outrun every honest record, or make its victim's refutation (one
 * more) unencodable, so it is refused (`claim-refused`). The one exception
 * is a refutation of a claim we hold, which may lie one above the ceiling of
 * an accuser whose clock runs ahead of ours (see Membership.apply).
 */
export const INCARNATION_HEADROOM = 2 ** 32

/** The highest incarnation accepted in a claim at `nowMs`. */
export function incarnationCeiling(nowMs: number): number {
  return Math.max(0, nowMs) + INCARNATION_HEADROOM
}
