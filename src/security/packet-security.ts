import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey, hkdfSync } from 'node:crypto'
import { Reader, Writer, stringSize } from '../codec/bytes.js'
import { DEFAULT_LIMITS } from '../codec/limits.js'
import { DecodeError, type DropReason } from '../errors.js'
import { Keyring } from './keyring.js'

/**
 * Sealed packets (PROTOCOL.md, "Encryption"): AES-256-GCM under a subkey
 * derived per sending process, with a counter nonce.
 *
 *   magic 0x68 | envelope version | label | key id (u32) | salt (16) | counter (u64) | ciphertext | tag (16)
 *
 * Everything before the ciphertext is the associated data, so the label,
 * the key id, the salt and the counter are authenticated with the message.
 *
 * Nonces: a sending process draws a random 16-byte `salt` once and derives
 * its subkey HKDF-SHA256(key, salt, "grapevine packet v1"); the 96-bit nonce
 * is a per-process counter. A (subkey, nonce) pair therefore never repeats
 * while the process lives, however many messages it sends, and two
 * processes share a subkey only if their random 128-bit salts collide. This
 * is what makes long-lived keys safe, where random 96-bit nonces would risk
 * a collision (and GCM's failure) after some billions of messages.
 *
 * Replays are not detected here: a replayed packet decrypts, and the engine's
 * merge keeps the newest version of everything, so it changes nothing.
 */
export const SEALED_MAGIC = 0x68
export const ENVELOPE_VERSION = 1
const KEY_ID_BYTES = 4
export const SALT_BYTES = 16
const COUNTER_BYTES = 8
const TAG_BYTES = 16
const NONCE_BYTES = 12
const HKDF_INFO = Buffer.from('grapevine packet v1')
/** Subkeys of peers' sessions kept; beyond this the least recently added are derived again when needed. */
const RECEIVE_KEY_CACHE = 16_384

/** Bytes sealing adds to a message of a cluster with this label. */
export function sealOverhead(label: string): number {
  return 2 + stringSize(label) + KEY_ID_BYTES + SALT_BYTES + COUNTER_BYTES + TAG_BYTES
}

export type OpenResult =
  | { readonly ok: true; readonly bytes: Buffer; readonly sealed: boolean }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string }

export interface PacketSecurityOptions {
  readonly keyring: Keyring
  readonly label: string
  /** Refuse plaintext packets (default true). False while a cluster moves to encryption. */
  readonly verifyIncoming?: boolean
  /** Seal what we send (default true). False while a cluster moves to encryption. */
  readonly verifyOutgoing?: boolean
  /** This process's random salt (SALT_BYTES), drawn by the driver. */
  readonly sessionSalt: Uint8Array
}

/** A node's `encryption` setting, as `Grapevine.start` and the simulator take it. */
export interface EncryptionSetting {
  readonly keys: readonly string[]
  readonly verifyIncoming?: boolean
  readonly verifyOutgoing?: boolean
}

/**
 * Seals outgoing packets and opens incoming ones for one node. It holds no
 * clock and draws no randomness (the salt is given), so the simulator can
 * run it too.
 */
export class PacketSecurity {
  readonly keyring: Keyring
  verifyIncoming: boolean
  verifyOutgoing: boolean
  private readonly salt: Buffer
  private counter = 0
  private readonly prefix: Buffer
  private sendKey: KeyObject | undefined
  private sendKeyId = 0
  private sendKeyVersion = -1
  private readonly receiveKeys = new Map<string, KeyObject>()
  private receiveKeysVersion: number

  /** From a node's `encryption` setting (base64 keys, the first primary). */
  static fromSetting(setting: EncryptionSetting, label: string, sessionSalt: Uint8Array): PacketSecurity {
    return new PacketSecurity({
      keyring: Keyring.fromBase64(setting.keys),
      label,
      sessionSalt,
      ...(setting.verifyIncoming !== undefined ? { verifyIncoming: setting.verifyIncoming } : {}),
      ...(setting.verifyOutgoing !== undefined ? { verifyOutgoing: setting.verifyOutgoing } : {}),
    })
  }

  constructor(private readonly options: PacketSecurityOptions) {
    if (options.sessionSalt.length !== SALT_BYTES) throw new Error(`session salt must be ${SALT_BYTES} bytes`)
    this.keyring = options.keyring
    this.verifyIncoming = options.verifyIncoming ?? true
    this.verifyOutgoing = options.verifyOutgoing ?? true
    this.salt = Buffer.from(options.sessionSalt)
    this.prefix = new Writer(8 + options.label.length * 3).u8(SEALED_MAGIC).u8(ENVELOPE_VERSION).string(options.label).finish()
    this.receiveKeysVersion = this.keyring.version
  }

  /** The packet to send for `bytes`: sealed under the primary key, or as is while `verifyOutgoing` is off. */
  outgoing(bytes: Buffer): Buffer {
    if (!this.verifyOutgoing) return bytes
    if (this.sendKeyVersion !== this.keyring.version) {
      const primary = this.keyring.primary
      this.sendKey = subkey(primary.key, this.salt)
      this.sendKeyId = primary.id
      this.sendKeyVersion = this.keyring.version
    }
    const counter = ++this.counter
    const headerLength = this.prefix.length + KEY_ID_BYTES + SALT_BYTES + COUNTER_BYTES
    const out = Buffer.allocUnsafe(headerLength + bytes.length + TAG_BYTES)
    let at = this.prefix.copy(out, 0)
    at = out.writeUInt32BE(this.sendKeyId, at)
    at += this.salt.copy(out, at)
    at = out.writeUInt32BE(Math.floor(counter / 2 ** 32), at)
    at = out.writeUInt32BE(counter >>> 0, at)
    const header = out.subarray(0, headerLength)
    const cipher = createCipheriv('aes-256-gcm', this.sendKey!, nonceOf(header.subarray(headerLength - COUNTER_BYTES)))
    cipher.setAAD(header)
    at += cipher.update(bytes).copy(out, at)
    at += cipher.final().copy(out, at)
    cipher.getAuthTag().copy(out, at)
    return out
  }

  /**
   * Opens an incoming packet of at most `maxBytes`: a sealed one is checked
   * and decrypted; a plaintext one passes while `verifyIncoming` is off.
   * Never throws: a packet that cannot be accepted gives a drop reason.
   */
  incoming(bytes: Buffer, maxBytes: number): OpenResult {
    if (bytes.length === 0 || bytes[0] !== SEALED_MAGIC) {
      if (this.verifyIncoming) return { ok: false, reason: 'unencrypted', detail: 'a plaintext packet, and this cluster requires encryption' }
      return { ok: true, bytes, sealed: false }
    }
    if (bytes.length > maxBytes) return { ok: false, reason: 'oversized', detail: `sealed packet of ${bytes.length} bytes` }
    try {
      return this.open(bytes)
    } catch (err) {
      if (err instanceof DecodeError) return { ok: false, reason: err.reason, detail: err.message }
      throw err
    }
  }

  private open(bytes: Buffer): OpenResult {
    const r = new Reader(bytes)
    r.u8()
    const version = r.u8()
    if (version !== ENVELOPE_VERSION) return { ok: false, reason: 'protocol-version', detail: `sealed envelope version ${version}` }
    const label = r.string(DEFAULT_LIMITS.maxLabelBytes)
    if (label !== this.options.label) {
      return { ok: false, reason: 'label-mismatch', detail: `a sealed packet of cluster '${label}', we are in '${this.options.label}'` }
    }
    const headerLength = r.offset + KEY_ID_BYTES + SALT_BYTES + COUNTER_BYTES
    if (bytes.length < headerLength + TAG_BYTES) return { ok: false, reason: 'truncated', detail: 'sealed packet too short' }
    const keyId = bytes.readUInt32BE(r.offset)
    const key = this.keyring.byId(keyId)
    if (key === undefined) return { ok: false, reason: 'unknown-key', detail: `sealed under key id ${keyId.toString(16)}, which is not installed` }
    const salt = bytes.subarray(r.offset + KEY_ID_BYTES, r.offset + KEY_ID_BYTES + SALT_BYTES)
    if (this.receiveKeysVersion !== this.keyring.version) {
      // A removed key must stop decrypting at once.
      this.receiveKeys.clear()
      this.receiveKeysVersion = this.keyring.version
    }
    const cacheKey = `${keyId}:${salt.toString('base64')}`
    const cached = this.receiveKeys.get(cacheKey)
    const sub = cached ?? subkey(key, salt)
    const header = bytes.subarray(0, headerLength)
    const decipher = createDecipheriv('aes-256-gcm', sub, nonceOf(header.subarray(headerLength - COUNTER_BYTES)))
    decipher.setAAD(header)
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
    const body = decipher.update(bytes.subarray(headerLength, bytes.length - TAG_BYTES))
    try {
      decipher.final()
    } catch {
      return { ok: false, reason: 'decrypt-failed', detail: 'a sealed packet failed authentication' }
    }
    if (cached === undefined) {
      // Only authenticated sessions are remembered: forged salts cannot evict real ones faster than they arrive.
      if (this.receiveKeys.size >= RECEIVE_KEY_CACHE) this.receiveKeys.delete(this.receiveKeys.keys().next().value!)
      this.receiveKeys.set(cacheKey, sub)
    }
    return { ok: true, bytes: body, sealed: true }
  }
}

function subkey(key: Uint8Array, salt: Uint8Array): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', key, salt, HKDF_INFO, 32)))
}

/** The 96-bit nonce: four zero bytes, then the 64-bit counter as sent. */
function nonceOf(counter: Buffer): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES)
  counter.copy(nonce, NONCE_BYTES - COUNTER_BYTES)
  return nonce
}
