import { DecodeError } from '../errors.js'
import { type MemberUpdate, MemberStatus, NO_TAGS, type Tags } from '../membership/member.js'
import { type Reader, type Writer, stringSize, varintSize } from './bytes.js'
import type { Limits } from './limits.js'

/*
 * A member update on the wire:
 *   u8 status (0 alive, 1 suspect, 2 dead, 3 left)
 *   string name, varint incarnation
 *   alive:            string address, varint generation, tags
 *   suspect/dead/left: string by
 * Tags: varint count, then (string key, string value) pairs; the whole
 * encoding is at most `limits.maxTagsBytes`.
 */

export function tagsEncodedSize(tags: Tags): number {
  const entries = Object.entries(tags)
  let n = varintSize(entries.length)
  for (const [k, v] of entries) n += stringSize(k) + stringSize(v)
  return n
}

export function updateSize(u: MemberUpdate): number {
  let n = 1 + stringSize(u.name) + varintSize(u.incarnation)
  if (u.status === MemberStatus.Alive) n += stringSize(u.address) + varintSize(u.generation) + tagsEncodedSize(u.tags)
  else n += stringSize(u.by)
  return n
}

export function writeUpdate(w: Writer, u: MemberUpdate): void {
  w.u8(u.status).string(u.name).varint(u.incarnation)
  if (u.status === MemberStatus.Alive) {
    w.string(u.address).varint(u.generation)
    const entries = Object.entries(u.tags)
    w.varint(entries.length)
    for (const [k, v] of entries) w.string(k).string(v)
  } else {
    w.string(u.by)
  }
}

export function writeUpdates(w: Writer, updates: readonly MemberUpdate[]): void {
  w.varint(updates.length)
  for (const u of updates) writeUpdate(w, u)
}

export function updatesSize(updates: readonly MemberUpdate[]): number {
  let n = varintSize(updates.length)
  for (const u of updates) n += updateSize(u)
  return n
}

function readTags(r: Reader, limits: Limits): Tags {
  const start = r.offset
  const n = r.count(limits.maxTagsBytes, 2)
  if (n === 0) return NO_TAGS
  const tags: Record<string, string> = Object.create(null) as Record<string, string>
  for (let i = 0; i < n; i++) {
    const left = limits.maxTagsBytes - (r.offset - start)
    const k = r.string(left)
    tags[k] = r.string(limits.maxTagsBytes - (r.offset - start))
    if (r.offset - start > limits.maxTagsBytes) throw new DecodeError('limit-exceeded', `tags exceed ${limits.maxTagsBytes} bytes`)
  }
  return Object.freeze({ ...tags })
}

export function readUpdate(r: Reader, limits: Limits, isUsableAddress: (address: string) => boolean): MemberUpdate {
  const status = r.u8()
  if (status > MemberStatus.Left) throw new DecodeError('malformed', `unknown member status ${status}`)
  const name = r.string(limits.maxNameBytes)
  if (name.length === 0) throw new DecodeError('malformed', 'empty member name')
  // Any safe integer decodes; one far above the clock is refused by membership (incarnationCeiling).
  const incarnation = r.varint()
  if (status === MemberStatus.Alive) {
    const address = r.string(limits.maxNameBytes)
    // An alive member is probed at its address: one we could never send to is refused here, not at a socket.
    if (!isUsableAddress(address)) throw new DecodeError('malformed', `member '${name}' has an unusable address`)
    const generation = r.varint()
    const tags = readTags(r, limits)
    return { status, name, incarnation, address, generation, tags, by: '' }
  }
  const by = r.string(limits.maxNameBytes)
  return { status, name, incarnation, address: '', generation: 0, tags: NO_TAGS, by }
}

export function readUpdates(r: Reader, limits: Limits, max: number, isUsableAddress: (address: string) => boolean): MemberUpdate[] {
  const n = r.count(max, 4)
  const out: MemberUpdate[] = []
  for (let i = 0; i < n; i++) out.push(readUpdate(r, limits, isUsableAddress))
  return out
}
