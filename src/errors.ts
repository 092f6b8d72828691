/**
 * Errors carry a stable `code` (GV_ERR_*) so callers branch on the code, not
 * on the message; messages say what to do.
 */
export class GrapevineError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'GrapevineError'
    this.code = code
  }
}

/** A configuration option is missing, of the wrong type or out of range. */
export class ConfigError extends GrapevineError {
  readonly option: string
  constructor(option: string, message: string) {
    super('GV_ERR_CONFIG', `invalid option '${option}': ${message}`)
    this.name = 'ConfigError'
    this.option = option
  }
}

/** A key or value broke the configured limits (size, encoding). */
export class InvalidKeyError extends GrapevineError {
  constructor(message: string) {
    super('GV_ERR_INVALID_KEY', message)
    this.name = 'InvalidKeyError'
  }
}

/** A TTL that is not a positive number of milliseconds up to MAX_TTL_MS (10 years). */
export class InvalidTtlError extends GrapevineError {
  constructor(message: string) {
    super('GV_ERR_BAD_TTL', message)
    this.name = 'InvalidTtlError'
  }
}

export class ValueTooLargeError extends GrapevineError {
  constructor(message: string) {
    super('GV_ERR_VALUE_TOO_LARGE', message)
    this.name = 'ValueTooLargeError'
  }
}

/** The node was stopped; the call cannot be served. */
export class StoppedError extends GrapevineError {
  constructor() {
    super('GV_ERR_STOPPED', 'the node is stopped')
    this.name = 'StoppedError'
  }
}

/** Another live process already uses this node's name; this one refused to start. */
export class NameConflictError extends GrapevineError {
  readonly theirAddress: string
  readonly ourAddress: string
  constructor(name: string, ourAddress: string, theirAddress: string) {
    super(
      'GV_ERR_NAME_CONFLICT',
      `node name '${name}' is already used by a live node at ${theirAddress} (we are ${ourAddress}); choose another name or stop that node`,
    )
    this.name = 'NameConflictError'
    this.ourAddress = ourAddress
    this.theirAddress = theirAddress
  }
}

/**
 * A keyring operation or key that cannot be accepted (bad key, removing the
 * primary...): `GV_ERR_KEYRING`; `GV_ERR_KEY_IN_USE` when removing a key
 * that peers still sealed packets with moments ago (retry, or force).
 */
export class KeyringError extends GrapevineError {
  constructor(message: string, code: 'GV_ERR_KEYRING' | 'GV_ERR_KEY_IN_USE' = 'GV_ERR_KEYRING') {
    super(code, message)
    this.name = 'KeyringError'
  }
}

/** Input bytes that do not decode. `reason` is a stable drop-counter label. */
export class DecodeError extends GrapevineError {
  readonly reason: DropReason
  constructor(reason: DropReason, message: string) {
    super('GV_ERR_DECODE', message)
    this.name = 'DecodeError'
    this.reason = reason
  }
}

/** Why an inbound message (or part of one) was dropped; each is a counter. */
export type DropReason =
  | 'truncated'
  | 'oversized'
  | 'bad-magic'
  | 'protocol-version'
  | 'unknown-type'
  | 'label-mismatch'
  | 'malformed'
  | 'limit-exceeded'
  | 'clock-drift'
  | 'past-horizon'
  /** A full-state or bulk reply refused by the stream rate limit. */
  | 'rate-limited'
  /** A sealed packet under a key this node does not hold (or this node has no keyring). */
  | 'unknown-key'
  /** A sealed packet that failed authentication: forged, corrupted, or under another key with a colliding id. */
  | 'decrypt-failed'
  /** A plaintext packet while `verifyIncoming` requires encryption. */
  | 'unencrypted'
  /** A sealed packet whose (sender salt, counter) was already accepted or is older than the replay window. */
  | 'replayed'
  /** A watermark claim (a Reset's vector, a segment's `upTo`) that the message itself does not prove. */
  | 'watermark-refused'
  /** A claim with a hostile value refused on its meaning (an absurd incarnation, too many new members from one source). */
  | 'claim-refused'
  /** A stream reply (full state, bulk delta) not sent: its destination is not the requesting member itself (reflection). */
  | 'unproven-destination'
  /** Handling the message threw: a bug, caught by the last-resort guard so the node keeps running. */
  | 'internal-error'
