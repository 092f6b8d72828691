import { DecodeError } from '../errors.js'
import type { MemberUpdate } from '../membership/member.js'
import type { Entry } from '../state/entry.js'
import { physicalMsOf } from '../state/hlc.js'
import { Reader, Writer, stringSize, varintSize } from './bytes.js'
import { type Limits, MAX_TTL_MS } from './limits.js'
import { readUpdates, writeUpdates } from './member-codec.js'

/**
 * Whether an address read from the wire is one we could ever send to. The
 * driver decides (the real network wants `host:port` with a port from 1 to
 * 65535; the simulator has its own names); the codec only applies it, so an
 * unusable address is refused at decode (`malformed`) instead of reaching a
 * socket call that throws.
 */
export type AddressRule = (address: string) => boolean

/** The rule of drivers that can send to any non-empty address (the simulator). */
export const ANY_ADDRESS: AddressRule = (address) => address.length > 0

/**
 * The wire format (PROTOCOL.md documents it byte by byte).
 *
 * Every message starts with a header: magic 0x67, protocol version, type,
 * cluster label, sender name, sender's advertised address.
 */
export const MAGIC = 0x67
export const PROTOCOL_VERSION = 1

/** Message type codes. WARNING: append only; never renumber or reuse. */
export enum MessageType {
  /** Anti-entropy opener: fingerprints only; O(1) bytes. */
  Probe = 1,
  /** Reply to a Probe whose fingerprints differ: the responder's digest page. */
  Digest = 2,
  /** Initiator's delta for the responder plus its own digest for the same range. */
  DeltaDigest = 3,
  /** Responder's delta: what the initiator lacked. Also sent over streams. */
  Delta = 4,
  /** Eager push of a fresh write (rumor mongering). */
  Push = 5,
  /** Full state transfer to a peer behind our tombstone-collection horizon (stream). */
  Reset = 6,
  /** Asks the receiver for a Reset: a delta held entries older than the retention for keys we do not know. */
  ResetRequest = 7,
  /** SWIM direct probe of `target`; answered by an Ack. Carries membership updates. */
  Ping = 8,
  /** Answer to a Ping (or relayed by the helper of an indirect probe). */
  Ack = 9,
  /** Asks the receiver to probe `target` for us and relay the Ack (or a Nack). */
  PingReq = 10,
  /** From the helper of an indirect probe: the target did not answer it in time. */
  Nack = 11,
  /** Membership updates only (the dissemination rounds). */
  MemberGossip = 12,
  /** Asks a seed for the full member list (a joiner). */
  JoinRequest = 13,
  /** The full member list: to a joiner, or in a membership sync. */
  MemberSync = 14,
}

/** Piggybacked membership updates in one datagram, at most. */
export const MAX_PIGGYBACK_UPDATES = 64

export interface Header {
  readonly label: string
  readonly from: string
  readonly fromAddress: string
}

/**
 * A page of a digest: the sender's watermark for every origin it knows in
 * the name range [start, end) (end undefined: to the last origin). An origin
 * in the range but absent from `rows` is unknown to the sender (watermark 0).
 */
export interface DigestPage {
  readonly start: string
  readonly end: string | undefined
  readonly rows: ReadonlyMap<string, number>
}

/**
 * The entries of one origin that the receiver lacks, in ts order, all with ts
 * greater than the receiver's watermark. After applying them the receiver may
 * raise its watermark to `upTo` (0: no claim), which the sender vouches for.
 */
export interface Segment {
  readonly origin: string
  readonly upTo: number
  readonly entries: readonly Entry[]
}

/** A message without its header. */
export type MessageBody =
  | { type: MessageType.Probe; syncHi: number; syncLo: number; wmHi: number; wmLo: number; memberHi: number; memberLo: number }
  | { type: MessageType.Digest; page: DigestPage }
  | { type: MessageType.DeltaDigest; page: DigestPage; segments: Segment[] }
  | { type: MessageType.Delta; segments: Segment[] }
  | { type: MessageType.Push; hops: number; prevTs: number; entry: Entry }
  | { type: MessageType.ResetRequest }
  | { type: MessageType.Reset; watermarks: Map<string, number>; gcFloors: Map<string, number>; entries: Entry[] }
  | { type: MessageType.Ping; seq: number; target: string; updates: MemberUpdate[] }
  | { type: MessageType.Ack; seq: number; generation: number; updates: MemberUpdate[] }
  | { type: MessageType.PingReq; seq: number; target: string; targetAddress: string; updates: MemberUpdate[] }
  | { type: MessageType.Nack; seq: number }
  | { type: MessageType.MemberGossip; updates: MemberUpdate[] }
  | { type: MessageType.JoinRequest }
  | { type: MessageType.MemberSync; reply: boolean; members: MemberUpdate[] }

export type Message = Header & MessageBody

// Entry flags.
const KIND_MASK = 0x03
const KIND_TOMBSTONE = 0
const KIND_STRING = 1
const KIND_BYTES = 2
const HAS_EXPIRY = 0x04

export function encodeHeader(w: Writer, type: MessageType, h: Header): void {
  w.u8(MAGIC).u8(PROTOCOL_VERSION).u8(type).string(h.label).string(h.from).string(h.fromAddress)
}

export function headerSize(h: Header): number {
  return 3 + stringSize(h.label) + stringSize(h.from) + stringSize(h.fromAddress)
}

/** Encoded size of an entry body (key onwards, origin excluded). */
export function entryBodySize(e: Entry): number {
  let n = stringSize(e.key) + varintSize(e.ts) + 1
  if (e.expiresAt !== undefined) n += varintSize(e.expiresAt)
  const v = e.value
  if (typeof v === 'string') n += stringSize(v)
  else if (v !== undefined) n += varintSize(v.length) + v.length
  return n
}

function writeEntryBody(w: Writer, e: Entry): void {
  // What every reader refuses is never written (the engine bounds TTLs before a write exists).
  if (e.expiresAt !== undefined && e.expiresAt > physicalMsOf(e.ts) + MAX_TTL_MS) throw new RangeError(`expiry of '${e.key}' beyond MAX_TTL_MS`)
  const v = e.value
  const kind = v === undefined ? KIND_TOMBSTONE : typeof v === 'string' ? KIND_STRING : KIND_BYTES
  w.string(e.key).varint(e.ts).u8(kind | (e.expiresAt !== undefined ? HAS_EXPIRY : 0))
  if (e.expiresAt !== undefined) w.varint(e.expiresAt)
  if (typeof v === 'string') w.string(v)
  else if (v !== undefined) w.bytes(v)
}

function readEntryBody(r: Reader, origin: string, limits: Limits): Entry {
  const key = r.string(limits.maxKeyBytes)
  if (key.length === 0) throw new DecodeError('malformed', 'empty key')
  const ts = r.varint()
  const flags = r.u8()
  if ((flags & ~(KIND_MASK | HAS_EXPIRY)) !== 0) throw new DecodeError('malformed', 'unknown entry flags')
  const expiresAt = (flags & HAS_EXPIRY) !== 0 ? r.varint() : undefined
  // A writer never sets an expiry further than MAX_TTL_MS after its write (ts is ms * 1024 + counter).
  if (expiresAt !== undefined && expiresAt > physicalMsOf(ts) + MAX_TTL_MS) throw new DecodeError('malformed', 'expiry beyond the longest TTL')
  const kind = flags & KIND_MASK
  let value: Entry['value']
  if (kind === KIND_STRING) value = r.string(limits.maxValueBytes)
  else if (kind === KIND_BYTES) value = new Uint8Array(r.bytes(limits.maxValueBytes))
  else if (kind === KIND_TOMBSTONE) value = undefined
  else throw new DecodeError('malformed', 'unknown value kind')
  return { key, ts, origin, value, expiresAt }
}

export function pageSizeOverhead(start: string, end: string | undefined): number {
  return stringSize(start) + 1 + (end === undefined ? 0 : stringSize(end)) + 5
}

export function digestRowSize(origin: string, wm: number): number {
  return stringSize(origin) + varintSize(wm)
}

function writePage(w: Writer, p: DigestPage): void {
  w.string(p.start).u8(p.end === undefined ? 0 : 1)
  if (p.end !== undefined) w.string(p.end)
  w.varint(p.rows.size)
  for (const [origin, wm] of p.rows) w.string(origin).varint(wm)
}

function readPage(r: Reader, limits: Limits): DigestPage {
  const start = r.string(limits.maxNameBytes)
  const hasEnd = r.u8()
  if (hasEnd > 1) throw new DecodeError('malformed', 'bad page end flag')
  const end = hasEnd === 1 ? r.string(limits.maxNameBytes) : undefined
  const n = r.count(limits.maxItemsPerMessage, 2)
  const rows = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const origin = r.string(limits.maxNameBytes)
    rows.set(origin, r.varint())
  }
  return { start, end, rows }
}

export function segmentOverhead(origin: string, upTo: number): number {
  return stringSize(origin) + varintSize(upTo) + 5
}

function writeSegments(w: Writer, segments: readonly Segment[]): void {
  w.varint(segments.length)
  for (const s of segments) {
    w.string(s.origin).varint(s.upTo).varint(s.entries.length)
    for (const e of s.entries) writeEntryBody(w, e)
  }
}

function readSegments(r: Reader, limits: Limits): Segment[] {
  const n = r.count(limits.maxItemsPerMessage, 3)
  const segments: Segment[] = []
  for (let i = 0; i < n; i++) {
    const origin = r.string(limits.maxNameBytes)
    const upTo = r.varint()
    const m = r.count(limits.maxItemsPerMessage, 4)
    const entries: Entry[] = []
    for (let j = 0; j < m; j++) entries.push(readEntryBody(r, origin, limits))
    segments.push({ origin, upTo, entries })
  }
  return segments
}

function writeOriginMap(w: Writer, m: ReadonlyMap<string, number>): void {
  w.varint(m.size)
  for (const [o, ts] of m) w.string(o).varint(ts)
}

function readOriginMap(r: Reader, limits: Limits): Map<string, number> {
  const n = r.count(limits.maxItemsPerMessage, 2)
  const m = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const o = r.string(limits.maxNameBytes)
    m.set(o, r.varint())
  }
  return m
}

export function encodeMessage(m: Message): Buffer {
  return encodeParts(m, m)
}

/** Encodes a header and a body (the engine keeps one header object and never copies it). */
export function encodeParts(h: Header, m: MessageBody): Buffer {
  const w = new Writer(256)
  encodeHeader(w, m.type, h)
  switch (m.type) {
    case MessageType.Probe:
      w.u32(m.syncHi).u32(m.syncLo).u32(m.wmHi).u32(m.wmLo).u32(m.memberHi).u32(m.memberLo)
      break
    case MessageType.Digest:
      writePage(w, m.page)
      break
    case MessageType.DeltaDigest:
      writePage(w, m.page)
      writeSegments(w, m.segments)
      break
    case MessageType.Delta:
      writeSegments(w, m.segments)
      break
    case MessageType.Push:
      w.varint(m.hops).varint(m.prevTs).string(m.entry.origin)
      writeEntryBody(w, m.entry)
      break
    case MessageType.ResetRequest:
      break
    case MessageType.Reset:
      writeOriginMap(w, m.watermarks)
      writeOriginMap(w, m.gcFloors)
      w.varint(m.entries.length)
      for (const e of m.entries) {
        w.string(e.origin)
        writeEntryBody(w, e)
      }
      break
    case MessageType.Ping:
      w.varint(m.seq).string(m.target)
      writeUpdates(w, m.updates)
      break
    case MessageType.Ack:
      w.varint(m.seq).varint(m.generation)
      writeUpdates(w, m.updates)
      break
    case MessageType.PingReq:
      w.varint(m.seq).string(m.target).string(m.targetAddress)
      writeUpdates(w, m.updates)
      break
    case MessageType.Nack:
      w.varint(m.seq)
      break
    case MessageType.MemberGossip:
      writeUpdates(w, m.updates)
      break
    case MessageType.JoinRequest:
      break
    case MessageType.MemberSync:
      w.u8(m.reply ? 1 : 0)
      writeUpdates(w, m.members)
      break
  }
  return w.finish()
}

/**
 * Decodes one message, bounded by `limits` (`maxBytes` is the datagram or the
 * stream limit). Throws `DecodeError` (with a drop reason) and nothing else.
 * Unknown trailing bytes are ignored so a newer minor revision can append fields.
 */
export function decodeMessage(buf: Buffer, limits: Limits, maxBytes: number, isUsableAddress: AddressRule = ANY_ADDRESS): Message {
  if (buf.length > maxBytes) throw new DecodeError('oversized', `message of ${buf.length} bytes exceeds ${maxBytes}`)
  // maxItemsPerMessage bounds the items of the whole message, not of each list in it.
  const r = new Reader(buf, limits.maxItemsPerMessage)
  const address = (a: string, what: string): string => {
    if (!isUsableAddress(a)) throw new DecodeError('malformed', `unusable ${what} '${a.slice(0, 64)}'`)
    return a
  }
  try {
    if (r.u8() !== MAGIC) throw new DecodeError('bad-magic', 'not a grapevine message')
    const version = r.u8()
    if (version !== PROTOCOL_VERSION) throw new DecodeError('protocol-version', `protocol version ${version} is not supported`)
    const type = r.u8()
    const label = r.string(limits.maxLabelBytes)
    const from = r.string(limits.maxNameBytes)
    const fromAddress = r.string(limits.maxNameBytes)
    if (from.length === 0) throw new DecodeError('malformed', 'empty sender name')
    // Empty: answer the transport source address.
    if (fromAddress.length > 0) address(fromAddress, 'reply address')
    // Object literals, not spreads: a spread here made decoding ten times slower.
    switch (type) {
      case MessageType.Probe: {
        const syncHi = r.u32()
        const syncLo = r.u32()
        const wmHi = r.u32()
        const wmLo = r.u32()
        const memberHi = r.u32()
        const memberLo = r.u32()
        return { label, from, fromAddress, type, syncHi, syncLo, wmHi, wmLo, memberHi, memberLo }
      }
      case MessageType.Digest:
        return { label, from, fromAddress, type, page: readPage(r, limits) }
      case MessageType.DeltaDigest: {
        const page = readPage(r, limits)
        return { label, from, fromAddress, type, page, segments: readSegments(r, limits) }
      }
      case MessageType.Delta:
        return { label, from, fromAddress, type, segments: readSegments(r, limits) }
      case MessageType.Push: {
        const hops = r.varint()
        const prevTs = r.varint()
        const origin = r.string(limits.maxNameBytes)
        return { label, from, fromAddress, type, hops, prevTs, entry: readEntryBody(r, origin, limits) }
      }
      case MessageType.ResetRequest:
        return { label, from, fromAddress, type }
      case MessageType.Reset: {
        const watermarks = readOriginMap(r, limits)
        const gcFloors = readOriginMap(r, limits)
        const n = r.count(limits.maxItemsPerMessage, 4)
        const entries: Entry[] = []
        for (let i = 0; i < n; i++) {
          const origin = r.string(limits.maxNameBytes)
          entries.push(readEntryBody(r, origin, limits))
        }
        return { label, from, fromAddress, type, watermarks, gcFloors, entries }
      }
      case MessageType.Ping: {
        const seq = r.varint()
        const target = r.string(limits.maxNameBytes)
        return { label, from, fromAddress, type, seq, target, updates: readUpdates(r, limits, MAX_PIGGYBACK_UPDATES, isUsableAddress) }
      }
      case MessageType.Ack: {
        const seq = r.varint()
        const generation = r.varint()
        return { label, from, fromAddress, type, seq, generation, updates: readUpdates(r, limits, MAX_PIGGYBACK_UPDATES, isUsableAddress) }
      }
      case MessageType.PingReq: {
        const seq = r.varint()
        const target = r.string(limits.maxNameBytes)
        const targetAddress = address(r.string(limits.maxNameBytes), 'target address')
        return { label, from, fromAddress, type, seq, target, targetAddress, updates: readUpdates(r, limits, MAX_PIGGYBACK_UPDATES, isUsableAddress) }
      }
      case MessageType.Nack:
        return { label, from, fromAddress, type, seq: r.varint() }
      case MessageType.MemberGossip:
        return { label, from, fromAddress, type, updates: readUpdates(r, limits, MAX_PIGGYBACK_UPDATES, isUsableAddress) }
      case MessageType.JoinRequest:
        return { label, from, fromAddress, type }
      case MessageType.MemberSync: {
        const flag = r.u8()
        if (flag > 1) throw new DecodeError('malformed', 'bad reply flag')
        return { label, from, fromAddress, type, reply: flag === 1, members: readUpdates(r, limits, limits.maxItemsPerMessage, isUsableAddress) }
      }
      default:
        throw new DecodeError('unknown-type', `unknown message type ${type}`)
    }
  } catch (err) {
    if (err instanceof DecodeError) throw err
    // Buffer.toString and friends do not throw on bad UTF-8, but stay defensive:
    // nothing but DecodeError may leave the decoder.
    throw new DecodeError('malformed', String(err))
  }
}
