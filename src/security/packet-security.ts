import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey, hkdfSync } from 'node:crypto'
import { Reader, Writer, stringSize } from '../codec/bytes.js'
import { DEFAULT_LIMITS } from '../codec/limits.js'
import { DecodeError, type DropReason, KeyringError } from '../errors.js'
import { Keyring, keyIdOf } from './keyring.js'

/**
 * Sealed packets (PROTOCOL.md, "Encryption"): AES-256-GCM under a subkey
 * derived per sending process, with a counter nonce.
 *
 *   magic 0x68 | envelope type | label | key id (u32) | salt (16) | counter (u64) | ciphertext | tag (16)
 *
 * Everything before the ciphertext is the associated data, so the type, the
 * label, the key id, the salt and the counter are authenticated with the
 * message. Envelope types: 1 a datagram, 2 a stream preamble, 3 a stream
 * body. A sealed stream is a preamble (counter c, plaintext: the body's
 * length) followed by its body (counter c + 1): a receiver authenticates the
 * few bytes of the preamble before it buffers the body (a GCM tag comes at
 * the end, so a body alone cannot be authenticated before all of it is in).
 *
 * Nonces: a sending process draws a random 16-byte `salt` once and derives
 * its subkey HKDF-SHA256(key, salt, "grapevine packet v1"); the 96-bit nonce
 * is a per-process counter, shared by datagrams and streams. A (subkey,
 * nonce) pair therefore never repeats while the process lives, however many
 * messages it sends, and two processes share a subkey only if their random
 * 128-bit salts collide. This is what makes long-lived keys safe, where
 * random 96-bit nonces would risk a collision (and GCM's failure) after some
 * billions of messages.
 *
 * Replays: each sender session (salt) has a sliding window of the counters
 * accepted, one for datagrams and one for stream preambles (RFC 6479 style):
 * a counter seen, or below the window, is dropped as `replayed`. A stream
 * body is accepted only as the body its authenticated preamble announced
 * (same key id and salt, counter c + 1), once. Datagrams and streams have
 * windows of their own so a stream overtaking datagrams queued before it
 * (or the reverse) never pushes them out of the window; the envelope type,
 * authenticated, keeps a packet of one kind from being replayed as another.
 * Windows are created only once a packet authenticated, so forged packets
 * cannot evict them.
 */
export const SEALED_MAGIC = 0x68
/** The envelope type of a sealed datagram (what version 1 of this format sealed everything as). */
export const ENVELOPE_VERSION = 1
/** Envelope type of a stream preamble: its plaintext is the u32 length of the body that follows. */
export const ENVELOPE_STREAM_PREAMBLE = 2
/** Envelope type of a stream body: valid only after its preamble. */
export const ENVELOPE_STREAM_BODY = 3
const KEY_ID_BYTES = 4
export const SALT_BYTES = 16
const COUNTER_BYTES = 8
const TAG_BYTES = 16
const NONCE_BYTES = 12
const PREAMBLE_PLAINTEXT_BYTES = 4
const HKDF_INFO = Buffer.from('grapevine packet v1')
/** Subkeys of peers' sessions kept; beyond this the least recently added are derived again when needed. */
const RECEIVE_KEY_CACHE = 16_384
/** Counters a datagram replay window covers below the highest accepted (a multiple of 32). */
export const REPLAY_WINDOW = 1024
/** Counters a stream-preamble window covers (streams are few; a multiple of 32). */
const STREAM_REPLAY_WINDOW = 256
/** Sender sessions whose windows are kept; the least recently active beyond this are forgotten. */
const REPLAY_SESSIONS = 16_384
/** Stream bodies announced by an authenticated preamble and not yet received, kept at most. */
const PENDING_BODIES = 256
/**
 * A key that opened a packet from a peer this recently is "in use": removing
 * it is refused without `force`. 10 s is several probe and gossip rounds at
 * the default timings (1 s probes, 200 ms gossip), so a cluster where a
 * fair share of peers still seal with the key shows it within the interval,
 * and an operator retrying after the last `use` waits only seconds. It is a
 * guard against the common mistake (removing before every node switched),
 * not a proof: a lone lagging peer may not have sent to us in that time.
 */
export const KEY_IN_USE_MS = 10_000

/** Bytes sealing adds to a message of a cluster with this label. */
export function sealOverhead(label: string): number {
  return 2 + stringSize(label) + KEY_ID_BYTES + SALT_BYTES + COUNTER_BYTES + TAG_BYTES
}

/** Bytes of a sealed stream's preamble for a cluster with this label. */
export function streamPreambleBytes(label: string): number {
  return sealOverhead(label) + PREAMBLE_PLAINTEXT_BYTES
}

/** Bytes sealing adds to a stream message (preamble, and the body's own envelope). */
export function sealStreamOverhead(label: string): number {
  return streamPreambleBytes(label) + sealOverhead(label)
}

export type OpenResult =
  | { readonly ok: true; readonly bytes: Buffer; readonly sealed: boolean }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string }

export type PreambleResult =
  | { readonly ok: true; readonly bodyLength: number }
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
  /** A key that opened a peer's packet this recently cannot be removed without force (default KEY_IN_USE_MS). */
  readonly keyInUseMs?: number
}

/** A node's `encryption` setting, as `Grapevine.start` and the simulator take it. */
export interface EncryptionSetting {
  readonly keys: readonly string[]
  readonly verifyIncoming?: boolean
  readonly verifyOutgoing?: boolean
  readonly keyInUseMs?: number
}

/**
 * Which counters of one sender session were accepted: the highest, and a
 * ring bitmap of the `size` counters at and below it. Accepting a counter
 * above the highest slides the window up, clearing the bits it passes.
 */
class ReplayWindow {
  private readonly bits: Uint32Array
  private highest = 0

  constructor(private readonly size: number) {
    this.bits = new Uint32Array(size / 32)
  }

  /** Whether `counter` may be accepted: above the window's floor and not seen. */
  fresh(counter: number): boolean {
    if (counter > this.highest) return true
    if (counter <= this.highest - this.size) return false
    return !this.has(counter)
  }

  /** Records an accepted counter (call only when `fresh`). */
  accept(counter: number): void {
    if (counter > this.highest) {
      if (counter - this.highest >= this.size) this.bits.fill(0)
      else for (let c = this.highest + 1; c < counter; c++) this.clear(c)
      this.highest = counter
    }
    const bit = counter % this.size
    this.bits[bit >>> 5]! |= 1 << (bit & 31)
  }

  private has(counter: number): boolean {
    const bit = counter % this.size
    return (this.bits[bit >>> 5]! & (1 << (bit & 31))) !== 0
  }

  private clear(counter: number): void {
    const bit = counter % this.size
    this.bits[bit >>> 5]! &= ~(1 << (bit & 31))
  }
}

interface ReplaySession {
  readonly datagrams: ReplayWindow
  readonly streams: ReplayWindow
}

/** An envelope's clear fields, parsed and checked (label, length, key installed). */
interface Envelope {
  readonly type: number
  readonly keyId: number
  readonly key: Buffer
  readonly salt: Buffer
  readonly counter: number
  readonly headerLength: number
}

type Failure = { readonly ok: false; readonly reason: DropReason; readonly detail: string }

/**
 * Seals outgoing packets and opens incoming ones for one node. It holds no
 * clock and draws no randomness (the salt is given; callers pass the time),
 * so the simulator can run it too.
 */
export class PacketSecurity {
  readonly keyring: Keyring
  verifyIncoming: boolean
  verifyOutgoing: boolean
  private readonly salt: Buffer
  private counter = 0
  private readonly prefixBody: Buffer
  private sendKey: KeyObject | undefined
  private sendKeyId = 0
  private sendKeyVersion = -1
  private readonly receiveKeys = new Map<string, KeyObject>()
  private receiveKeysVersion: number
  /** Replay windows by sender salt (base64), least recently active first. */
  private readonly sessions = new Map<string, ReplaySession>()
  /** Stream bodies announced by an authenticated preamble: "keyId:salt:counter". */
  private readonly pendingBodies = new Set<string>()
  /** When each key id last opened a peer's packet (the caller's clock). */
  private readonly lastOpened = new Map<number, number>()
  private readonly keyInUseMs: number
  /** Bytes of a preamble sealed under our label (a peer of another label fails to open). */
  readonly preambleBytes: number

  /** From a node's `encryption` setting (base64 keys, the first primary). */
  static fromSetting(setting: EncryptionSetting, label: string, sessionSalt: Uint8Array): PacketSecurity {
    return new PacketSecurity({
      keyring: Keyring.fromBase64(setting.keys),
      label,
      sessionSalt,
      ...(setting.verifyIncoming !== undefined ? { verifyIncoming: setting.verifyIncoming } : {}),
      ...(setting.verifyOutgoing !== undefined ? { verifyOutgoing: setting.verifyOutgoing } : {}),
      ...(setting.keyInUseMs !== undefined ? { keyInUseMs: setting.keyInUseMs } : {}),
    })
  }

  constructor(private readonly options: PacketSecurityOptions) {
    if (options.sessionSalt.length !== SALT_BYTES) throw new Error(`session salt must be ${SALT_BYTES} bytes`)
    this.keyring = options.keyring
    this.verifyIncoming = options.verifyIncoming ?? true
    this.verifyOutgoing = options.verifyOutgoing ?? true
    this.keyInUseMs = options.keyInUseMs ?? KEY_IN_USE_MS
    this.salt = Buffer.from(options.sessionSalt)
    this.prefixBody = new Writer(8 + options.label.length * 3).u8(SEALED_MAGIC).u8(ENVELOPE_VERSION).string(options.label).finish()
    this.receiveKeysVersion = this.keyring.version
    this.preambleBytes = streamPreambleBytes(options.label)
  }

  /** The datagram to send for `bytes`: sealed under the primary key, or as is while `verifyOutgoing` is off. */
  outgoing(bytes: Buffer): Buffer {
    if (!this.verifyOutgoing) return bytes
    const out = Buffer.allocUnsafe(bytes.length + this.prefixBody.length + KEY_ID_BYTES + SALT_BYTES + COUNTER_BYTES + TAG_BYTES)
    this.sealInto(out, 0, ENVELOPE_VERSION, bytes)
    return out
  }

  /**
   * The stream message to send for `bytes`: a preamble announcing the
   * body's length, then the body (counters c and c + 1), or `bytes` as is
   * while `verifyOutgoing` is off.
   */
  outgoingStream(bytes: Buffer): Buffer {
    if (!this.verifyOutgoing) return bytes
    const bodyLength = bytes.length + this.prefixBody.length + KEY_ID_BYTES + SALT_BYTES + COUNTER_BYTES + TAG_BYTES
    const out = Buffer.allocUnsafe(this.preambleBytes + bodyLength)
    const length = Buffer.allocUnsafe(PREAMBLE_PLAINTEXT_BYTES)
    length.writeUInt32BE(bodyLength, 0)
    const at = this.sealInto(out, 0, ENVELOPE_STREAM_PREAMBLE, length)
    this.sealInto(out, at, ENVELOPE_STREAM_BODY, bytes)
    return out
  }

  /** Seals `plaintext` as an envelope of `type` into `out` at `start`, under the next counter; returns the end. */
  private sealInto(out: Buffer, start: number, type: number, plaintext: Buffer): number {
    if (this.sendKeyVersion !== this.keyring.version) {
      const primary = this.keyring.primary
      this.sendKey = subkey(primary.key, this.salt)
      this.sendKeyId = primary.id
      this.sendKeyVersion = this.keyring.version
    }
    const counter = ++this.counter
    let at = start + this.prefixBody.copy(out, start)
    out[start + 1] = type
    at = out.writeUInt32BE(this.sendKeyId, at)
    at += this.salt.copy(out, at)
    at = out.writeUInt32BE(Math.floor(counter / 2 ** 32), at)
    at = out.writeUInt32BE(counter >>> 0, at)
    const header = out.subarray(start, at)
    const cipher = createCipheriv('aes-256-gcm', this.sendKey!, nonceOf(out.subarray(at - COUNTER_BYTES, at)))
    cipher.setAAD(header)
    at += cipher.update(plaintext).copy(out, at)
    at += cipher.final().copy(out, at)
    at += cipher.getAuthTag().copy(out, at)
    return at
  }

  /**
   * Opens an incoming datagram of at most `maxBytes`: a sealed one is
   * checked, decrypted and checked against its sender's replay window; a
   * plaintext one passes while `verifyIncoming` is off. `nowMs` (the
   * caller's clock) records when its key was last used by a peer. Never
   * throws: a packet that cannot be accepted gives a drop reason.
   */
  incoming(bytes: Buffer, maxBytes: number, nowMs?: number): OpenResult {
    if (bytes.length === 0 || bytes[0] !== SEALED_MAGIC) return this.plaintext(bytes)
    if (bytes.length > maxBytes) return { ok: false, reason: 'oversized', detail: `sealed packet of ${bytes.length} bytes` }
    return this.guarded(() => this.open(bytes, ENVELOPE_VERSION, nowMs))
  }

  /**
   * Opens an incoming stream message of at most `maxBytes`: a preamble and
   * its body (the simulator delivers both), or a body alone once the real
   * transport has read and opened its preamble (`openStreamPreamble`).
   */
  incomingStream(bytes: Buffer, maxBytes: number, nowMs?: number): OpenResult {
    if (bytes.length === 0 || bytes[0] !== SEALED_MAGIC) return this.plaintext(bytes)
    if (bytes.length > maxBytes) return { ok: false, reason: 'oversized', detail: `sealed stream of ${bytes.length} bytes` }
    if (bytes.length > 1 && bytes[1] === ENVELOPE_STREAM_PREAMBLE) {
      if (bytes.length < this.preambleBytes) return { ok: false, reason: 'truncated', detail: 'sealed stream shorter than its preamble' }
      const preamble = this.openStreamPreamble(bytes.subarray(0, this.preambleBytes), nowMs)
      if (!preamble.ok) return preamble
      if (preamble.bodyLength !== bytes.length - this.preambleBytes) {
        return { ok: false, reason: 'malformed', detail: `stream body of ${bytes.length - this.preambleBytes} bytes, its preamble announced ${preamble.bodyLength}` }
      }
      bytes = bytes.subarray(this.preambleBytes)
    }
    return this.guarded(() => this.open(bytes, ENVELOPE_STREAM_BODY, nowMs))
  }

  /**
   * Opens a stream's preamble (exactly `preambleBytes`): authenticated, not
   * a replay, it gives the length of the body that must follow, and that
   * body (same key and session, the next counter) is then expected once.
   */
  openStreamPreamble(bytes: Buffer, nowMs?: number): PreambleResult {
    const opened = this.guarded(() => this.open(bytes, ENVELOPE_STREAM_PREAMBLE, nowMs))
    if (!opened.ok) return opened
    return { ok: true, bodyLength: opened.bytes.readUInt32BE(0) }
  }

  /**
   * Bytes of the preamble a stream message starting with `firstByte` must
   * begin with: 0 for a plaintext message this node accepts as it is,
   * undefined for one it refuses (plaintext while `verifyIncoming` is on).
   */
  streamPreambleBytes(firstByte: number): number | undefined {
    if (firstByte === SEALED_MAGIC) return this.preambleBytes
    return this.verifyIncoming ? undefined : 0
  }

  /** When a peer's packet sealed under this key id last opened (the caller's clock), if ever. */
  keyLastOpenedMs(id: number): number | undefined {
    return this.lastOpened.get(id)
  }

  /**
   * Removes a key unless a peer's packet opened under it within
   * `keyInUseMs` of `nowMs` (peers still seal with it: removing it would
   * cut them off): then `GV_ERR_KEY_IN_USE`, unless `force`.
   */
  removeKey(key: Uint8Array, nowMs: number, options: { force?: boolean } = {}): void {
    const id = keyIdOf(key)
    const last = this.lastOpened.get(id)
    if (options.force !== true && id !== this.keyring.primary.id && last !== undefined && nowMs - last < this.keyInUseMs) {
      throw new KeyringError(
        `key ${id.toString(16).padStart(8, '0')} opened a peer's packet ${Math.max(0, Math.round(nowMs - last))} ms ago: peers still seal with it. ` +
          `Make the new key primary on every node, retry in ${Math.ceil(this.keyInUseMs / 1000)} s, or force the removal`,
        'GV_ERR_KEY_IN_USE',
      )
    }
    this.keyring.remove(key)
    this.lastOpened.delete(id)
  }

  /**
   * Makes an installed key primary. Returns a warning when no peer's packet
   * opened under it within `keyInUseMs`: peers may not have installed it
   * yet, and would not read what we now send (it proceeds all the same).
   */
  useKey(key: Uint8Array, nowMs: number): string | undefined {
    this.keyring.use(key)
    const id = keyIdOf(key)
    const last = this.lastOpened.get(id)
    if (last !== undefined && nowMs - last < this.keyInUseMs) return undefined
    return `key ${id.toString(16).padStart(8, '0')} is now primary, and no peer sealed a packet with it in the last ${Math.ceil(this.keyInUseMs / 1000)} s: install it on every node before using it anywhere, or peers cannot read us`
  }

  private plaintext(bytes: Buffer): OpenResult {
    if (this.verifyIncoming) return { ok: false, reason: 'unencrypted', detail: 'a plaintext packet, and this cluster requires encryption' }
    return { ok: true, bytes, sealed: false }
  }

  private guarded<T>(open: () => T | Failure): T | Failure {
    try {
      return open()
    } catch (err) {
      if (err instanceof DecodeError) return { ok: false, reason: err.reason, detail: err.message }
      throw err
    }
  }

  /** Parses the clear fields of an envelope and finds its key. */
  private envelope(bytes: Buffer): Envelope | Failure {
    const r = new Reader(bytes)
    r.u8()
    const type = r.u8()
    if (type !== ENVELOPE_VERSION && type !== ENVELOPE_STREAM_PREAMBLE && type !== ENVELOPE_STREAM_BODY) {
      return { ok: false, reason: 'protocol-version', detail: `sealed envelope version ${type}` }
    }
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
    const at = headerLength - COUNTER_BYTES
    const counter = bytes.readUInt32BE(at) * 2 ** 32 + bytes.readUInt32BE(at + 4)
    return { type, keyId, key, salt, counter, headerLength }
  }

  /**
   * Opens one envelope that must be of type `expect`: replay check first
   * (cheap, no state), then authentication, and only then is anything
   * remembered (subkey, window, pending body, key last used).
   */
  private open(bytes: Buffer, expect: number, nowMs: number | undefined): OpenResult {
    const env = this.envelope(bytes)
    if ('ok' in env) return env
    if (env.type !== expect) {
      const what = ['', 'a datagram', 'a stream preamble', 'a stream body'][env.type]!
      const want = ['', 'a datagram', 'a stream preamble', 'a stream body'][expect]!
      // A sealed stream without a preamble is what versions before the preamble sent.
      const reason: DropReason = expect !== ENVELOPE_VERSION && env.type === ENVELOPE_VERSION ? 'protocol-version' : 'malformed'
      return { ok: false, reason, detail: `${what} envelope where ${want} belongs` }
    }
    const saltKey = env.salt.toString('base64')
    const bodyKey = `${env.keyId}:${saltKey}:${env.counter}`
    const session = this.sessions.get(saltKey)
    if (expect === ENVELOPE_STREAM_BODY) {
      if (!this.pendingBodies.has(bodyKey)) return { ok: false, reason: 'replayed', detail: 'a stream body no authenticated preamble announced (or already received)' }
    } else {
      const window = session === undefined ? undefined : expect === ENVELOPE_VERSION ? session.datagrams : session.streams
      if (window !== undefined && !window.fresh(env.counter)) return { ok: false, reason: 'replayed', detail: `counter ${env.counter} already accepted or below the window` }
    }
    if (this.receiveKeysVersion !== this.keyring.version) {
      // A removed key must stop decrypting at once.
      this.receiveKeys.clear()
      this.receiveKeysVersion = this.keyring.version
    }
    const cacheKey = `${env.keyId}:${saltKey}`
    const cached = this.receiveKeys.get(cacheKey)
    const sub = cached ?? subkey(env.key, env.salt)
    const header = bytes.subarray(0, env.headerLength)
    const decipher = createDecipheriv('aes-256-gcm', sub, nonceOf(header.subarray(env.headerLength - COUNTER_BYTES)))
    decipher.setAAD(header)
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
    const body = decipher.update(bytes.subarray(env.headerLength, bytes.length - TAG_BYTES))
    try {
      decipher.final()
    } catch {
      return { ok: false, reason: 'decrypt-failed', detail: 'a sealed packet failed authentication' }
    }
    // Authenticated: from here on, what is remembered was sent by a key holder (forgeries evict nothing).
    if (expect === ENVELOPE_STREAM_PREAMBLE && body.length !== PREAMBLE_PLAINTEXT_BYTES) {
      return { ok: false, reason: 'malformed', detail: `a stream preamble of ${body.length} plaintext bytes` }
    }
    if (cached === undefined) {
      if (this.receiveKeys.size >= RECEIVE_KEY_CACHE) this.receiveKeys.delete(this.receiveKeys.keys().next().value!)
      this.receiveKeys.set(cacheKey, sub)
    }
    if (expect === ENVELOPE_STREAM_BODY) {
      this.pendingBodies.delete(bodyKey)
    } else {
      let s = session
      if (s === undefined) {
        if (this.sessions.size >= REPLAY_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!)
        s = { datagrams: new ReplayWindow(REPLAY_WINDOW), streams: new ReplayWindow(STREAM_REPLAY_WINDOW) }
      } else {
        this.sessions.delete(saltKey)
      }
      // Re-inserted: the map's order is least recently active first, what eviction takes.
      this.sessions.set(saltKey, s)
      ;(expect === ENVELOPE_VERSION ? s.datagrams : s.streams).accept(env.counter)
      if (expect === ENVELOPE_STREAM_PREAMBLE) {
        if (this.pendingBodies.size >= PENDING_BODIES) this.pendingBodies.delete(this.pendingBodies.values().next().value!)
        this.pendingBodies.add(`${env.keyId}:${saltKey}:${env.counter + 1}`)
      }
    }
    if (nowMs !== undefined) this.lastOpened.set(env.keyId, nowMs)
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
