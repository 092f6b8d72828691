/**
 * Sealed packets: what one node seals, another node with the key opens to
 * the same bytes; anything else (another key, a flipped bit, a cut, another
 * label, plaintext where encryption is required) is a counted drop and never
 * an exception.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { Keyring, generateKey, keyIdOf, parseKey } from '../src/security/keyring.js'
import { PacketSecurity, SALT_BYTES, sealOverhead } from '../src/security/packet-security.js'

const BIG = 1 << 20

function node(keys: readonly string[], label = 'prod', switches: { verifyIncoming?: boolean; verifyOutgoing?: boolean } = {}): PacketSecurity {
  return new PacketSecurity({ keyring: Keyring.fromBase64(keys), label, sessionSalt: randomBytes(SALT_BYTES), ...switches })
}

describe('packet security', () => {
  const k1 = generateKey()
  const k2 = generateKey()

  test('sealed bytes open to the same bytes, with the documented overhead', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.string({ maxLength: 40 }), (body, label) => {
        const a = node([k1], label)
        const b = node([k1], label)
        const sealed = a.outgoing(Buffer.from(body))
        assert.equal(sealed.length, body.length + sealOverhead(label))
        const opened = b.incoming(sealed, BIG)
        assert.ok(opened.ok)
        assert.ok(opened.sealed)
        assert.deepEqual(new Uint8Array(opened.bytes), body)
      }),
      { numRuns: 300 },
    )
  })

  test('every single-byte change, cut or extension of a sealed packet is dropped, never thrown', () => {
    const a = node([k1])
    const b = node([k1])
    const sealed = a.outgoing(Buffer.from('g'.repeat(200)))
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ kind: fc.constant('flip' as const), at: fc.nat({ max: sealed.length - 1 }), bit: fc.integer({ min: 0, max: 7 }) }),
          fc.record({ kind: fc.constant('cut' as const), at: fc.nat({ max: sealed.length - 1 }), bit: fc.constant(0) }),
          fc.record({ kind: fc.constant('extend' as const), at: fc.integer({ min: 1, max: 64 }), bit: fc.constant(0) }),
        ),
        ({ kind, at, bit }) => {
          let bad: Buffer
          if (kind === 'flip') {
            bad = Buffer.from(sealed)
            bad[at]! ^= 1 << bit
          } else if (kind === 'cut') bad = sealed.subarray(0, at)
          else bad = Buffer.concat([sealed, randomBytes(at)])
          const opened = b.incoming(bad, BIG)
          // A flipped first byte makes it "plaintext", which verifyIncoming refuses.
          assert.equal(opened.ok, false, `${kind} at ${at} must not open`)
        },
      ),
      { numRuns: 2000 },
    )
  })

  test('random bytes after the sealed magic are dropped with a reason', () => {
    const b = node([k1])
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => {
        const opened = b.incoming(Buffer.concat([Buffer.from([0x68]), tail]), BIG)
        assert.equal(opened.ok, false)
      }),
      { numRuns: 3000 },
    )
  })

  test('drop reasons: unknown key, another label, plaintext refused or allowed, oversized', () => {
    const sealed = node([k1]).outgoing(Buffer.from('hello'))
    const other = node([k2]).incoming(sealed, BIG)
    assert.equal(other.ok ? 'ok' : other.reason, 'unknown-key')
    const elsewhere = node([k1], 'staging').incoming(sealed, BIG)
    assert.equal(elsewhere.ok ? 'ok' : elsewhere.reason, 'label-mismatch')
    const strict = node([k1]).incoming(Buffer.from([0x67, 1, 1]), BIG)
    assert.equal(strict.ok ? 'ok' : strict.reason, 'unencrypted')
    const lenient = node([k1], 'prod', { verifyIncoming: false }).incoming(Buffer.from([0x67, 1, 1]), BIG)
    assert.ok(lenient.ok && !lenient.sealed)
    const small = node([k1]).incoming(sealed, sealed.length - 1)
    assert.equal(small.ok ? 'ok' : small.reason, 'oversized')
  })

  test('verifyOutgoing off sends plaintext; on again, sealed', () => {
    const a = node([k1], 'prod', { verifyOutgoing: false })
    assert.deepEqual(a.outgoing(Buffer.from('x')), Buffer.from('x'))
    a.verifyOutgoing = true
    assert.notDeepEqual(a.outgoing(Buffer.from('x')), Buffer.from('x'))
  })

  test('nonces never repeat: the same bytes sealed twice differ, by counter and by process', () => {
    const a = node([k1])
    const seen = new Set<string>()
    for (let i = 0; i < 1000; i++) seen.add(a.outgoing(Buffer.from('same')).toString('hex'))
    seen.add(node([k1]).outgoing(Buffer.from('same')).toString('hex'))
    assert.equal(seen.size, 1001)
  })

  test('rotation: install, use, remove; a removed key stops decrypting at once', () => {
    const a = node([k1])
    const b = node([k1])
    a.keyring.install(parseKey(k2))
    b.keyring.install(parseKey(k2))
    assert.ok(b.incoming(a.outgoing(Buffer.from('1')), BIG).ok)
    a.keyring.use(parseKey(k2))
    // b still encrypts with k1, a with k2: both read each other.
    assert.ok(b.incoming(a.outgoing(Buffer.from('2')), BIG).ok)
    assert.ok(a.incoming(b.outgoing(Buffer.from('3')), BIG).ok)
    b.keyring.use(parseKey(k2))
    const underOld = node([k1]).outgoing(Buffer.from('4'))
    assert.ok(a.incoming(underOld, BIG).ok)
    a.keyring.remove(parseKey(k1))
    const after = a.incoming(underOld, BIG)
    assert.equal(after.ok ? 'ok' : after.reason, 'unknown-key')
    assert.ok(a.incoming(b.outgoing(Buffer.from('5')), BIG).ok)
    assert.throws(() => a.keyring.remove(parseKey(k2)), { code: 'GV_ERR_KEYRING' })
  })

  test('keys are validated: 32 bytes of base64, nothing else', () => {
    assert.throws(() => parseKey('not a key'), { code: 'GV_ERR_KEYRING' })
    assert.throws(() => parseKey(randomBytes(16).toString('base64')), { code: 'GV_ERR_KEYRING' })
    assert.equal(parseKey(k1).length, 32)
    assert.equal(keyIdOf(parseKey(k1)), Keyring.fromBase64([k1]).primary.id)
    assert.throws(() => Keyring.fromBase64([]), { code: 'GV_ERR_KEYRING' })
  })
})
