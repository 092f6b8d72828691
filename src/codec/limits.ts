/**
 * Bounds on everything decoded from the wire. Every length is checked against
 * one of these before anything is allocated.
 */
export interface Limits {
  /** Largest datagram sent or accepted. */
  readonly maxPacketBytes: number
  /** Largest stream message (full transfers, large values). */
  readonly maxStreamBytes: number
  readonly maxKeyBytes: number
  readonly maxValueBytes: number
  /** Node names (and so origins) and addresses. */
  readonly maxNameBytes: number
  readonly maxLabelBytes: number
  /** Entries, segments, digest rows or members in one message. */
  readonly maxItemsPerMessage: number
  /** A member's tags, encoded (count, keys and values with their length prefixes). */
  readonly maxTagsBytes: number
  /** Members one node keeps track of; alive records of further names are refused. */
  readonly maxMembers: number
}

export const DEFAULT_LIMITS: Limits = {
  maxPacketBytes: 1400,
  maxStreamBytes: 64 * 1024 * 1024,
  maxKeyBytes: 256,
  maxValueBytes: 64 * 1024,
  maxNameBytes: 128,
  maxLabelBytes: 128,
  maxItemsPerMessage: 1_000_000,
  maxTagsBytes: 512,
  maxMembers: 200_000,
}

/**
 * The longest TTL a write may carry: 10 years. An expiry is an absolute time
 * in ms on the wire (a varint below 2^53), so without a ceiling a huge TTL
 * would make a write no peer can decode; with it every expiry stays near now.
 */
export const MAX_TTL_MS = 10 * 365 * 24 * 3600 * 1000
