/**
 * Packet security against replays and premature key removal: a sealed
 * packet opens once per sender session (sliding window per salt), a sealed
 * stream opens only through its authenticated preamble, datagrams and
 * streams of one sender may overtake each other, and a key peers still seal
 * with is not removed without force.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { generateKey, parseKey } from '../src/security/keyring.js'
import { Keyring } from '../src/security/keyring.js'
import { type OpenResult, PacketSecurity, REPLAY_WINDOW, SALT_BYTES, sealStreamOverhead } from '../src/security/packet-security.js'

const BIG = 1 << 24

function node(keys: string[], keyInUseMs?: number): PacketSecurity {
  return new PacketSecurity({ keyring: Keyring.fromBase64(keys), label: 'prod', sessionSalt: randomBytes(SALT_BYTES), ...(keyInUseMs ? { keyInUseMs } : {}) })
}

function reason(r: OpenResult | { ok: boolean; reason?: string }): string {
  return r.ok ? 'ok' : (r as { reason: string }).reason
}

describe('replay window', () => {
  const k = generateKey()

  test('a sealed datagram opens once; delivered again it is dropped as replayed', () => {
    const a = node([k])
    const b = node([k])
    const sealed = a.outgoing(Buffer.from('reset please'))
    assert.equal(reason(b.incoming(sealed, BIG)), 'ok')
    for (let i = 0; i < 40; i++) assert.equal(reason(b.incoming(sealed, BIG)), 'replayed')
    // Another receiver has its own windows.
    assert.equal(reason(node([k]).incoming(sealed, BIG)), 'ok')
  })

  test('out of order within the window: accepted once each; below the window: replayed', () => {
    const a = node([k])
    const b = node([k])
    const sent = Array.from({ length: REPLAY_WINDOW + 10 }, (_, i) => a.outgoing(Buffer.from(`m${i}`)))
    const last = sent.length - 1
    assert.equal(reason(b.incoming(sent[last]!, BIG)), 'ok')
    // Counters last-1 down to last-(REPLAY_WINDOW-1) are inside the window, in any order.
    for (let i = last - 1; i > last - REPLAY_WINDOW; i -= 2) assert.equal(reason(b.incoming(sent[i]!, BIG)), 'ok', `counter ${i + 1}`)
    for (let i = last - 2; i > last - REPLAY_WINDOW; i -= 2) assert.equal(reason(b.incoming(sent[i]!, BIG)), 'ok', `counter ${i + 1}`)
    for (let i = last; i > last - REPLAY_WINDOW; i--) assert.equal(reason(b.incoming(sent[i]!, BIG)), 'replayed', `counter ${i + 1} again`)
    // Older than the window: refused, though never seen.
    assert.equal(reason(b.incoming(sent[0]!, BIG)), 'replayed')
  })

  test('a sealed stream opens once, as preamble and body or through its preamble alone', () => {
    const a = node([k])
    const b = node([k])
    const message = Buffer.alloc(20_000, 5)
    const stream = a.outgoingStream(message)
    assert.equal(stream.length, message.length + sealStreamOverhead('prod'))
    const opened = b.incomingStream(stream, BIG)
    assert.ok(opened.ok && opened.bytes.equals(message))
    assert.equal(reason(b.incomingStream(stream, BIG)), 'replayed')
    // The real transport's way: the preamble first, then the body alone.
    const second = a.outgoingStream(message)
    const preamble = second.subarray(0, b.preambleBytes)
    const body = second.subarray(b.preambleBytes)
    assert.equal(reason(b.incomingStream(body, BIG)), 'replayed', 'a body without its preamble')
    const p = b.openStreamPreamble(preamble)
    assert.ok(p.ok && p.bodyLength === body.length)
    assert.equal(reason(b.openStreamPreamble(preamble)), 'replayed', 'a preamble is single use')
    assert.equal(reason(b.incomingStream(body, BIG)), 'ok')
    assert.equal(reason(b.incomingStream(body, BIG)), 'replayed', 'a body is single use')
  })

  test('a stream and datagrams of one sender overtake each other without loss', () => {
    const a = node([k])
    const b = node([k])
    // Datagrams sealed before a stream (still queued at the sender) arrive after it, far more than a window of them.
    const queued = Array.from({ length: 3 * REPLAY_WINDOW }, (_, i) => a.outgoing(Buffer.from(`d${i}`)))
    const stream = a.outgoingStream(Buffer.alloc(5000, 1))
    const later = a.outgoing(Buffer.from('after'))
    assert.equal(reason(b.incoming(later, BIG)), 'ok')
    assert.equal(reason(b.incomingStream(stream, BIG)), 'ok')
    assert.equal(reason(b.incoming(queued[0]!, BIG)), 'replayed', 'a datagram more than a window below the newest datagram is refused')
    const c = node([k])
    assert.equal(reason(c.incomingStream(stream, BIG)), 'ok')
    for (const d of queued.slice(-REPLAY_WINDOW + 1)) assert.equal(reason(c.incoming(d, BIG)), 'ok')
    assert.equal(reason(c.incoming(later, BIG)), 'ok')
  })

  test('an envelope of one kind is not accepted as another', () => {
    const a = node([k])
    const b = node([k])
    const stream = a.outgoingStream(Buffer.alloc(300, 2))
    // A stream's body or preamble sent as a datagram; a datagram sent as a stream.
    assert.equal(reason(b.incoming(stream.subarray(b.preambleBytes), BIG)), 'malformed')
    assert.equal(reason(b.incoming(stream.subarray(0, b.preambleBytes), BIG)), 'malformed')
    assert.equal(reason(b.incomingStream(a.outgoing(Buffer.from('d')), BIG)), 'protocol-version')
    // What a node before the preamble sent: the transport takes its first P bytes for a preamble.
    assert.equal(reason(b.openStreamPreamble(a.outgoing(Buffer.alloc(4)))), 'protocol-version')
    assert.equal(reason(b.incomingStream(stream, BIG)), 'ok')
  })

  test('forged packets create no window: the genuine packet still opens after a flood of forgeries under its salt', () => {
    const a = node([k])
    const b = node([k])
    const genuine = a.outgoing(Buffer.from('real'))
    for (let i = 0; i < 2000; i++) {
      const forged = Buffer.from(genuine)
      // Same salt, higher counter, broken tag.
      forged.writeUInt32BE(i + 10, genuine.length - 16 - 'real'.length - 4)
      assert.equal(reason(b.incoming(forged, BIG)), 'decrypt-failed')
    }
    assert.equal(reason(b.incoming(genuine, BIG)), 'ok')
  })
})

describe('key removal guard', () => {
  const k1 = generateKey()
  const k2 = generateKey()

  test('a key a peer sealed with recently is not removed without force; later, or forced, it is', () => {
    const a = node([k1, k2], 5000)
    const peer = node([k1])
    assert.equal(reason(a.incoming(peer.outgoing(Buffer.from('x')), BIG, 1000)), 'ok')
    a.keyring.use(parseKey(k2))
    assert.throws(() => a.removeKey(parseKey(k1), 3000), { code: 'GV_ERR_KEY_IN_USE' })
    assert.equal(a.keyring.size, 2)
    a.removeKey(parseKey(k1), 6001)
    assert.equal(a.keyring.size, 1)
    const b = node([k1, k2], 5000)
    assert.ok(b.incoming(peer.outgoing(Buffer.from('y')), BIG, 1000).ok)
    b.keyring.use(parseKey(k2))
    b.removeKey(parseKey(k1), 1500, { force: true })
    assert.equal(b.keyring.size, 1)
    // The primary stays unremovable, with its own code.
    assert.throws(() => b.removeKey(parseKey(k2), 99_999, { force: true }), { code: 'GV_ERR_KEYRING' })
  })

  test('using a key no peer sealed with recently warns, and proceeds', () => {
    const a = node([k1, k2], 5000)
    const warning = a.useKey(parseKey(k2), 1000)
    assert.match(warning ?? '', /no peer sealed a packet with it/)
    assert.equal(a.keyring.primary.id, a.keyring.list().find((x) => x.key === k2)!.id)
    const peer = node([k2])
    assert.ok(a.incoming(peer.outgoing(Buffer.from('x')), BIG, 2000).ok)
    a.keyring.use(parseKey(k1))
    assert.equal(a.useKey(parseKey(k2), 3000), undefined)
  })
})
