import { createHash, randomBytes } from 'node:crypto'
import { KeyringError } from '../errors.js'

/** AES-256: every key is 32 bytes. */
export const KEY_BYTES = 32

/** Keys a ring holds at most (a rotation needs two; a few more leave room for mistakes). */
export const MAX_KEYS = 16

/**
 * A key's id on the wire: the first four bytes of its SHA-256, so a receiver
 * picks the key directly instead of trying each. It reveals nothing useful
 * about a random 256-bit key.
 */
export function keyIdOf(key: Uint8Array): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0)
}

/** A new random key, in base64 (what `encryption.keys` and `keyring install` take). */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString('base64')
}

/** Parses a key given as base64 (what `grapevine keyring` and config files use). */
export function parseKey(text: string): Buffer {
  const trimmed = text.trim()
  const key = Buffer.from(trimmed, 'base64')
  // Buffer.from ignores bad characters: re-encoding must give the input back.
  if (key.length !== KEY_BYTES || key.toString('base64') !== trimmed) {
    throw new KeyringError(`a key must be ${KEY_BYTES} bytes in base64 (44 characters), got '${trimmed.slice(0, 8)}...'`)
  }
  return key
}

export interface KeyInfo {
  /** The key in base64. */
  readonly key: string
  readonly id: number
  readonly primary: boolean
}

/**
 * The keys of one node: the primary key encrypts, every installed key
 * decrypts. Rotation on a live cluster, as memberlist and Serf do it:
 * install the new key on every node, make it primary on every node, then
 * remove the old one; at each step every node can read what every other
 * node sends.
 *
 * Invariants: at least one key, the primary among them, no two keys with
 * the same id, at most MAX_KEYS keys.
 */
export class Keyring {
  private readonly keys = new Map<number, Buffer>()
  private primaryId: number
  /** Bumped on every change, so caches derived from the keys know to refresh. */
  version = 0

  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new KeyringError('a keyring needs at least one key')
    for (const k of keys) this.add(k)
    this.primaryId = keyIdOf(keys[0]!)
  }

  /** From base64 keys; the first is the primary. */
  static fromBase64(keys: readonly string[]): Keyring {
    return new Keyring(keys.map(parseKey))
  }

  get primary(): { readonly id: number; readonly key: Buffer } {
    return { id: this.primaryId, key: this.keys.get(this.primaryId)! }
  }

  /** The installed key with this id, if any. */
  byId(id: number): Buffer | undefined {
    return this.keys.get(id)
  }

  get size(): number {
    return this.keys.size
  }

  list(): KeyInfo[] {
    return [...this.keys].map(([id, key]) => ({ key: key.toString('base64'), id, primary: id === this.primaryId }))
  }

  /** Adds a key for decryption (installing one already present does nothing). */
  install(key: Uint8Array): void {
    if (this.keys.has(keyIdOf(key))) return
    this.add(key)
    this.version++
  }

  /** Makes an installed key the one that encrypts. */
  use(key: Uint8Array): void {
    const id = keyIdOf(key)
    if (!this.keys.has(id)) throw new KeyringError('install a key before making it primary')
    this.primaryId = id
    this.version++
  }

  /** Removes a key; the primary cannot be removed (make another primary first). */
  remove(key: Uint8Array): void {
    const id = keyIdOf(key)
    if (id === this.primaryId) throw new KeyringError('the primary key cannot be removed; make another key primary first')
    if (this.keys.delete(id)) this.version++
  }

  private add(key: Uint8Array): void {
    if (key.length !== KEY_BYTES) throw new KeyringError(`a key must be ${KEY_BYTES} bytes, got ${key.length}`)
    if (this.keys.size >= MAX_KEYS) throw new KeyringError(`a keyring holds at most ${MAX_KEYS} keys`)
    const id = keyIdOf(key)
    const held = this.keys.get(id)
    if (held !== undefined && !held.equals(key)) throw new KeyringError('two different keys share an id; generate another key')
    this.keys.set(id, Buffer.from(key))
  }
}
