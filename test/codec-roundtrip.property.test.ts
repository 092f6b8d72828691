/**
 * Wire codec properties: exact round trips of every message type with
 * arbitrary (unicode, binary, boundary-sized) contents within DEFAULT_LIMITS;
 * hostile and damaged input only ever yields a message or a DecodeError; and
 * every limit is enforced at its exact boundary.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { Writer } from '../src/codec/bytes.js'
import { DEFAULT_LIMITS, type Limits, MAX_TTL_MS } from '../src/codec/limits.js'
import { physicalMsOf } from '../src/state/hlc.js'
import {
  type DigestPage,
  MAX_PIGGYBACK_UPDATES,
  type Header,
  type Message,
  MessageType,
  type Segment,
  decodeMessage,
  encodeHeader,
  encodeMessage,
  headerSize,
} from '../src/codec/messages.js'
import { DecodeError, type DropReason } from '../src/errors.js'
import type { Entry } from '../src/state/entry.js'
import { type MemberUpdate, MemberStatus, NO_TAGS, type Tags, aliveUpdate, claimUpdate } from '../src/membership/member.js'
import { tagsEncodedSize } from '../src/codec/member-codec.js'

/** One tag whose encoding takes exactly `bytes` bytes. */
function tagsOfSize(bytes: number): Tags {
  for (let len = bytes; len >= 0; len--) {
    const t = { k: 'v'.repeat(len) }
    if (tagsEncodedSize(t) === bytes) return t
  }
  throw new Error(`no tag of ${bytes} bytes`)
}

const L = DEFAULT_LIMITS
const STREAM = L.maxStreamBytes

const DROP_REASONS: readonly DropReason[] = [
  'truncated',
  'oversized',
  'bad-magic',
  'protocol-version',
  'unknown-type',
  'label-mismatch',
  'malformed',
  'limit-exceeded',
  'clock-drift',
  'past-horizon',
]

// ---- arbitraries ------------------------------------------------------------

/** fc.record builds null-prototype objects; the decoder builds plain ones. */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model).map((r) => ({ ...r }) as T)
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8')

/** Cuts a string at a code point boundary so it takes at most `max` UTF-8 bytes. */
function fitUtf8(s: string, max: number): string {
  let out = ''
  let n = 0
  for (const cp of s) {
    const size = utf8Bytes(cp)
    if (n + size > max) break
    out += cp
    n += size
  }
  return out
}

/**
 * Well-formed strings of at most `maxBytes` UTF-8 bytes: single graphemes,
 * composite graphemes (emoji sequences, combining marks), ASCII, and strings
 * filled to exactly the limit with 1-, 2-, 3- and 4-byte characters.
 */
function text(maxBytes: number, minLength = 0, maxLength = 24): fc.Arbitrary<string> {
  const filled = fc.constantFrom('k', 'é', '€', '🍇').map((c) => c.repeat(Math.floor(maxBytes / utf8Bytes(c))))
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.string({ unit: 'grapheme', minLength, maxLength }) },
      { weight: 2, arbitrary: fc.string({ unit: 'grapheme-composite', minLength, maxLength }) },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength, maxLength }) },
      { weight: 1, arbitrary: filled },
    )
    .map((s) => fitUtf8(s, maxBytes))
    .filter((s) => s.length >= minLength)
}

const name = text(L.maxNameBytes, 1, 12)
const ts = fc.oneof(
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.nat({ max: 300 }),
  fc.constantFrom(0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 49, Number.MAX_SAFE_INTEGER),
)
// Any safe integer encodes and decodes; the ceiling on claims is membership's (incarnationCeiling).
const incarnation = fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(0, 1, 2 ** 52, Number.MAX_SAFE_INTEGER))
const u32 = fc.oneof(fc.nat({ max: 0xffffffff }), fc.constantFrom(0, 0xffffffff))

const value: fc.Arbitrary<Entry['value']> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: text(L.maxValueBytes, 0, 40) },
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 60 }) },
  // Values at and just under the limit.
  { weight: 1, arbitrary: fc.integer({ min: L.maxValueBytes - 2, max: L.maxValueBytes }).map((n) => new Uint8Array(n).fill(0xab)) },
  { weight: 1, arbitrary: fc.constant('€'.repeat(Math.floor(L.maxValueBytes / 3))) },
)

/** An expiry a writer may set: at most MAX_TTL_MS after the write (the reader refuses later ones). */
function withinTtl(e: Entry): Entry {
  if (e.expiresAt === undefined) return e
  return { ...e, expiresAt: Math.min(e.expiresAt, physicalMsOf(e.ts) + MAX_TTL_MS) }
}

function entryOf(origin: fc.Arbitrary<string>): fc.Arbitrary<Entry> {
  return rec({
    key: text(L.maxKeyBytes, 1, 16),
    ts,
    origin,
    value,
    expiresAt: fc.option(ts, { nil: undefined }),
  }).map(withinTtl)
}

const header: fc.Arbitrary<Header> = rec({ label: text(L.maxLabelBytes, 0, 8), from: name, fromAddress: text(L.maxNameBytes, 0, 21) })

const originMap = fc.uniqueArray(fc.tuple(name, ts), { maxLength: 6, selector: ([o]) => o }).map((rows) => new Map(rows))

const page: fc.Arbitrary<DigestPage> = rec({
  start: text(L.maxNameBytes, 0, 8),
  end: fc.option(text(L.maxNameBytes, 0, 8), { nil: undefined }),
  rows: originMap,
})

const segment: fc.Arbitrary<Segment> = name.chain((origin) =>
  rec({ origin: fc.constant(origin), upTo: ts, entries: fc.array(entryOf(fc.constant(origin)), { maxLength: 4 }) }),
)
const segments = fc.array(segment, { maxLength: 4 })

const tags: fc.Arbitrary<Tags> = fc
  .dictionary(text(20, 1, 4), text(20, 0, 6), { maxKeys: 4 })
  .map((t) => (Object.keys(t).length === 0 ? NO_TAGS : Object.freeze({ ...t })))
const update: fc.Arbitrary<MemberUpdate> = fc.oneof(
  rec({ status: fc.constant(MemberStatus.Alive), name, incarnation, address: text(L.maxNameBytes, 1, 21), generation: ts, tags, by: fc.constant('') }),
  rec({
    status: fc.constantFrom(MemberStatus.Suspect, MemberStatus.Dead, MemberStatus.Left),
    name,
    incarnation,
    address: fc.constant(''),
    generation: fc.constant(0),
    tags: fc.constant(NO_TAGS),
    by: name,
  }),
)
const updates = fc.array(update, { maxLength: 5 })

const bodies = {
  [MessageType.Probe]: rec({
    type: fc.constant(MessageType.Probe as const),
    syncHi: u32,
    syncLo: u32,
    wmHi: u32,
    wmLo: u32,
    memberHi: u32,
    memberLo: u32,
  }),
  [MessageType.Digest]: rec({ type: fc.constant(MessageType.Digest as const), page }),
  [MessageType.DeltaDigest]: rec({ type: fc.constant(MessageType.DeltaDigest as const), page, segments }),
  [MessageType.Delta]: rec({ type: fc.constant(MessageType.Delta as const), segments }),
  [MessageType.Push]: rec({ type: fc.constant(MessageType.Push as const), hops: ts, prevTs: ts, entry: entryOf(name) }),
  [MessageType.ResetRequest]: rec({ type: fc.constant(MessageType.ResetRequest as const) }),
  [MessageType.Reset]: rec({
    type: fc.constant(MessageType.Reset as const),
    watermarks: originMap,
    gcFloors: originMap,
    entries: fc.array(entryOf(name), { maxLength: 6 }),
  }),
  [MessageType.Ping]: rec({ type: fc.constant(MessageType.Ping as const), seq: ts, target: name, updates }),
  [MessageType.Ack]: rec({ type: fc.constant(MessageType.Ack as const), seq: ts, generation: ts, updates }),
  [MessageType.PingReq]: rec({
    type: fc.constant(MessageType.PingReq as const),
    seq: ts,
    target: name,
    targetAddress: text(L.maxNameBytes, 1, 21),
    updates,
  }),
  [MessageType.Nack]: rec({ type: fc.constant(MessageType.Nack as const), seq: ts }),
  [MessageType.MemberGossip]: rec({ type: fc.constant(MessageType.MemberGossip as const), updates }),
  [MessageType.JoinRequest]: rec({ type: fc.constant(MessageType.JoinRequest as const) }),
  [MessageType.MemberSync]: rec({ type: fc.constant(MessageType.MemberSync as const), reply: fc.boolean(), members: updates }),
}

function messageOf(type: MessageType): fc.Arbitrary<Message> {
  return fc.tuple(header, bodies[type]).map(([h, b]) => ({ ...h, ...b }) as Message)
}

const ALL_TYPES = Object.keys(bodies).map(Number) as MessageType[]
const anyMessage = fc.oneof(...ALL_TYPES.map(messageOf))

/** Messages small enough to try every truncation of (values of at most 60 bytes). */
const smallValue: fc.Arbitrary<Entry['value']> = fc.oneof(fc.constant(undefined), text(60, 0, 10), fc.uint8Array({ maxLength: 20 }))
const smallEntry = (origin: fc.Arbitrary<string>): fc.Arbitrary<Entry> =>
  rec({ key: text(40, 1, 6), ts, origin, value: smallValue, expiresAt: fc.option(ts, { nil: undefined }) }).map(withinTtl)
const smallSegments = fc.array(
  name.chain((origin) => rec({ origin: fc.constant(origin), upTo: ts, entries: fc.array(smallEntry(fc.constant(origin)), { maxLength: 3 }) })),
  { maxLength: 3 },
)
const smallMessage: fc.Arbitrary<Message> = fc.oneof(
  messageOf(MessageType.Probe),
  messageOf(MessageType.Digest),
  fc.tuple(header, page, smallSegments).map(([h, p, s]) => ({ ...h, type: MessageType.DeltaDigest as const, page: p, segments: s })),
  fc.tuple(header, smallSegments).map(([h, s]) => ({ ...h, type: MessageType.Delta as const, segments: s })),
  fc.tuple(header, ts, ts, smallEntry(name)).map(([h, hops, prevTs, entry]) => ({ ...h, type: MessageType.Push as const, hops, prevTs, entry })),
  messageOf(MessageType.ResetRequest),
  fc
    .tuple(header, originMap, originMap, fc.array(smallEntry(name), { maxLength: 4 }))
    .map(([h, watermarks, gcFloors, entries]) => ({ ...h, type: MessageType.Reset as const, watermarks, gcFloors, entries })),
)

// ---- helpers ----------------------------------------------------------------

function isDropWith(reason: DropReason): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof DecodeError, `expected DecodeError, got ${String(e)}`)
    assert.equal(e.reason, reason, e.message)
    return true
  }
}

/**
 * Decodes hostile bytes: returns the message, or undefined when it is
 * dropped with a DecodeError of a known reason. Any other exception fails,
 * and so does a DecodeError that merely wraps an internal error (the
 * decoder's defensive catch-all turning a RangeError into 'malformed').
 */
function decodeOrDrop(bytes: Buffer, limits: Limits = L, maxBytes = STREAM): Message | undefined {
  try {
    return decodeMessage(bytes, limits, maxBytes)
  } catch (err) {
    assert.ok(err instanceof DecodeError, `decoder threw a non-DecodeError: ${String(err)}`)
    assert.ok(DROP_REASONS.includes(err.reason), `unknown drop reason ${String(err.reason)}`)
    assert.ok(!/^\w*Error\b/.test(err.message), `an internal error reached the catch-all: ${err.message}`)
    return undefined
  }
}

/** The raw bytes of a Push whose key is `keyBytes` verbatim (possibly not UTF-8). */
function rawPush(keyBytes: Uint8Array, ts = 1): Buffer {
  const w = new Writer()
  encodeHeader(w, MessageType.Push, { label: '', from: 'n', fromAddress: '' })
  w.varint(0).varint(0).string('o~1')
  w.bytes(keyBytes).varint(ts).u8(1).string('v')
  return w.finish()
}

// ---- tests ------------------------------------------------------------------

describe('codec round trip', () => {
  for (const type of ALL_TYPES) {
    test(`${MessageType[type]} round-trips exactly and re-encodes to the same bytes`, () => {
      fc.assert(
        fc.property(messageOf(type), (m) => {
          const bytes = encodeMessage(m)
          const decoded = decodeMessage(bytes, L, STREAM)
          assert.deepEqual(decoded, m)
          assert.ok(encodeMessage(decoded).equals(bytes), 'canonical encoding')
          if (bytes.length <= L.maxPacketBytes) assert.deepEqual(decodeMessage(bytes, L, L.maxPacketBytes), m)
        }),
        { numRuns: type === MessageType.ResetRequest ? 50 : 250 },
      )
    })
  }

  test('decoded values keep their kind: bytes stay Uint8Array, strings stay strings, empty ones too', () => {
    for (const v of ['', new Uint8Array(0), '0', new Uint8Array([0x30])]) {
      const entry: Entry = { key: 'k', ts: 1, origin: 'o', value: v, expiresAt: 0 }
      const m = decodeMessage(encodeMessage({ label: '', from: 'a', fromAddress: '', type: MessageType.Push, hops: 0, prevTs: 0, entry }), L, 1400)
      assert.equal(m.type, MessageType.Push)
      if (m.type !== MessageType.Push) return
      assert.equal(typeof m.entry.value, typeof v)
      assert.equal(m.entry.value instanceof Uint8Array, v instanceof Uint8Array)
      assert.equal(m.entry.expiresAt, 0, 'an expiry of 0 is not confused with no expiry')
    }
  })

  test('decoded byte values do not alias the input buffer', () => {
    const entry: Entry = { key: 'k', ts: 1, origin: 'o', value: new Uint8Array([1, 2, 3]), expiresAt: undefined }
    const bytes = encodeMessage({ label: '', from: 'a', fromAddress: '', type: MessageType.Push, hops: 0, prevTs: 0, entry })
    const m = decodeMessage(bytes, L, 1400)
    bytes.fill(0)
    assert.ok(m.type === MessageType.Push)
    assert.deepEqual(m.entry.value, new Uint8Array([1, 2, 3]))
  })
})

describe('codec under hostile input', () => {
  test('random bytes decode or drop with a DecodeError, nothing else', () => {
    const prefix = fc.oneof(
      fc.constant(Buffer.alloc(0)),
      fc.constant(Buffer.from([0x67])),
      fc.constant(Buffer.from([0x67, 1])),
      fc.integer({ min: 0, max: 9 }).map((t) => Buffer.from([0x67, 1, t])),
    )
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 160 }), (p, raw) => {
        decodeOrDrop(Buffer.concat([p, raw]))
      }),
      { numRuns: 15_000 },
    )
  })

  test('every proper prefix of a valid encoding is dropped as truncated', () => {
    fc.assert(
      fc.property(smallMessage, (m) => {
        const bytes = encodeMessage(m)
        for (let len = 0; len < bytes.length; len++) {
          let reason: string | undefined
          try {
            decodeMessage(bytes.subarray(0, len), L, STREAM)
          } catch (err) {
            reason = err instanceof DecodeError ? err.reason : String(err)
          }
          assert.equal(reason, 'truncated', `prefix of ${len}/${bytes.length} bytes`)
        }
      }),
      { numRuns: 300 },
    )
  })

  test('valid encodings with bytes flipped decode or drop with a DecodeError, nothing else', () => {
    fc.assert(
      fc.property(
        smallMessage,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        (m, flips) => {
          const bytes = Buffer.from(encodeMessage(m))
          for (const [at, x] of flips) bytes[at % bytes.length] = bytes[at % bytes.length]! ^ x
          const decoded = decodeOrDrop(bytes)
          if (decoded !== undefined) {
            // Whatever is accepted is a message the codec can carry on: it
            // re-encodes within the same limits and decodes to itself.
            assert.deepEqual(decodeMessage(encodeMessage(decoded), L, STREAM), decoded)
          }
        },
      ),
      { numRuns: 3000 },
    )
  })

  test('valid encodings with bytes appended decode to the same message (trailing bytes are ignored)', () => {
    fc.assert(
      fc.property(smallMessage, fc.uint8Array({ minLength: 1, maxLength: 16 }), (m, extra) => {
        assert.deepEqual(decodeMessage(Buffer.concat([encodeMessage(m), extra]), L, STREAM), m)
      }),
      { numRuns: 1000 },
    )
  })

  test('counts that claim more items than bytes remain are dropped without allocating them', () => {
    const empty = encodeMessage({ label: '', from: 'a', fromAddress: '', type: MessageType.Delta, segments: [] })
    // Replace the segment count (the last byte) with 999,999 (within maxItemsPerMessage).
    const hostile = Buffer.concat([empty.subarray(0, -1), Buffer.from([0xbf, 0x84, 0x3d])])
    assert.throws(() => decodeMessage(hostile, L, 1400), isDropWith('truncated'))
    // A varint longer than 8 bytes or beyond 2^53 is malformed.
    const long = Buffer.concat([empty.subarray(0, -1), Buffer.alloc(9, 0xff)])
    assert.throws(() => decodeMessage(long, L, 1400), isDropWith('malformed'))
    const unsafe = Buffer.concat([empty.subarray(0, -1), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10])])
    assert.throws(() => decodeMessage(unsafe, L, 1400), isDropWith('malformed'))
  })

  test('invalid UTF-8 is refused, so anything the decoder accepts re-encodes within the same limits', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: L.maxKeyBytes }),
          fc.uint8Array({ minLength: 100, maxLength: L.maxKeyBytes }),
          // Valid UTF-8 with one byte damaged.
          fc.tuple(text(L.maxKeyBytes, 1, 40), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([s, at, x]) => {
            const b = Buffer.from(s, 'utf8')
            b[at % b.length] = b[at % b.length]! ^ x
            return new Uint8Array(b)
          }),
        ),
        (keyBytes) => {
          const decoded = decodeOrDrop(rawPush(keyBytes), L, L.maxPacketBytes)
          if (decoded === undefined) return
          assert.ok(decoded.type === MessageType.Push)
          assert.ok(utf8Bytes(decoded.entry.key) <= L.maxKeyBytes, `accepted key re-encodes to ${utf8Bytes(decoded.entry.key)} bytes`)
          assert.deepEqual(decodeMessage(encodeMessage(decoded), L, L.maxPacketBytes), decoded)
        },
      ),
      { numRuns: 2000 },
    )
    // One lone continuation byte (1 byte, would re-encode as 3) is refused.
    assert.throws(() => decodeMessage(rawPush(new Uint8Array([0x80])), L, L.maxPacketBytes), isDropWith('malformed'))
    // 86 of them fit the 256-byte key limit but would re-encode to 258 bytes.
    assert.throws(() => decodeMessage(rawPush(new Uint8Array(86).fill(0xff)), L, L.maxPacketBytes), isDropWith('malformed'))
    // A real U+FFFD in valid UTF-8 is fine.
    const ok = decodeMessage(rawPush(Buffer.from('a\ufffdb', 'utf8')), L, L.maxPacketBytes)
    assert.ok(ok.type === MessageType.Push && ok.entry.key === 'a\ufffdb')
  })
})

describe('codec limits', () => {
  test('a message longer than maxBytes is dropped as oversized; exactly maxBytes is accepted', () => {
    fc.assert(
      fc.property(anyMessage, (m) => {
        const bytes = encodeMessage(m)
        assert.throws(() => decodeMessage(bytes, L, bytes.length - 1), isDropWith('oversized'))
        assert.deepEqual(decodeMessage(bytes, L, bytes.length), m)
      }),
      { numRuns: 300 },
    )
  })

  test('the oversized check applies before anything is parsed (even to garbage)', () => {
    assert.throws(() => decodeMessage(Buffer.alloc(1401), L, 1400), isDropWith('oversized'))
    assert.throws(() => decodeMessage(Buffer.alloc(1400), L, 1400), isDropWith('bad-magic'))
  })

  test('a key longer than maxKeyBytes is refused as limit-exceeded, at every limit and in every message carrying entries', () => {
    const wrap = (entry: Entry): Message[] => [
      { label: '', from: 'a', fromAddress: '', type: MessageType.Push, hops: 0, prevTs: 0, entry },
      { label: '', from: 'a', fromAddress: '', type: MessageType.Delta, segments: [{ origin: entry.origin, upTo: 0, entries: [entry] }] },
      {
        label: '',
        from: 'a',
        fromAddress: '',
        type: MessageType.DeltaDigest,
        page: { start: '', end: undefined, rows: new Map() },
        segments: [{ origin: entry.origin, upTo: 0, entries: [entry] }],
      },
      { label: '', from: 'a', fromAddress: '', type: MessageType.Reset, watermarks: new Map(), gcFloors: new Map(), entries: [entry] },
    ]
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.constantFrom('k', 'é', '€', '🍇'), fc.integer({ min: -4, max: 4 }), (limit, ch, delta) => {
        const key = ch.repeat(Math.max(1, Math.floor(limit / utf8Bytes(ch)) + delta))
        const limits = { ...L, maxKeyBytes: limit }
        for (const m of wrap({ key, ts: 5, origin: 'o~1', value: 'v', expiresAt: undefined })) {
          const bytes = encodeMessage(m)
          if (utf8Bytes(key) <= limit) assert.deepEqual(decodeMessage(bytes, limits, STREAM), m)
          else assert.throws(() => decodeMessage(bytes, limits, STREAM), isDropWith('limit-exceeded'))
        }
      }),
      { numRuns: 300 },
    )
    // And at the default limit.
    const at = { key: 'k'.repeat(L.maxKeyBytes), ts: 5, origin: 'o~1', value: 'v', expiresAt: undefined }
    for (const m of wrap(at)) assert.deepEqual(decodeMessage(encodeMessage(m), L, STREAM), m)
    for (const m of wrap({ ...at, key: at.key + 'k' })) assert.throws(() => decodeMessage(encodeMessage(m), L, STREAM), isDropWith('limit-exceeded'))
  })

  test('values, names, labels, addresses, members and item counts are bounded by their limits', () => {
    const base = { label: '', from: 'a', fromAddress: '' }
    const push = (value: Entry['value'], origin = 'o'): Message => ({
      ...base,
      type: MessageType.Push,
      hops: 0,
      prevTs: 0,
      entry: { key: 'k', ts: 1, origin, value, expiresAt: undefined },
    })
    const cases: [string, Message, Message][] = [
      ['string value', push('x'.repeat(L.maxValueBytes)), push('x'.repeat(L.maxValueBytes + 1))],
      ['bytes value', push(new Uint8Array(L.maxValueBytes)), push(new Uint8Array(L.maxValueBytes + 1))],
      ['origin', push('v', 'é'.repeat(L.maxNameBytes / 2)), push('v', 'é'.repeat(L.maxNameBytes / 2) + 'x')],
      ['label', { ...base, label: 'l'.repeat(L.maxLabelBytes), type: MessageType.ResetRequest }, { ...base, label: 'l'.repeat(L.maxLabelBytes + 1), type: MessageType.ResetRequest }],
      ['sender', { ...base, from: 'f'.repeat(L.maxNameBytes), type: MessageType.ResetRequest }, { ...base, from: 'f'.repeat(L.maxNameBytes + 1), type: MessageType.ResetRequest }],
      [
        'address',
        { ...base, fromAddress: 'a'.repeat(L.maxNameBytes), type: MessageType.ResetRequest },
        { ...base, fromAddress: 'a'.repeat(L.maxNameBytes + 1), type: MessageType.ResetRequest },
      ],
      [
        'piggybacked member updates',
        { ...base, type: MessageType.MemberGossip, updates: Array.from({ length: MAX_PIGGYBACK_UPDATES }, (_, i) => claimUpdate(MemberStatus.Dead, `n${i}`, 1, 'a')) },
        { ...base, type: MessageType.MemberGossip, updates: Array.from({ length: MAX_PIGGYBACK_UPDATES + 1 }, (_, i) => claimUpdate(MemberStatus.Dead, `n${i}`, 1, 'a')) },
      ],
      [
        'member tags',
        { ...base, type: MessageType.MemberGossip, updates: [aliveUpdate({ name: 'm', address: 'a:1', generation: 1, incarnation: 1, tags: tagsOfSize(L.maxTagsBytes) })] },
        { ...base, type: MessageType.MemberGossip, updates: [aliveUpdate({ name: 'm', address: 'a:1', generation: 1, incarnation: 1, tags: tagsOfSize(L.maxTagsBytes + 1) })] },
      ],
    ]
    for (const [what, ok, over] of cases) {
      assert.deepEqual(decodeMessage(encodeMessage(ok), L, STREAM), ok, `${what} at the limit`)
      assert.throws(() => decodeMessage(encodeMessage(over), L, STREAM), isDropWith('limit-exceeded'), `${what} over the limit`)
    }
    // maxItemsPerMessage bounds the items of the whole message: segments and their entries, digest
    // rows, reset rows and entries, all counted together.
    const few = { ...L, maxItemsPerMessage: 3 }
    const e = (i: number): Entry => ({ key: `k${i}`, ts: i + 1, origin: 'o', value: undefined, expiresAt: undefined })
    const seg = (n: number): Segment => ({ origin: 'o', upTo: 0, entries: Array.from({ length: n }, (_, i) => e(i)) })
    const rows = (n: number) => new Map(Array.from({ length: n }, (_, i) => [`o${i}`, i] as [string, number]))
    const counted = (n: number): Message[] => [
      { ...base, type: MessageType.Delta, segments: Array.from({ length: n }, () => seg(0)) },
      { ...base, type: MessageType.Delta, segments: [seg(n - 1)] },
      { ...base, type: MessageType.Delta, segments: [seg(Math.ceil((n - 2) / 2)), seg(Math.floor((n - 2) / 2))] },
      { ...base, type: MessageType.Reset, watermarks: rows(n - 1), gcFloors: rows(1), entries: [] },
      { ...base, type: MessageType.Digest, page: { start: '', end: undefined, rows: rows(n) } },
      { ...base, type: MessageType.Reset, watermarks: rows(n), gcFloors: new Map(), entries: [] },
      { ...base, type: MessageType.Reset, watermarks: new Map(), gcFloors: new Map(), entries: Array.from({ length: n }, (_, i) => e(i)) },
    ]
    for (const m of counted(3)) assert.deepEqual(decodeMessage(encodeMessage(m), few, STREAM), m)
    for (const m of counted(4)) assert.throws(() => decodeMessage(encodeMessage(m), few, STREAM), isDropWith('limit-exceeded'))
  })

  test('the header size helper matches the encoding', () => {
    fc.assert(
      fc.property(header, (h) => {
        assert.equal(encodeMessage({ ...h, type: MessageType.ResetRequest }).length, headerSize(h))
      }),
    )
  })
})
