import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { DEFAULT_LIMITS } from '../src/codec/limits.js'
import { type Message, MessageType, decodeMessage, encodeMessage } from '../src/codec/messages.js'
import { DecodeError, type DropReason } from '../src/errors.js'
import type { Entry } from '../src/state/entry.js'

const REASONS: readonly DropReason[] = [
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

const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
const ts = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
const entryBody = (origin: fc.Arbitrary<string>): fc.Arbitrary<Entry> =>
  fc.record({
    key: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
    ts,
    origin,
    value: fc.oneof(fc.constant(undefined), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.uint8Array({ maxLength: 30 })),
    expiresAt: fc.option(ts, { nil: undefined }),
  }).map((e) => ({ ...e }))
const header = fc.record({ label: fc.string({ maxLength: 8 }), from: name, fromAddress: fc.string({ maxLength: 20 }) })
const page = fc.record({
  start: fc.string({ maxLength: 6 }),
  end: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }),
  rows: fc.array(fc.tuple(name, ts), { maxLength: 6 }).map((rows) => new Map(rows)),
}).map((p) => ({ ...p }))
const segments = fc.array(
  name.chain((origin) =>
    fc.record({ origin: fc.constant(origin), upTo: ts, entries: fc.array(entryBody(fc.constant(origin)), { maxLength: 4 }) }).map((s) => ({ ...s })),
  ),
  { maxLength: 4 },
)
const originMap = fc.array(fc.tuple(name, ts), { maxLength: 5 }).map((rows) => new Map(rows))

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    h: header,
    syncHi: fc.nat({ max: 0xffffffff }),
    syncLo: fc.nat({ max: 0xffffffff }),
    wmHi: fc.nat({ max: 0xffffffff }),
    wmLo: fc.nat({ max: 0xffffffff }),
    members: fc.array(fc.record({ name, address: fc.string({ maxLength: 20 }) }).map((m) => ({ ...m })), { maxLength: 3 }),
  }).map(({ h, ...b }) => ({ ...h, type: MessageType.Probe as const, ...b })),
  fc.record({ h: header, page }).map(({ h, page }) => ({ ...h, type: MessageType.Digest as const, page })),
  fc.record({ h: header, page, segments }).map(({ h, page, segments }) => ({ ...h, type: MessageType.DeltaDigest as const, page, segments })),
  fc.record({ h: header, segments }).map(({ h, segments }) => ({ ...h, type: MessageType.Delta as const, segments })),
  fc.record({ h: header, hops: fc.nat({ max: 64 }), prevTs: ts, entry: entryBody(name) }).map(({ h, ...b }) => ({ ...h, type: MessageType.Push as const, ...b })),
  header.map((h) => ({ ...h, type: MessageType.ResetRequest as const })),
  fc.record({ h: header, watermarks: originMap, gcFloors: originMap, entries: fc.array(entryBody(name), { maxLength: 5 }) }).map(({ h, ...b }) => ({
    ...h,
    type: MessageType.Reset as const,
    ...b,
  })),
)

/** Decoding may return a message or throw DecodeError with a known reason; nothing else. */
function decodeOrDrop(bytes: Buffer): void {
  try {
    decodeMessage(bytes, DEFAULT_LIMITS, DEFAULT_LIMITS.maxStreamBytes)
  } catch (err) {
    assert.ok(err instanceof DecodeError, `unexpected ${String(err)}`)
    assert.ok(REASONS.includes(err.reason), `unknown reason ${err.reason}`)
  }
}

describe('codec', () => {
  test('every message type round-trips', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeMessage(m)
        assert.deepEqual(decodeMessage(bytes, DEFAULT_LIMITS, DEFAULT_LIMITS.maxStreamBytes), m)
      }),
      { numRuns: 2000 },
    )
  })

  test('truncated, flipped and extended encodings decode or drop, never throw anything else', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), fc.nat({ max: 255 }), fc.uint8Array({ maxLength: 8 }), (m, at, flip, extra) => {
        const bytes = encodeMessage(m)
        for (let len = 0; len < bytes.length; len++) decodeOrDrop(bytes.subarray(0, len))
        const flipped = Buffer.from(bytes)
        const i = at % flipped.length
        flipped[i] = flipped[i]! ^ (flip | 1)
        decodeOrDrop(flipped)
        decodeOrDrop(Buffer.concat([bytes, extra]))
      }),
      { numRuns: 1500 },
    )
  })

  test('random bytes decode or drop', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (raw, withMagic) => {
        const bytes = Buffer.from(raw)
        if (withMagic && bytes.length >= 2) {
          bytes[0] = 0x67
          bytes[1] = 1
        }
        decodeOrDrop(bytes)
      }),
      { numRuns: 20_000 },
    )
  })

  test('limits are enforced before allocation', () => {
    const probe = encodeMessage({ label: '', from: 'a', fromAddress: '', type: MessageType.ResetRequest })
    assert.throws(() => decodeMessage(probe, DEFAULT_LIMITS, probe.length - 1), (e: unknown) => e instanceof DecodeError && e.reason === 'oversized')
    const longKey: Entry = { key: 'k'.repeat(300), ts: 1, origin: 'o', value: 'v', expiresAt: undefined }
    const push = encodeMessage({ label: '', from: 'a', fromAddress: '', type: MessageType.Push, hops: 1, prevTs: 0, entry: longKey })
    assert.throws(() => decodeMessage(push, DEFAULT_LIMITS, 1400), (e: unknown) => e instanceof DecodeError && e.reason === 'limit-exceeded')
    // A count claiming far more items than bytes remain is refused without allocating them.
    const hostile = Buffer.concat([
      encodeMessage({ label: '', from: 'a', fromAddress: '', type: MessageType.Delta, segments: [] }).subarray(0, -1),
      Buffer.from([0x80, 0x80, 0x10]), // 262,144 segments, within the count limit, in 3 bytes
    ])
    assert.throws(() => decodeMessage(hostile, DEFAULT_LIMITS, 1400), (e: unknown) => e instanceof DecodeError && e.reason === 'truncated')
    const otherVersion = Buffer.from(probe)
    otherVersion[1] = 2
    assert.throws(() => decodeMessage(otherVersion, DEFAULT_LIMITS, 1400), (e: unknown) => e instanceof DecodeError && e.reason === 'protocol-version')
    const unknownType = Buffer.from(probe)
    unknownType[2] = 200
    assert.throws(() => decodeMessage(unknownType, DEFAULT_LIMITS, 1400), (e: unknown) => e instanceof DecodeError && e.reason === 'unknown-type')
  })
})
