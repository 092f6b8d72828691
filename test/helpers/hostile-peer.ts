/**
 * The hostile peer: well-formed grapevine messages with hostile field values.
 *
 * Unlike the byte-mutating fuzz harness, every case here is a message an
 * attacker would write on purpose: each message type, each field, set to a
 * boundary or a hostile value (0, 1, max, max + 1, 2^32, 2^52, 2^53 - 1,
 * 2^53, empty, longest, one over, another live node's name or origin, the
 * victim's own, bad and unroutable addresses, timestamps at and past the
 * clock-drift bound, watermarks ahead of now, huge counts, incarnations at
 * and above the ceiling, far expiries, duplicates, falling timestamps,
 * claims about live members, floods of fake members).
 *
 * Messages are written by `RawWriter` with the layout of PROTOCOL.md, not by
 * our encoder: an attacker does not use it, and our encoder refuses (or
 * cannot express) some of these values. `honestBaselines` pairs a raw-written
 * message with the real encoder's bytes for every type, so a test proves the
 * two layouts agree.
 *
 * Each case is named `Type.field=value` and carries the drop reasons the
 * receiver may count for it (the contract of issue 14); `accepted` means no
 * drop at all.
 */
import type { DropReason } from '../../src/errors.js'
import { MAX_TTL_MS } from '../../src/codec/limits.js'
import { type Message, MessageType } from '../../src/codec/messages.js'
import { MemberStatus } from '../../src/membership/member.js'
import { type Random, SeededRandom, randomInt } from '../../src/util/random.js'

/** What one delivered case may do at the receiver: count one of these drop reasons, or (`accepted`) none. */
export type Outcome = DropReason | 'accepted'

/** A live node as the attacker knows it. */
export interface Known {
  readonly name: string
  readonly address: string
  /** Its write origin, `name~generation`. */
  readonly origin: string
  readonly incarnation: number
}

/** What the attacker knows when it writes a case. */
export interface AttackContext {
  /** Wall clock of the attacker (same machine as the victims). */
  readonly nowMs: number
  readonly label: string
  /** The node the message is sent to. */
  readonly victim: Known
  /** Another live node of the cluster. */
  readonly other: Known
  /** The victims' `maxClockDriftMs`. */
  readonly maxClockDriftMs: number
  /** Keys written by honest nodes: hostile writes to them must be refused. */
  readonly honestKeys: readonly string[]
}

export interface CaseTemplate {
  /** `Type.field=value`. */
  readonly name: string
  /** Cases whose quarantine goes together (a failing family is left out of the volume phase). */
  readonly family: string
  readonly transport: 'udp' | 'tcp'
  /** Acceptable outcomes; the first is the contract's. */
  readonly expect: readonly Outcome[]
  /** A known finding on code without the issue-14 fixes, when this case is expected to show it. */
  readonly finding?: string
  /**
   * Introduces hundreds of made-up members at once: each dilutes the real
   * members' gossip until found dead (about one probe per second each), so
   * fresh writes then take many seconds to spread. Sent once, last, in the
   * cases phase; left out of the volume.
   */
  readonly flood?: true
  /**
   * A watermark claim that is counted only while it lies above the receiver's
   * watermark: an earlier believed claim (a push link, THREAT_MODEL.md known
   * gaps) may already cover it, and then nothing is counted (applySegments).
   * Its counter is checked in the cases phase, not in the volume's tally.
   */
  readonly coverable?: true
  /**
   * An open weakness this case shows when repeated (THREAT_MODEL.md, known
   * gaps, or one found here and reported): checked once in the cases phase
   * (its counters), left out of the volume until the engine closes it.
   */
  readonly gap?: string
  build(ctx: AttackContext, r: Random): Buffer
}

export interface HostileCase {
  readonly template: CaseTemplate
  readonly bytes: Buffer
}

// ---- the raw writer -----------------------------------------------------------

/** A varint field written as given: a bigint (any size), or raw bytes (overlong, unterminated...). */
export class RawVarint {
  constructor(readonly bytes: Buffer) {}
}
/** A string field whose bytes are given (invalid UTF-8). */
export class RawString {
  constructor(readonly bytes: Buffer) {}
}
export type V = number | bigint | RawVarint
export type S = string | RawString

/** Writes the documented layout with whatever values it is given. */
export class RawWriter {
  private readonly parts: Buffer[] = []
  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]))
    return this
  }
  u32(v: number): this {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(v >>> 0)
    this.parts.push(b)
    return this
  }
  varint(v: V): this {
    if (v instanceof RawVarint) {
      this.parts.push(v.bytes)
      return this
    }
    let n = BigInt(v)
    const out: number[] = []
    while (n >= 128n) {
      out.push(Number(n % 128n) | 0x80)
      n /= 128n
    }
    out.push(Number(n))
    this.parts.push(Buffer.from(out))
    return this
  }
  bytes(b: Buffer, len: V = b.length): this {
    this.varint(len)
    this.parts.push(b)
    return this
  }
  string(s: S): this {
    return this.bytes(s instanceof RawString ? s.bytes : Buffer.from(s, 'utf8'))
  }
  raw(b: Buffer): this {
    this.parts.push(b)
    return this
  }
  finish(): Buffer {
    return Buffer.concat(this.parts)
  }
}

export interface RawHeader {
  magic?: number
  version?: number
  type: number
  label: S
  from: S
  fromAddress: S
}
export interface RawEntry {
  key: S
  ts: V
  /** Defaults from the value and expiry. */
  flags?: number
  expiresAt?: V
  value?: string | Buffer
  /** A declared value length other than the real one. */
  valueLen?: V
}
export interface RawSegment {
  origin: S
  upTo: V
  entries: RawEntry[]
  count?: V
}
export interface RawPage {
  start: S
  hasEnd?: number
  end?: S
  rows: [S, V][]
  count?: V
}
export interface RawUpdate {
  status: number
  name: S
  incarnation: V
  address?: S
  generation?: V
  tags?: [S, S][]
  tagCount?: V
  by?: S
}

export function writeHeader(w: RawWriter, h: RawHeader): RawWriter {
  return w
    .u8(h.magic ?? 0x67)
    .u8(h.version ?? 1)
    .u8(h.type)
    .string(h.label)
    .string(h.from)
    .string(h.fromAddress)
}

export function writeEntry(w: RawWriter, e: RawEntry): void {
  const kind = e.value === undefined ? 0 : typeof e.value === 'string' ? 1 : 2
  const flags = e.flags ?? kind | (e.expiresAt !== undefined ? 4 : 0)
  w.string(e.key).varint(e.ts).u8(flags)
  if ((flags & 4) !== 0) w.varint(e.expiresAt ?? 0)
  if (e.value !== undefined) {
    const b = typeof e.value === 'string' ? Buffer.from(e.value, 'utf8') : e.value
    w.bytes(b, e.valueLen ?? b.length)
  }
}

export function writeSegments(w: RawWriter, segs: RawSegment[], count: V = segs.length): void {
  w.varint(count)
  for (const s of segs) {
    w.string(s.origin).varint(s.upTo).varint(s.count ?? s.entries.length)
    for (const e of s.entries) writeEntry(w, e)
  }
}

export function writePage(w: RawWriter, p: RawPage): void {
  const hasEnd = p.hasEnd ?? (p.end === undefined ? 0 : 1)
  w.string(p.start).u8(hasEnd)
  if (hasEnd === 1 || (hasEnd > 1 && p.end !== undefined)) w.string(p.end ?? '')
  w.varint(p.count ?? p.rows.length)
  for (const [o, wm] of p.rows) w.string(o).varint(wm)
}

export function writeOriginMap(w: RawWriter, m: [S, V][], count: V = m.length): void {
  w.varint(count)
  for (const [o, ts] of m) w.string(o).varint(ts)
}

export function writeUpdate(w: RawWriter, u: RawUpdate): void {
  w.u8(u.status).string(u.name).varint(u.incarnation)
  if (u.status === MemberStatus.Alive) {
    w.string(u.address ?? '').varint(u.generation ?? 0)
    const tags = u.tags ?? []
    w.varint(u.tagCount ?? tags.length)
    for (const [k, v] of tags) w.string(k).string(v)
  } else {
    w.string(u.by ?? '')
  }
}

export function writeUpdates(w: RawWriter, us: RawUpdate[], count: V = us.length): void {
  w.varint(count)
  for (const u of us) writeUpdate(w, u)
}

/** A whole message: a header and a body written by `body`. */
export function message(h: RawHeader, body: (w: RawWriter) => void = () => undefined): Buffer {
  const w = writeHeader(new RawWriter(), h)
  body(w)
  return w.finish()
}

/** Frames a stream message as the transport does: a 4-byte big-endian length, then the message. */
export function frame(bytes: Buffer, declared = bytes.length): Buffer {
  const h = Buffer.alloc(4)
  h.writeUInt32BE(declared >>> 0)
  return Buffer.concat([h, bytes])
}

// ---- values ---------------------------------------------------------------------

const P52 = 2 ** 52
const SAFE = 2 ** 53 - 1
/** 2^53: one past the largest varint a receiver accepts. */
const V53 = new RawVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]))
/** A 9-byte varint (longer than allowed). */
const OVERLONG = new RawVarint(Buffer.from([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))
/** 0 written non-minimally (two bytes): valid LEB128. */
const ZERO_2B = new RawVarint(Buffer.from([0x80, 0x00]))
/** A varint cut by the end of the message. */
const UNTERMINATED = new RawVarint(Buffer.from([0xff]))
const BAD_UTF8 = new RawString(Buffer.from([0x61, 0xff, 0xfe, 0x62]))

/** Varint values a receiver must decode (all < 2^53), by name. */
const GOOD_VARINTS: [string, number | RawVarint][] = [
  ['0', 0],
  ['1', 1],
  ['0-nonminimal', ZERO_2B],
  ['2^32-1', 2 ** 32 - 1],
  ['2^32', 2 ** 32],
  ['2^52', P52],
  ['2^53-1', SAFE],
]
/** Varint values a receiver must refuse as malformed. */
const BAD_VARINTS: [string, V][] = [
  ['2^53', V53],
  ['2^64-1', 2n ** 64n - 1n],
  ['9-bytes', OVERLONG],
]

const str = (n: number, c = 'a'): string => c.repeat(n)
const hlc = (ms: number): number => Math.floor(ms) * 1024
/** Sender names: never members, since made-up members get names of their own (`sybilName`). */
const fakeName = (r: Random): string => `mallory-${randomInt(r, 1_000_000)}`
/**
 * Where made-up members (and the members' forged new addresses) are said to
 * live: a loopback host nobody sends from or listens on. The attacker sends
 * from 127.0.0.1 (hostile-cluster.ts), so it is on none of its made-up
 * members' hosts either: it stays an outsider. (A sender on a member's own
 * host may speak as that member in plaintext, THREAT_MODEL.md; one that
 * makes itself a member at its own host is an insider, and may delete keys
 * as any member can.)
 */
export const NOBODY_HOST = '127.0.0.9'
const nobody = `${NOBODY_HOST}:9`
/**
 * Names of made-up members in the single-record cases: a few, so repeated
 * cases re-assert the same members instead of growing the table without
 * bound (each made-up member dilutes the real ones' gossip until it is found
 * dead, one probe per second). The floods (`flood`) use names of their own.
 */
const SYBILS = 4
const sybilName = (r: Random): string => `sybil-${randomInt(r, SYBILS)}`
/**
 * Origins of forged writes: a few, for the same reason as the sybils. Writes under ever new made-up
 * origins are accepted in plaintext and each origin takes room in the digest pages, so a flood of
 * them slows anti-entropy for everyone (THREAT_MODEL.md, known gaps: dilution); the suite checks
 * the codec and the claims, not that open gap.
 */
const FAKE_ORIGINS = 8
const fakeOrigin = (r: Random): string => `mallory-${randomInt(r, FAKE_ORIGINS)}~${(1_600_000_000_000 + randomInt(r, FAKE_ORIGINS)).toString(36)}`
/** A made-up origin outside the pool: one the victim has never seen. */
const freshOrigin = (r: Random): string => `mallory-fresh-${randomInt(r, 1_000_000_000)}~1`
const evilKey = (r: Random): string => `evil/${randomInt(r, 100_000)}`
const seq = (r: Random): number => 1 + randomInt(r, 2 ** 31)

/** Header of an innocent-looking sender. */
function hdr(ctx: AttackContext, type: MessageType, r: Random, over: Partial<RawHeader> = {}): RawHeader {
  return { type, label: ctx.label, from: fakeName(r), fromAddress: '', ...over }
}

/** Bodies that are harmless on their own, one per type: the carriers of header cases. */
function benignBody(type: MessageType, ctx: AttackContext, r: Random): (w: RawWriter) => void {
  switch (type) {
    case MessageType.Probe:
      return (w) => {
        for (let i = 0; i < 6; i++) w.u32(randomInt(r, 2 ** 32))
      }
    case MessageType.Digest:
      return (w) => writePage(w, { start: '', rows: [[fakeOrigin(r), 1]] })
    case MessageType.DeltaDigest:
      return (w) => {
        writePage(w, { start: '', rows: [] })
        writeSegments(w, [])
      }
    case MessageType.Delta:
      return (w) => writeSegments(w, [{ origin: fakeOrigin(r), upTo: 0, entries: [{ key: evilKey(r), ts: hlc(ctx.nowMs), value: 'x' }] }])
    case MessageType.Push:
      return (w) => {
        w.varint(0).varint(0).string(fakeOrigin(r))
        writeEntry(w, { key: evilKey(r), ts: hlc(ctx.nowMs), value: 'pushed' })
      }
    case MessageType.Reset:
      return (w) => {
        writeOriginMap(w, [])
        writeOriginMap(w, [])
        w.varint(0)
      }
    case MessageType.Ping:
      return (w) => {
        w.varint(seq(r)).string(ctx.victim.name)
        writeUpdates(w, [])
      }
    case MessageType.Ack:
      return (w) => {
        w.varint(seq(r)).varint(1)
        writeUpdates(w, [])
      }
    case MessageType.PingReq:
      return (w) => {
        w.varint(seq(r)).string(ctx.other.name).string(ctx.other.address)
        writeUpdates(w, [])
      }
    case MessageType.Nack:
      return (w) => w.varint(seq(r))
    case MessageType.MemberGossip:
      return (w) => writeUpdates(w, [])
    case MessageType.MemberSync:
      return (w) => {
        w.u8(0)
        writeUpdates(w, [])
      }
    case MessageType.ResetRequest:
    case MessageType.JoinRequest:
      return () => undefined
  }
}

/** Every message type of the protocol (the enum's numeric members). */
const ALL_TYPES: MessageType[] = Object.values(MessageType).filter((v): v is MessageType => typeof v === 'number')
const typeName = (t: number): string => MessageType[t] ?? `type${t}`

/** Address values: [name, value(ctx), outcomes]. Parseable ones are accepted; port 0, > 65535, none, unparseable, a wildcard host: malformed. */
function addressValues(): [string, (ctx: AttackContext) => S, Outcome[]][] {
  return [
    ['port0', () => '127.0.0.1:0', ['malformed']],
    ['port65535', () => '127.0.0.1:65535', ['accepted']],
    ['port65536', () => '127.0.0.1:65536', ['malformed']],
    ['no-port', () => '127.0.0.1', ['malformed']],
    ['port-empty', () => '127.0.0.1:', ['malformed']],
    ['port-negative', () => '127.0.0.1:-1', ['malformed']],
    ['unparseable', () => 'not an address', ['malformed']],
    ['v6-unbracketed', () => '::1:7946', ['malformed']],
    ['[::1]:1', () => '[::1]:1', ['accepted']],
    // A wildcard host names no peer: malformed at decode (PROTOCOL.md, Decoding rules; isUsableInetAddress).
    ['0.0.0.0:7946', () => '0.0.0.0:7946', ['malformed']],
    ['[::]:7946', () => '[::]:7946', ['malformed']],
    ['255.255.255.255:1', () => '255.255.255.255:1', ['accepted']],
    ['[::]:0', () => '[::]:0', ['malformed']],
    ['longest', () => `${str(123, 'h')}:7946`, ['accepted', 'malformed']],
    ['one-over', () => `${str(124, 'h')}:7946`, ['limit-exceeded']],
    ['bad-utf8', () => BAD_UTF8, ['malformed']],
    ['victim-own', (ctx) => ctx.victim.address, ['accepted']],
    ['other-live', (ctx) => ctx.other.address, ['accepted']],
  ]
}

// ---- the cases ----------------------------------------------------------------------

function t(
  name: string,
  family: string,
  expect: Outcome[],
  build: (ctx: AttackContext, r: Random) => Buffer,
  extra: { transport?: 'udp' | 'tcp'; finding?: string; flood?: true; coverable?: true; gap?: string } = {},
): CaseTemplate {
  return {
    name,
    family,
    transport: extra.transport ?? 'udp',
    expect,
    build,
    ...(extra.finding !== undefined ? { finding: extra.finding } : {}),
    ...(extra.flood ? { flood: true as const } : {}),
    ...(extra.coverable ? { coverable: true as const } : {}),
    ...(extra.gap !== undefined ? { gap: extra.gap } : {}),
  }
}

/** Entry-level hostile values, relative to the context. Returns [name, entry, outcomes]. */
function entryCases(): [string, (ctx: AttackContext, r: Random) => RawEntry, Outcome[], string?][] {
  const bound = (ctx: AttackContext): number => ctx.nowMs + ctx.maxClockDriftMs
  const honest = (ctx: AttackContext, r: Random): string => ctx.honestKeys[randomInt(r, ctx.honestKeys.length)] ?? 'honest/0'
  return [
    ['ts=now', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v' }), ['accepted']],
    ['ts=drift-bound', (c, r) => ({ key: evilKey(r), ts: hlc(bound(c) - 500), value: 'v' }), ['accepted']],
    ['ts=past-drift-bound', (c, r) => ({ key: evilKey(r), ts: hlc(bound(c) + 5000), value: 'v' }), ['clock-drift']],
    ['ts=0', (_c, r) => ({ key: evilKey(r), ts: 0, value: 'v' }), ['past-horizon', 'clock-drift', 'malformed']],
    ['ts=1', (_c, r) => ({ key: evilKey(r), ts: 1, value: 'v' }), ['past-horizon', 'malformed']],
    ['ts=2^52', (_c, r) => ({ key: evilKey(r), ts: P52, value: 'v' }), ['clock-drift']],
    ['ts=2^53-1', (_c, r) => ({ key: evilKey(r), ts: SAFE, value: 'v' }), ['clock-drift']],
    ['ts=2^53', (_c, r) => ({ key: evilKey(r), ts: V53, value: 'v' }), ['malformed']],
    ['ts=2^64-1', (_c, r) => ({ key: evilKey(r), ts: 2n ** 64n - 1n, value: 'v' }), ['malformed']],
    ['honest-key.ts=past-drift-bound', (c, r) => ({ key: honest(c, r), ts: hlc(bound(c) + 5000), value: 'stolen' }), ['clock-drift']],
    ['honest-key.tombstone.ts=2^53-1', (c, r) => ({ key: honest(c, r), ts: SAFE }), ['clock-drift']],
    ['key=empty', (c) => ({ key: '', ts: hlc(c.nowMs), value: 'v' }), ['malformed']],
    ['key=longest', (c, r) => ({ key: `evil/${randomInt(r, 1000)}/`.padEnd(256, 'k'), ts: hlc(c.nowMs), value: 'v' }), ['accepted']],
    ['key=one-over', (c) => ({ key: str(257, 'k'), ts: hlc(c.nowMs), value: 'v' }), ['limit-exceeded']],
    ['key=bad-utf8', (c) => ({ key: BAD_UTF8, ts: hlc(c.nowMs), value: 'v' }), ['malformed']],
    ['flags=8', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), flags: 8 }), ['malformed']],
    ['flags=kind3', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), flags: 3 }), ['malformed']],
    ['flags=255', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), flags: 255 }), ['malformed']],
    ['tombstone', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs) }), ['accepted']],
    ['bytes-value', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: Buffer.from([0, 255, 1]) }), ['accepted']],
    ['value=empty', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: '' }), ['accepted']],
    ['value.len=65537', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', valueLen: 65537 }), ['limit-exceeded']],
    ['value.len=2^53', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', valueLen: V53 }), ['malformed']],
    ['value.len=past-end', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', valueLen: 1000 }), ['truncated']],
    ['expiresAt=0', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', expiresAt: 0 }), ['accepted']],
    ['expiresAt=now+1h', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', expiresAt: c.nowMs + 3_600_000 }), ['accepted']],
    ['expiresAt=max-ttl', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', expiresAt: c.nowMs + MAX_TTL_MS }), ['accepted']],
    [
      'expiresAt=max-ttl+1',
      (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', expiresAt: c.nowMs + MAX_TTL_MS + 1 }),
      ['malformed'],
      'TTL expiry past the varint field',
    ],
    ['expiresAt=2^52', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', expiresAt: P52 }), ['malformed'], 'TTL expiry past the varint field'],
    ['expiresAt=2^53-1', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', expiresAt: SAFE }), ['malformed'], 'TTL expiry past the varint field'],
    ['expiresAt=2^53', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', expiresAt: V53 }), ['malformed']],
    ['expiresAt=missing', (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'v', flags: 5, expiresAt: UNTERMINATED }), ['truncated', 'malformed']],
  ]
}

function updateCases(): [string, (ctx: AttackContext, r: Random) => RawUpdate, Outcome[], string?][] {
  const aliveFake = (c: AttackContext, r: Random, over: Partial<RawUpdate> = {}): RawUpdate => ({
    status: MemberStatus.Alive,
    name: sybilName(r),
    incarnation: 1,
    address: nobody,
    generation: c.nowMs,
    ...over,
  })
  const claim = (status: MemberStatus, who: Known, incarnation: V, by: S): RawUpdate => ({ status, name: who.name, incarnation, by })
  // The ceiling the fix exports is "about now + 2^32": well below and well above it.
  const below = (c: AttackContext): number => c.nowMs + 2 ** 30
  const above = (c: AttackContext): number => c.nowMs + 2 ** 36
  const cases: [string, (ctx: AttackContext, r: Random) => RawUpdate, Outcome[], string?][] = [
    ['status=4', (c, r) => ({ ...aliveFake(c, r), status: 4 }), ['malformed']],
    ['status=255', (c, r) => ({ ...aliveFake(c, r), status: 255 }), ['malformed']],
    ['name=empty', (c, r) => aliveFake(c, r, { name: '' }), ['malformed']],
    ['name=longest', (c, r) => aliveFake(c, r, { name: `${sybilName(r)}-`.padEnd(128, 'n') }), ['accepted', 'claim-refused']],
    ['name=one-over', (c, r) => aliveFake(c, r, { name: str(129, 'n') }), ['limit-exceeded']],
    ['name=bad-utf8', (c, r) => aliveFake(c, r, { name: BAD_UTF8 }), ['malformed']],
    ['alive.new', (c, r) => aliveFake(c, r), ['accepted', 'claim-refused']],
    ['alive.generation=0', (c, r) => aliveFake(c, r, { generation: 0 }), ['accepted', 'claim-refused']],
    ['alive.generation=2^53-1', (c, r) => aliveFake(c, r, { generation: SAFE }), ['accepted', 'claim-refused']],
    ['alive.generation=2^53', (c, r) => aliveFake(c, r, { generation: V53 }), ['malformed']],
    ['alive.incarnation=0', (c, r) => aliveFake(c, r, { incarnation: 0 }), ['accepted', 'claim-refused']],
    ['alive.incarnation=below-ceiling', (c, r) => aliveFake(c, r, { incarnation: below(c) }), ['accepted', 'claim-refused']],
    ['alive.incarnation=above-ceiling', (c, r) => aliveFake(c, r, { incarnation: above(c) }), ['claim-refused']],
    ['alive.incarnation=2^52', (c, r) => aliveFake(c, r, { incarnation: P52 }), ['claim-refused']],
    ['alive.incarnation=2^52+1', (c, r) => aliveFake(c, r, { incarnation: P52 + 1 }), ['claim-refused', 'malformed']],
    ['alive.incarnation=2^53-1', (c, r) => aliveFake(c, r, { incarnation: SAFE }), ['claim-refused', 'malformed']],
    ['alive.incarnation=2^53', (c, r) => aliveFake(c, r, { incarnation: V53 }), ['malformed']],
    ['alive.tags=512-bytes', (c, r) => aliveFake(c, r, { tags: [['t', str(507, 'x')]] }), ['accepted', 'claim-refused']],
    ['alive.tags=513-bytes', (c, r) => aliveFake(c, r, { tags: [['t', str(508, 'x')]] }), ['limit-exceeded']],
    ['alive.tags.count=2^32', (c, r) => aliveFake(c, r, { tags: [], tagCount: 2 ** 32 }), ['limit-exceeded']],
    ['alive.tags.duplicate-key', (c, r) => aliveFake(c, r, { tags: [['k', 'a'], ['k', 'b']] }), ['accepted', 'claim-refused']],
    ['other.alive.new-address.inc+1', (c) => ({ status: 0, name: c.other.name, incarnation: c.other.incarnation + 1, address: nobody, generation: 1 }), ['accepted']],
    ['other.alive.new-address.inc=2^52', (c) => ({ status: 0, name: c.other.name, incarnation: P52, address: nobody, generation: 1 }), ['claim-refused']],
    ['other.suspect.inc', (c) => claim(MemberStatus.Suspect, c.other, c.other.incarnation, 'mallory'), ['accepted']],
    ['other.suspect.inc+1', (c) => claim(MemberStatus.Suspect, c.other, c.other.incarnation + 1, c.victim.name), ['accepted']],
    ['other.suspect.inc=below-ceiling', (c) => claim(MemberStatus.Suspect, c.other, below(c), 'mallory'), ['accepted']],
    ['other.suspect.inc=above-ceiling', (c) => claim(MemberStatus.Suspect, c.other, above(c), 'mallory'), ['claim-refused']],
    [
      'other.suspect.inc=2^52',
      (c) => claim(MemberStatus.Suspect, c.other, P52, 'mallory'),
      ['claim-refused'],
      'suspect at 2^52: refutation unencodable, member dead forever',
    ],
    ['other.dead.inc', (c) => claim(MemberStatus.Dead, c.other, c.other.incarnation, 'mallory'), ['accepted']],
    ['other.dead.inc+1', (c) => claim(MemberStatus.Dead, c.other, c.other.incarnation + 1, c.victim.name), ['accepted']],
    ['other.dead.inc=2^52', (c) => claim(MemberStatus.Dead, c.other, P52, 'mallory'), ['claim-refused'], 'dead at 2^52: refutation unencodable'],
    ['other.left.by-itself', (c) => claim(MemberStatus.Left, c.other, c.other.incarnation, c.other.name), ['accepted']],
    ['other.left.by-mallory', (c) => claim(MemberStatus.Left, c.other, c.other.incarnation + 1, 'mallory'), ['accepted']],
    ['victim.suspect.inc', (c) => claim(MemberStatus.Suspect, c.victim, c.victim.incarnation, 'mallory'), ['accepted']],
    ['victim.dead.inc+1', (c) => claim(MemberStatus.Dead, c.victim, c.victim.incarnation + 1, 'mallory'), ['accepted']],
    ['victim.suspect.inc=2^52', (c) => claim(MemberStatus.Suspect, c.victim, P52, 'mallory'), ['claim-refused'], 'suspect at 2^52: refutation unencodable'],
    ['victim.alive.new-address.inc+1', (c) => ({ status: 0, name: c.victim.name, incarnation: c.victim.incarnation + 1, address: nobody, generation: 1 }), ['accepted']],
    ['suspect.by=empty', (c) => claim(MemberStatus.Suspect, c.other, c.other.incarnation, ''), ['accepted']],
    ['suspect.by=one-over', (c) => claim(MemberStatus.Suspect, c.other, c.other.incarnation, str(129, 'b')), ['limit-exceeded']],
    ['dead.unknown-member', (_c, r) => ({ status: MemberStatus.Dead, name: fakeName(r), incarnation: 1, by: 'mallory' }), ['accepted']],
  ]
  for (const [an, av, outcome] of addressValues()) {
    if (an === 'victim-own' || an === 'other-live') continue
    const finding = an === 'port0' || an === '[::]:0' ? 'alive member at :0 crashes the node at its next probe' : undefined
    const expect = outcome.includes('accepted') ? [...outcome, 'claim-refused' as const] : outcome
    cases.push([`alive.address=${an}`, (c, r) => aliveFake(c, r, { address: av(c) }), expect, finding])
  }
  return cases
}

function segmentCases(): [string, (ctx: AttackContext, r: Random) => RawSegment[], Outcome[], string?][] {
  const bound = (c: AttackContext): number => c.nowMs + c.maxClockDriftMs
  const rising = (c: AttackContext, r: Random, n: number, step = 1): RawEntry[] =>
    Array.from({ length: n }, (_, i) => ({ key: evilKey(r), ts: hlc(c.nowMs) + i * step, value: 'v' }))
  const wmForge = 'forged watermark claim (upTo) accepted'
  const out: [string, (ctx: AttackContext, r: Random) => RawSegment[], Outcome[], string?][] = [
    ['count=0', () => [], ['accepted']],
    ['upTo=0', (c, r) => [{ origin: fakeOrigin(r), upTo: 0, entries: rising(c, r, 2) }], ['accepted']],
    // From an outsider no claim is believed, not even up to the newest write it carries (GossipEngine.claimBeliever).
    ['upTo=proven', (c, r) => { const e = rising(c, r, 2); return [{ origin: fakeOrigin(r), upTo: e[1]!.ts, entries: e }] }, ['watermark-refused']],
    ['other-origin.upTo=now.unproven', (c) => [{ origin: c.other.origin, upTo: hlc(c.nowMs), entries: [] }], ['watermark-refused'], wmForge],
    ['other-origin.upTo=drift-bound.unproven', (c) => [{ origin: c.other.origin, upTo: hlc(bound(c) - 500), entries: [] }], ['watermark-refused'], wmForge],
    ['other-origin.upTo=ahead', (c) => [{ origin: c.other.origin, upTo: hlc(bound(c) + 600_000), entries: [] }], ['watermark-refused'], wmForge],
    ['victim-origin.upTo=drift-bound', (c) => [{ origin: c.victim.origin, upTo: hlc(bound(c) - 500), entries: [] }], ['watermark-refused'], wmForge],
    ['fake-origin.upTo=2^53-1', (_c, r) => [{ origin: fakeOrigin(r), upTo: SAFE, entries: [] }], ['watermark-refused'], wmForge],
    ['fake-origin.upTo=beyond-entries', (c, r) => [{ origin: fakeOrigin(r), upTo: hlc(bound(c) - 500), entries: rising(c, r, 1) }], ['watermark-refused'], wmForge],
    ['upTo=2^53', (_c, r) => [{ origin: fakeOrigin(r), upTo: V53, entries: [] }], ['malformed']],
    ['origin=empty', (c, r) => [{ origin: '', upTo: 0, entries: rising(c, r, 1) }], ['accepted', 'malformed']],
    ['origin=longest', (c, r) => [{ origin: `${fakeName(r)}~`.padEnd(128, 'o'), upTo: 0, entries: rising(c, r, 1) }], ['accepted']],
    ['origin=one-over', (c, r) => [{ origin: str(129, 'o'), upTo: 0, entries: rising(c, r, 1) }], ['limit-exceeded']],
    ['ts=falling', (c, r) => { const e = rising(c, r, 2, 5); return [{ origin: fakeOrigin(r), upTo: 0, entries: [e[1]!, e[0]!] }] }, ['clock-drift', 'malformed']],
    // Equal timestamps do not cut a segment (only a falling one does): one forged twin used to stall an origin for good (PROTOCOL.md, Decoding rules).
    ['ts=repeated', (c, r) => { const e = rising(c, r, 1); return [{ origin: fakeOrigin(r), upTo: 0, entries: [e[0]!, { ...e[0]!, key: evilKey(r) }] }] }, ['accepted']],
    ['ts=falling.upTo=claimed', (c, r) => { const e = rising(c, r, 2, 5); return [{ origin: fakeOrigin(r), upTo: e[1]!.ts, entries: [e[1]!, e[0]!] }] }, ['clock-drift', 'malformed', 'watermark-refused']],
    ['entries.duplicate-key', (c, r) => { const k = evilKey(r); return [{ origin: fakeOrigin(r), upTo: 0, entries: rising(c, r, 2).map((e) => ({ ...e, key: k })) }] }, ['accepted']],
    ['duplicate-origin', (c, r) => { const o = fakeOrigin(r); return [{ origin: o, upTo: 0, entries: rising(c, r, 1) }, { origin: o, upTo: 0, entries: rising(c, r, 1) }] }, ['accepted', 'clock-drift']],
    ['n=2^32', (_c, r) => [{ origin: fakeOrigin(r), upTo: 0, entries: [], count: 2 ** 32 }], ['limit-exceeded']],
    // maxItemsPerMessage counts every list of a message together (the segment itself is one): either refusal is right.
    ['n=1000000.no-bytes', (_c, r) => [{ origin: fakeOrigin(r), upTo: 0, entries: [], count: 1_000_000 }], ['limit-exceeded', 'truncated']],
    ['n=1000001', (_c, r) => [{ origin: fakeOrigin(r), upTo: 0, entries: [], count: 1_000_001 }], ['limit-exceeded']],
    ['n=2^53', (_c, r) => [{ origin: fakeOrigin(r), upTo: 0, entries: [], count: V53 }], ['malformed']],
    ['n=overstated', (c, r) => [{ origin: fakeOrigin(r), upTo: 0, entries: rising(c, r, 1), count: 3 }], ['truncated']],
  ]
  for (const [en, e, outcome, finding] of entryCases()) {
    // An entry at or below the receiver's watermark of its origin (ts 0 always is) is skipped without a count (PROTOCOL.md, Decoding rules).
    const expect: Outcome[] = en === 'ts=0' ? ['accepted'] : outcome
    // ts=1 is below the watermark of any pooled made-up origin the victim took a write of before, so it
    // would be skipped without a count like ts=0: an origin of its own shows the horizon check.
    const origin = en === 'ts=1' ? freshOrigin : fakeOrigin
    out.push([`entry.${en}`, (c, r) => [{ origin: origin(r), upTo: 0, entries: [e(c, r)] }], expect, finding])
  }
  return out
}

/** Every case template, in a fixed order. */
export function caseTemplates(): CaseTemplate[] {
  const out: CaseTemplate[] = []
  // -- header fields, on every message type --
  for (const type of ALL_TYPES) {
    const T = typeName(type)
    const body = (ctx: AttackContext, r: Random): ((w: RawWriter) => void) => benignBody(type, ctx, r)
    const onType = (field: string, expect: Outcome[], over: (ctx: AttackContext, r: Random) => Partial<RawHeader>, finding?: string): void => {
      out.push(t(`${T}.${field}`, `header.${field.split('=')[0]}`, expect, (c, r) => message(hdr(c, type, r, over(c, r)), body(c, r)), finding ? { finding } : {}))
    }
    // Answers by stream (full state, member lists) may be rate limited. A full state goes only to the
    // requesting member at its own host, which the attacker never is (PROTOCOL.md: unproven-destination).
    const benign: Outcome[] =
      type === MessageType.ResetRequest
        ? ['unproven-destination']
        : ['accepted', ...(type === MessageType.JoinRequest || type === MessageType.Digest ? ['rate-limited' as const] : [])]
    onType('benign', benign, () => ({}))
    for (const [an, av, outcome] of addressValues()) {
      const finding =
        outcome[0] === 'malformed' && (an === 'port0' || an === '[::]:0') ? 'a reply to fromAddress port 0 crashes the process' : undefined
      const expect = !outcome.includes('accepted')
        ? outcome
        : type === MessageType.ResetRequest
          ? [...outcome.filter((o) => o !== 'accepted'), ...benign]
          : [...outcome, ...benign.filter((o) => o !== 'accepted')]
      onType(`fromAddress=${an}`, expect, (c) => ({ fromAddress: av(c) }), finding)
    }
    onType('from=empty', ['malformed'], () => ({ from: '' }))
    onType('from=longest', benign, (_c, r) => ({ from: `${fakeName(r)}-`.padEnd(128, 'f') }))
    onType('from=one-over', ['limit-exceeded'], () => ({ from: str(129, 'f') }))
    onType('from=bad-utf8', ['malformed'], () => ({ from: BAD_UTF8 }))
    onType('from=other-live', benign, (c) => ({ from: c.other.name }))
    // Our own name from another address is a name clash, not a request: nothing is answered or counted.
    onType('from=victim-own', type === MessageType.ResetRequest ? ['accepted'] : benign, (c) => ({ from: c.victim.name }))
    onType('label=other', ['label-mismatch'], () => ({ label: 'another-cluster' }))
    onType('label=longest', ['label-mismatch'], () => ({ label: str(128, 'l') }))
    onType('label=one-over', ['limit-exceeded'], () => ({ label: str(129, 'l') }))
    onType('version=0', ['protocol-version'], () => ({ version: 0 }))
    onType('version=2', ['protocol-version'], () => ({ version: 2 }))
    onType('magic=0x00', ['bad-magic'], () => ({ magic: 0 }))
    onType('magic=sealed', ['unknown-key'], () => ({ magic: 0x68 }))
  }
  for (const code of [0, 15, 31, 32, 255]) {
    out.push(t(`header.type=${code}`, 'header.type', ['unknown-type'], (c, r) => message(hdr(c, code, r), (w) => w.varint(0))))
  }
  out.push(t('header.truncated-in-label', 'header.truncated', ['truncated'], () => Buffer.from([0x67, 1, 8, 5, 0x61])))
  out.push(t('header.label.len=2^53', 'header.label', ['malformed'], () => Buffer.concat([Buffer.from([0x67, 1, 8]), V53.bytes])))
  out.push(t('datagram=oversized', 'header.size', ['oversized'], (c, r) => message(hdr(c, MessageType.Nack, r), (w) => w.varint(1).raw(Buffer.alloc(1500)))))
  out.push(t('datagram=trailing-bytes', 'header.size', ['accepted'], (c, r) => message(hdr(c, MessageType.Nack, r), (w) => w.varint(1).raw(Buffer.alloc(200, 7)))))

  // -- Probe --
  const probe = (vals: number[]) => (c: AttackContext, r: Random) => message(hdr(c, MessageType.Probe, r), (w) => vals.forEach((v) => w.u32(v)))
  out.push(t('Probe.fingerprints=0', 'Probe', ['accepted'], probe([0, 0, 0, 0, 0, 0])))
  out.push(t('Probe.fingerprints=u32max', 'Probe', ['accepted'], probe(Array(6).fill(2 ** 32 - 1) as number[])))
  out.push(t('Probe.body=truncated', 'Probe', ['truncated'], probe([1, 2, 3, 4, 5])))

  // -- Digest (and the page of DeltaDigest) --
  const pageCases: [string, (c: AttackContext, r: Random) => RawPage, Outcome[]][] = [
    ['start=longest', () => ({ start: str(128, 's'), rows: [] }), ['accepted']],
    ['start=one-over', () => ({ start: str(129, 's'), rows: [] }), ['limit-exceeded']],
    ['hasEnd=2', () => ({ start: '', hasEnd: 2, end: 'z', rows: [] }), ['malformed']],
    ['end=empty', () => ({ start: '', end: '', rows: [] }), ['accepted']],
    ['end=one-over', () => ({ start: '', end: str(129, 'e'), rows: [] }), ['limit-exceeded']],
    ['end-before-start', () => ({ start: 'z', end: 'a', rows: [] }), ['accepted']],
    ['count=2^32', () => ({ start: '', rows: [], count: 2 ** 32 }), ['limit-exceeded']],
    ['count=1000001', () => ({ start: '', rows: [], count: 1_000_001 }), ['limit-exceeded']],
    ['count=1000000.no-bytes', () => ({ start: '', rows: [], count: 1_000_000 }), ['truncated']],
    ['count=2^53', () => ({ start: '', rows: [], count: V53 }), ['malformed']],
    ['count=9-bytes', () => ({ start: '', rows: [], count: OVERLONG }), ['malformed']],
    ['rows.duplicate-origin', (c) => ({ start: '', rows: [[c.other.origin, 1], [c.other.origin, SAFE]] }), ['accepted']],
    ['row.origin=one-over', () => ({ start: '', rows: [[str(129, 'o'), 1]] }), ['limit-exceeded']],
    ['row.origin=bad-utf8', () => ({ start: '', rows: [[BAD_UTF8, 1]] }), ['malformed']],
  ]
  for (const [vn, v] of GOOD_VARINTS) {
    pageCases.push([`row.other-origin.wm=${vn}`, (c) => ({ start: '', rows: [[c.other.origin, v]] }), ['accepted']])
    pageCases.push([`row.victim-origin.wm=${vn}`, (c) => ({ start: '', rows: [[c.victim.origin, v]] }), ['accepted']])
  }
  pageCases.push(['row.wm=ahead-of-now', (c) => ({ start: '', rows: [[c.other.origin, hlc(c.nowMs + 10 * c.maxClockDriftMs)]] }), ['accepted']])
  for (const [vn, v] of BAD_VARINTS) pageCases.push([`row.wm=${vn}`, (c) => ({ start: '', rows: [[c.other.origin, v]] }), ['malformed']])
  for (const [pn, p, expect] of pageCases) {
    const exp: Outcome[] = expect.includes('accepted') ? [...expect, 'rate-limited'] : expect
    out.push(t(`Digest.page.${pn}`, 'Digest', exp, (c, r) => message(hdr(c, MessageType.Digest, r), (w) => writePage(w, p(c, r)))))
    out.push(
      t(`DeltaDigest.page.${pn}`, 'DeltaDigest', exp, (c, r) =>
        message(hdr(c, MessageType.DeltaDigest, r), (w) => {
          writePage(w, p(c, r))
          writeSegments(w, [])
        }),
      ),
    )
  }

  // -- segments: DeltaDigest, Delta (datagram and stream) --
  for (const [sn, segs, expect, finding] of segmentCases()) {
    // Claims about the live origins, below the drift bound: a believed push link may already cover them.
    const f = { ...(finding ? { finding } : {}), ...(/^(other|victim)-origin\.upTo=(now|drift-bound)/.test(sn) ? { coverable: true as const } : {}) }
    const exp: Outcome[] = [...expect, ...(expect.includes('accepted') || sn.includes('past-horizon') ? ['rate-limited' as const] : [])]
    out.push(
      t(`DeltaDigest.segment.${sn}`, 'segment', exp, (c, r) =>
        message(hdr(c, MessageType.DeltaDigest, r), (w) => {
          writePage(w, { start: '', end: '', rows: [] })
          writeSegments(w, segs(c, r))
        }),
        f,
      ),
    )
    out.push(t(`Delta.segment.${sn}`, 'segment', expect, (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, segs(c, r))), f))
    out.push(t(`Delta(tcp).segment.${sn}`, 'segment', expect, (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, segs(c, r))), { ...f, transport: 'tcp' }))
  }
  out.push(t('Delta.segments.count=1000001', 'segment', ['limit-exceeded'], (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, [], 1_000_001))))
  out.push(t('Delta.segments.count=2^53', 'segment', ['malformed'], (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, [], V53))))
  out.push(t('Delta.segments.count=overstated', 'segment', ['truncated'], (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, [], 50))))
  const bigEntry = (c: AttackContext, r: Random, n: number): RawEntry => ({ key: evilKey(r), ts: hlc(c.nowMs), value: Buffer.alloc(n, 0x41) })
  out.push(t('Delta(tcp).entry.value=65536', 'segment', ['accepted'], (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, [{ origin: fakeOrigin(r), upTo: 0, entries: [bigEntry(c, r, 65536)] }])), { transport: 'tcp' }))
  out.push(t('Delta(tcp).entry.value=65537', 'segment', ['limit-exceeded'], (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, [{ origin: fakeOrigin(r), upTo: 0, entries: [bigEntry(c, r, 65537)] }])), { transport: 'tcp' }))
  out.push(
    t('Delta(tcp).entries=5000', 'segment', ['accepted'], (c, r) =>
      message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, [{ origin: fakeOrigin(r), upTo: 0, entries: Array.from({ length: 5000 }, (_, i) => ({ key: `evil/bulk/${i}`, ts: hlc(c.nowMs) + i, value: 'b' })) }])),
    { transport: 'tcp' }),
  )
  out.push(t('Delta.entry.value=1200', 'segment', ['accepted'], (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, [{ origin: fakeOrigin(r), upTo: 0, entries: [bigEntry(c, r, 1200)] }]))))
  out.push(t('Delta.entry.value=1400(oversized)', 'segment', ['oversized'], (c, r) => message(hdr(c, MessageType.Delta, r), (w) => writeSegments(w, [{ origin: fakeOrigin(r), upTo: 0, entries: [bigEntry(c, r, 1400)] }]))))

  // -- Push --
  const push = (hops: V, prevTs: V, origin: (c: AttackContext, r: Random) => S, entry: (c: AttackContext, r: Random) => RawEntry) => (c: AttackContext, r: Random) =>
    message(hdr(c, MessageType.Push, r), (w) => {
      w.varint(hops).varint(prevTs).string(origin(c, r))
      writeEntry(w, entry(c, r))
    })
  const nowEntry = (c: AttackContext, r: Random): RawEntry => ({ key: evilKey(r), ts: hlc(c.nowMs), value: 'p' })
  for (const [vn, v] of GOOD_VARINTS) {
    out.push(t(`Push.hops=${vn}`, 'Push', ['accepted'], push(v, 0, (_c, r) => fakeOrigin(r), nowEntry)))
    out.push(t(`Push.prevTs=${vn}`, 'Push', ['accepted'], push(0, v, (_c, r) => fakeOrigin(r), nowEntry)))
  }
  for (const [vn, v] of BAD_VARINTS) {
    out.push(t(`Push.hops=${vn}`, 'Push', ['malformed'], push(v, 0, (_c, r) => fakeOrigin(r), nowEntry)))
    out.push(t(`Push.prevTs=${vn}`, 'Push', ['malformed'], push(0, v, (_c, r) => fakeOrigin(r), nowEntry)))
  }
  out.push(t('Push.origin=empty', 'Push', ['accepted', 'malformed'], push(0, 0, () => '', nowEntry)))
  out.push(t('Push.origin=one-over', 'Push', ['limit-exceeded'], push(0, 0, () => str(129, 'o'), nowEntry)))
  out.push(
    // Writes under a live member's origin (or the receiver's own) come from members only (GossipEngine.vouchesFor).
    t('Push.origin=other-live.ts=drift-bound.prevTs=0', 'Push', ['claim-refused'], push(0, 0, (c) => c.other.origin, (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs + c.maxClockDriftMs - 500), value: 'p' }))),
  )
  out.push(t('Push.origin=victim-own.ts=drift-bound.prevTs=0', 'Push', ['claim-refused'], push(0, 0, (c) => c.victim.origin, (c, r) => ({ key: evilKey(r), ts: hlc(c.nowMs + c.maxClockDriftMs - 500), value: 'p' }))))
  out.push(t('Push.origin=other-live.ts=now.prevTs=0', 'Push', ['claim-refused'], push(0, 0, (c) => c.other.origin, nowEntry)))
  for (const [en, e, expect, finding] of entryCases()) {
    out.push(t(`Push.entry.${en}`, 'Push', expect, push(0, 0, (_c, r) => fakeOrigin(r), e), finding ? { finding } : {}))
  }

  // -- Reset (stream, and as a datagram) --
  const reset =
    (wms: (c: AttackContext, r: Random) => [S, V][], floors: (c: AttackContext, r: Random) => [S, V][], entries: (c: AttackContext, r: Random) => [S, RawEntry][], count?: V) =>
    (c: AttackContext, r: Random): Buffer =>
      message(hdr(c, MessageType.Reset, r), (w) => {
        writeOriginMap(w, wms(c, r))
        writeOriginMap(w, floors(c, r))
        const es = entries(c, r)
        w.varint(count ?? es.length)
        for (const [o, e] of es) {
          w.string(o)
          writeEntry(w, e)
        }
      })
  const none = (): [S, V][] => []
  const noEntries = (): [S, RawEntry][] => []
  const realOrigins = (c: AttackContext, ts: number): [S, V][] => [
    [c.other.origin, ts],
    [c.victim.origin, ts],
  ]
  const forged = 'forged Reset with watermarks and no entries empties the node'
  const resetCases: [string, ReturnType<typeof reset>, Outcome[], string?][] = [
    ['empty', reset(none, none, noEntries), ['accepted', 'past-horizon', 'unproven-destination']],
    ['watermarks=now.no-entries', reset((c) => realOrigins(c, hlc(c.nowMs)), none, noEntries), ['watermark-refused'], forged],
    ['watermarks=drift-bound.no-entries', reset((c) => realOrigins(c, hlc(c.nowMs + c.maxClockDriftMs - 500)), none, noEntries), ['watermark-refused'], forged],
    ['watermarks=ahead.no-entries', reset((c) => realOrigins(c, hlc(c.nowMs + 100 * c.maxClockDriftMs)), none, noEntries), ['watermark-refused'], forged],
    ['watermarks=2^53-1', reset((c) => realOrigins(c, SAFE), none, noEntries), ['watermark-refused'], forged],
    ['watermarks=2^53', reset((c) => realOrigins(c, V53 as unknown as number), none, noEntries), ['malformed']],
    ['gcFloors=now', reset(none, (c) => realOrigins(c, hlc(c.nowMs)), noEntries), ['watermark-refused'], forged],
    ['gcFloors=ahead', reset(none, (c) => realOrigins(c, hlc(c.nowMs + 100 * c.maxClockDriftMs)), noEntries), ['watermark-refused'], forged],
    ['watermarks.duplicate-origin', reset((c) => [[c.other.origin, 1], [c.other.origin, hlc(c.nowMs)]], none, noEntries), ['watermark-refused'], forged],
    [
      'fake-origin.proven',
      (c, r) => {
        const o = fakeOrigin(r)
        const e = nowEntry(c, r)
        return reset(() => [[o, e.ts]], none, () => [[o, e]])(c, r)
      },
      ['watermark-refused'],
    ],
    [
      'entries.duplicate-key',
      (c, r) => {
        const o = fakeOrigin(r)
        const k = evilKey(r)
        return reset(none, none, () => [[o, { key: k, ts: hlc(c.nowMs), value: 'a' }], [o, { key: k, ts: hlc(c.nowMs) + 1, value: 'b' }]])(c, r)
      },
      ['accepted'],
    ],
    ['entries.count=1000001', reset(none, none, noEntries, 1_000_001), ['limit-exceeded']],
    ['entries.count=overstated', reset(none, none, noEntries, 100), ['truncated']],
    ['watermarks.count=2^53', (c, r) => message(hdr(c, MessageType.Reset, r), (w) => writeOriginMap(w, [], V53)), ['malformed']],
    ['entry.honest-key.ts=past-drift-bound', reset(none, none, (c, r) => [[c.other.origin, { key: c.honestKeys[randomInt(r, c.honestKeys.length)] ?? 'k', ts: hlc(c.nowMs + c.maxClockDriftMs + 5000), value: 'stolen' }]]), ['clock-drift']],
    ['entry.expiresAt=max-ttl+1', reset(none, none, (c, r) => [[fakeOrigin(r), { key: evilKey(r), ts: hlc(c.nowMs), value: 'v', expiresAt: c.nowMs + MAX_TTL_MS + 1 }]]), ['malformed'], 'TTL expiry past the varint field'],
  ]
  for (const [rn, build, expect, finding] of resetCases) {
    const f = finding ? { finding } : {}
    // A vector behind the receiver's gc floors (any origin it collected a tombstone of and the vector lacks) refuses the
    // whole state (past-horizon) and resets the sender instead, which an outsider is never sent (unproven-destination).
    const exp: Outcome[] = [...expect, 'past-horizon', 'unproven-destination', 'rate-limited']
    out.push(t(`Reset(tcp).${rn}`, 'Reset', exp, build, { ...f, transport: 'tcp' }))
    out.push(t(`Reset.${rn}`, 'Reset', exp, build, f))
  }

  // -- Ping, Ack, PingReq, Nack --
  const ping = (s: V, target: (c: AttackContext) => S, ups: (c: AttackContext, r: Random) => RawUpdate[], count?: V) => (c: AttackContext, r: Random) =>
    message(hdr(c, MessageType.Ping, r), (w) => {
      w.varint(s).string(target(c))
      const us = ups(c, r)
      writeUpdates(w, us, count ?? us.length)
    })
  const noUps = (): RawUpdate[] => []
  for (const [vn, v] of GOOD_VARINTS) {
    out.push(t(`Ping.seq=${vn}`, 'Ping', ['accepted'], ping(v, (c) => c.victim.name, noUps)))
    out.push(t(`Ack.seq=${vn}`, 'Ack', ['accepted'], (c, r) => message(hdr(c, MessageType.Ack, r), (w) => writeUpdates(w.varint(v).varint(1), []))))
    out.push(t(`Ack.generation=${vn}`, 'Ack', ['accepted'], (c, r) => message(hdr(c, MessageType.Ack, r), (w) => writeUpdates(w.varint(seq(r)).varint(v), []))))
    out.push(t(`Nack.seq=${vn}`, 'Nack', ['accepted'], (c, r) => message(hdr(c, MessageType.Nack, r), (w) => w.varint(v))))
    out.push(t(`PingReq.seq=${vn}`, 'PingReq', ['accepted'], (c, r) => message(hdr(c, MessageType.PingReq, r), (w) => writeUpdates(w.varint(v).string(c.other.name).string(c.other.address), []))))
  }
  for (const [vn, v] of BAD_VARINTS) {
    out.push(t(`Ping.seq=${vn}`, 'Ping', ['malformed'], ping(v, (c) => c.victim.name, noUps)))
    out.push(t(`Ack.generation=${vn}`, 'Ack', ['malformed'], (c, r) => message(hdr(c, MessageType.Ack, r), (w) => writeUpdates(w.varint(seq(r)).varint(v), []))))
    out.push(t(`Nack.seq=${vn}`, 'Nack', ['malformed'], (c, r) => message(hdr(c, MessageType.Nack, r), (w) => w.varint(v))))
  }
  out.push(t('Ping.target=other-live', 'Ping', ['accepted'], ping(1, (c) => c.other.name, noUps)))
  out.push(t('Ping.target=empty', 'Ping', ['accepted'], ping(1, () => '', noUps)))
  out.push(t('Ping.target=one-over', 'Ping', ['limit-exceeded'], ping(1, () => str(129, 't'), noUps)))
  out.push(t('Ping.updates.count=65', 'Ping', ['limit-exceeded'], ping(1, (c) => c.victim.name, noUps, 65)))
  out.push(t('Ping.updates.count=2^53', 'Ping', ['malformed'], ping(1, (c) => c.victim.name, noUps, V53)))
  out.push(t('Ping.updates.count=overstated', 'Ping', ['truncated'], ping(1, (c) => c.victim.name, noUps, 10)))
  out.push(
    t('Ping.updates.count=64.dead-unknowns', 'Ping', ['accepted'], ping(1, (c) => c.victim.name, (_c, r) => Array.from({ length: 64 }, () => ({ status: MemberStatus.Dead, name: `u${randomInt(r, 1e4)}`, incarnation: 1, by: 'm' })))),
  )
  const pingReq = (target: (c: AttackContext) => S, addr: (c: AttackContext) => S) => (c: AttackContext, r: Random) =>
    message(hdr(c, MessageType.PingReq, r), (w) => writeUpdates(w.varint(seq(r)).string(target(c)).string(addr(c)), []))
  for (const [an, av, outcome] of addressValues()) {
    const finding = an === 'port0' || an === '[::]:0' ? 'the helper pings targetAddress port 0: crash' : undefined
    out.push(t(`PingReq.targetAddress=${an}`, 'PingReq', outcome, pingReq((c) => c.other.name, av), finding ? { finding } : {}))
  }
  out.push(t('PingReq.targetAddress=empty', 'PingReq', ['malformed'], pingReq((c) => c.other.name, () => '')))
  out.push(t('PingReq.target=victim-own', 'PingReq', ['accepted'], pingReq((c) => c.victim.name, (c) => c.victim.address)))
  out.push(t('PingReq.target=one-over', 'PingReq', ['limit-exceeded'], pingReq(() => str(129, 't'), (c) => c.other.address)))
  out.push(t('PingReq.target=fake.at-other-address', 'PingReq', ['accepted'], pingReq(() => 'ghost', (c) => c.other.address)))

  // -- membership updates: in MemberGossip, and piggybacked on Ping, Ack and PingReq --
  for (const [un, u, expect, finding] of updateCases()) {
    const f = {
      ...(finding ? { finding } : {}),
    }
    const fam = un.startsWith('alive') || un.startsWith('name') ? 'fake-members' : 'claims'
    out.push(t(`MemberGossip.update.${un}`, fam, expect, (c, r) => message(hdr(c, MessageType.MemberGossip, r), (w) => writeUpdates(w, [u(c, r)])), f))
    out.push(t(`Ping.update.${un}`, fam, expect, (c, r) => ping(seq(r), (cc) => cc.victim.name, (cc, rr) => [u(cc, rr)])(c, r), f))
    out.push(t(`Ack.update.${un}`, fam, expect, (c, r) => message(hdr(c, MessageType.Ack, r), (w) => writeUpdates(w.varint(seq(r)).varint(1), [u(c, r)])), f))
    out.push(t(`PingReq.update.${un}`, fam, expect, (c, r) => message(hdr(c, MessageType.PingReq, r), (w) => writeUpdates(w.varint(seq(r)).string(c.other.name).string(c.other.address), [u(c, r)])), f))
    out.push(t(`MemberSync.member.${un}`, fam, expect, (c, r) => message(hdr(c, MessageType.MemberSync, r), (w) => writeUpdates(w.u8(0), [u(c, r)])), f))
  }
  const fakes = (c: AttackContext, r: Random, n: number): RawUpdate[] =>
    Array.from({ length: n }, () => ({ status: MemberStatus.Alive, name: `f${randomInt(r, 1e9)}`, incarnation: 1, address: nobody, generation: c.nowMs }))
  out.push(t('MemberGossip.updates=30-fake-alive', 'fake-members', ['accepted', 'claim-refused'], (c, r) => message(hdr(c, MessageType.MemberGossip, r), (w) => writeUpdates(w, fakes(c, r, 30))), { flood: true }))
  out.push(t('MemberGossip.updates.count=65', 'claims', ['limit-exceeded'], (c, r) => message(hdr(c, MessageType.MemberGossip, r), (w) => writeUpdates(w, [], 65))))

  // -- MemberSync --
  const sync = (reply: number, ups: (c: AttackContext, r: Random) => RawUpdate[], count?: V) => (c: AttackContext, r: Random) =>
    message(hdr(c, MessageType.MemberSync, r), (w) => {
      const us = ups(c, r)
      writeUpdates(w.u8(reply), us, count ?? us.length)
    })
  out.push(t('MemberSync.reply=1', 'MemberSync', ['accepted', 'rate-limited'], sync(1, noUps)))
  out.push(t('MemberSync.reply=2', 'MemberSync', ['malformed'], sync(2, noUps)))
  out.push(t('MemberSync.reply=255', 'MemberSync', ['malformed'], sync(255, noUps)))
  out.push(t('MemberSync.count=1000001', 'MemberSync', ['limit-exceeded'], sync(0, noUps, 1_000_001)))
  out.push(t('MemberSync.count=2^53', 'MemberSync', ['malformed'], sync(0, noUps, V53)))
  out.push(t('MemberSync.count=overstated', 'MemberSync', ['truncated'], sync(0, noUps, 5)))
  out.push(
    t('MemberSync(tcp).members=5000-fake-alive', 'fake-members', ['claim-refused'], sync(0, (c, r) => fakes(c, r, 5000)), {
      transport: 'tcp',
      finding: 'a flood of fake alive members blocks the event loop (quadratic queue)',
      flood: true,
    }),
  )
  out.push(
    t('MemberSync(tcp).members=64.claims-about-live', 'claims', ['accepted'], sync(0, (c) => [
      { status: 0, name: c.other.name, incarnation: c.other.incarnation, address: c.other.address, generation: 1 },
      { status: 0, name: c.victim.name, incarnation: c.victim.incarnation, address: c.victim.address, generation: 1 },
    ]), { transport: 'tcp' }),
  )
  return out
}

/**
 * A seeded source of hostile cases: `GRAPEVINE_SEED` replays the same run.
 * `next` draws a template (among those not excluded) and builds a fresh
 * instance of it for the context.
 */
export class HostilePeer {
  readonly templates: CaseTemplate[]
  private readonly r: SeededRandom
  constructor(readonly seed: number) {
    this.templates = caseTemplates()
    this.r = new SeededRandom(seed)
  }
  get random(): Random {
    return this.r
  }
  build(template: CaseTemplate, ctx: AttackContext): HostileCase {
    return { template, bytes: template.build(ctx, this.r) }
  }
  next(ctx: AttackContext, pool: readonly CaseTemplate[] = this.templates): HostileCase {
    return this.build(pool[randomInt(this.r, pool.length)]!, ctx)
  }
}

/**
 * One honest message of each type, written by the raw writer, with the same
 * message for the real encoder: a test asserts the bytes are equal, so the
 * raw layout is the real one.
 */
export function honestBaselines(): { type: MessageType; raw: Buffer; real: Message }[] {
  const h = { label: 'L', from: 'n1', fromAddress: '127.0.0.1:7946' }
  const rh = (type: MessageType): RawHeader => ({ type, ...h })
  const entry = { key: 'k', ts: 1_700_000_000_000 * 1024, origin: 'n1~abc', value: 'v', expiresAt: 1_700_000_100_000 }
  const rawEntry: RawEntry = { key: 'k', ts: entry.ts, value: 'v', expiresAt: entry.expiresAt }
  const upd = { status: MemberStatus.Alive, name: 'n2', incarnation: 3, address: '127.0.0.1:1', generation: 5, tags: { a: 'b' }, by: '' }
  const rawUpd: RawUpdate = { status: 0, name: 'n2', incarnation: 3, address: '127.0.0.1:1', generation: 5, tags: [['a', 'b']] }
  const sus = { status: MemberStatus.Suspect, name: 'n3', incarnation: 4, address: '', generation: 0, tags: {}, by: 'n1' }
  const rawSus: RawUpdate = { status: 1, name: 'n3', incarnation: 4, by: 'n1' }
  const page = { start: 'a', end: 'z', rows: new Map([['n1~abc', 7]]) }
  const rawPage: RawPage = { start: 'a', end: 'z', rows: [['n1~abc', 7]] }
  const seg = { origin: 'n1~abc', upTo: entry.ts, entries: [entry] }
  const rawSeg: RawSegment = { origin: 'n1~abc', upTo: entry.ts, entries: [rawEntry] }
  const T = MessageType
  return [
    { type: T.Probe, raw: message(rh(T.Probe), (w) => [1, 2, 3, 4, 5, 6].forEach((v) => w.u32(v))), real: { ...h, type: T.Probe, syncHi: 1, syncLo: 2, wmHi: 3, wmLo: 4, memberHi: 5, memberLo: 6 } },
    { type: T.Digest, raw: message(rh(T.Digest), (w) => writePage(w, rawPage)), real: { ...h, type: T.Digest, page } },
    { type: T.DeltaDigest, raw: message(rh(T.DeltaDigest), (w) => (writePage(w, rawPage), writeSegments(w, [rawSeg]))), real: { ...h, type: T.DeltaDigest, page, segments: [seg] } },
    { type: T.Delta, raw: message(rh(T.Delta), (w) => writeSegments(w, [rawSeg])), real: { ...h, type: T.Delta, segments: [seg] } },
    { type: T.Push, raw: message(rh(T.Push), (w) => (w.varint(2).varint(9).string('n1~abc'), writeEntry(w, rawEntry))), real: { ...h, type: T.Push, hops: 2, prevTs: 9, entry } },
    {
      type: T.Reset,
      raw: message(rh(T.Reset), (w) => {
        writeOriginMap(w, [['n1~abc', entry.ts]])
        writeOriginMap(w, [['n1~abc', 5]])
        w.varint(1).string('n1~abc')
        writeEntry(w, rawEntry)
      }),
      real: { ...h, type: T.Reset, watermarks: new Map([['n1~abc', entry.ts]]), gcFloors: new Map([['n1~abc', 5]]), entries: [entry] },
    },
    { type: T.ResetRequest, raw: message(rh(T.ResetRequest)), real: { ...h, type: T.ResetRequest } },
    { type: T.Ping, raw: message(rh(T.Ping), (w) => writeUpdates(w.varint(7).string('n2'), [rawUpd, rawSus])), real: { ...h, type: T.Ping, seq: 7, target: 'n2', updates: [upd, sus] } },
    { type: T.Ack, raw: message(rh(T.Ack), (w) => writeUpdates(w.varint(7).varint(8), [rawSus])), real: { ...h, type: T.Ack, seq: 7, generation: 8, updates: [sus] } },
    {
      type: T.PingReq,
      raw: message(rh(T.PingReq), (w) => writeUpdates(w.varint(7).string('n2').string('127.0.0.1:2'), [rawUpd])),
      real: { ...h, type: T.PingReq, seq: 7, target: 'n2', targetAddress: '127.0.0.1:2', updates: [upd] },
    },
    { type: T.Nack, raw: message(rh(T.Nack), (w) => w.varint(300)), real: { ...h, type: T.Nack, seq: 300 } },
    { type: T.MemberGossip, raw: message(rh(T.MemberGossip), (w) => writeUpdates(w, [rawSus])), real: { ...h, type: T.MemberGossip, updates: [sus] } },
    { type: T.JoinRequest, raw: message(rh(T.JoinRequest)), real: { ...h, type: T.JoinRequest } },
    { type: T.MemberSync, raw: message(rh(T.MemberSync), (w) => writeUpdates(w.u8(1), [rawUpd])), real: { ...h, type: T.MemberSync, reply: true, members: [upd] } },
  ]
}
