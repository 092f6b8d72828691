import { isIP } from 'node:net'
import { z } from 'zod'
import { DEFAULT_LIMITS } from './codec/limits.js'
import { ENGINE_DEFAULTS } from './engine/config.js'
import { tagsEncodedSize } from './codec/member-codec.js'
import { ConfigError } from './errors.js'
import { isHostName, isWildcardHost, parseHostPort } from './runtime/address.js'
import { parseKey } from './security/keyring.js'

/** The member tag carrying a node's state hash (see `announceStateHash`). */
export const STATE_HASH_TAG = 'gv.hash'

const positiveInt = z.number().int().positive()
const duration = z.number().finite().positive()

/** Options of `Grapevine.start`. Every one is validated at start; a bad one throws `ConfigError` naming it. */
export const startOptionsSchema = z.strictObject({
  /** Unique node name (1 to 128 UTF-8 bytes). */
  name: z.string().min(1).refine((s) => Buffer.byteLength(s) <= DEFAULT_LIMITS.maxNameBytes, 'at most 128 bytes'),
  /** Address to bind UDP and TCP on, `host:port` (port 0: any free port). */
  bind: z.string().default('0.0.0.0:7946'),
  /** Address peers should use to reach us, when it differs from `bind` (NAT, containers). */
  advertise: z.string().optional(),
  /** Addresses of nodes to join through. */
  seeds: z.array(z.string()).default([]),
  /** DNS servers ("ip" or "ip:port") to resolve seed names with, instead of the system resolver. */
  dnsServers: z.array(z.string().min(1)).optional(),
  gossipIntervalMs: duration.default(ENGINE_DEFAULTS.gossipIntervalMs),
  fanout: positiveInt.max(64).default(ENGINE_DEFAULTS.fanout),
  eagerPush: z.boolean().default(ENGINE_DEFAULTS.eagerPush),
  tombstoneRetentionMs: duration.default(ENGINE_DEFAULTS.tombstoneRetentionMs),
  maxClockDriftMs: duration.default(ENGINE_DEFAULTS.maxClockDriftMs),
  label: z.string().refine((s) => Buffer.byteLength(s) <= DEFAULT_LIMITS.maxLabelBytes, 'at most 128 bytes').default(''),
  maxPacketBytes: positiveInt.min(512).max(65_000).default(DEFAULT_LIMITS.maxPacketBytes),
  maxKeyBytes: positiveInt.max(65_535).default(DEFAULT_LIMITS.maxKeyBytes),
  maxValueBytes: positiveInt.max(64 * 1024 * 1024).default(DEFAULT_LIMITS.maxValueBytes),
  maxStreamBytes: positiveInt.default(DEFAULT_LIMITS.maxStreamBytes),
  /** Entries, digest rows or members one message may carry. */
  maxItemsPerMessage: positiveInt.default(DEFAULT_LIMITS.maxItemsPerMessage),
  /** Members tracked at most; alive records of further names are refused. */
  maxMembers: positiveInt.default(DEFAULT_LIMITS.maxMembers),
  streamTimeoutMs: duration.default(10_000),
  /** Inbound streams at once (more are refused), and outbound (more are dropped, counted). */
  maxConcurrentStreams: positiveInt.default(16),
  /** Inbound streams at once from one IP address; more are refused. */
  maxStreamsPerIp: positiveInt.default(4),
  /** An inbound stream's length (and sealed preamble) must arrive within this of the connection. */
  streamHeaderTimeoutMs: duration.default(2000),
  /** An inbound stream's body must arrive at least this fast, averaged over `streamRateWindowMs`. */
  minStreamBytesPerSec: positiveInt.default(64 * 1024),
  streamRateWindowMs: duration.default(5000),
  /** Bytes buffered across all inbound streams at most (default: twice the largest sealed stream message). */
  maxStreamBufferBytes: positiveInt.optional(),
  /** Membership timing preset (memberlist's): lan (default), wan or local. */
  preset: z.enum(['lan', 'wan', 'local']).default('lan'),
  /** Tags published with this member (small string map, at most 512 bytes encoded). */
  tags: z
    .record(z.string(), z.string())
    .refine((t) => tagsEncodedSize(t) <= DEFAULT_LIMITS.maxTagsBytes, `at most ${DEFAULT_LIMITS.maxTagsBytes} bytes encoded`)
    .default({}),
  /**
   * Publish this node's state hash as the member tag `gv.hash` (at most once
   * per `announceIntervalMs`, when it changed), so every node can tell
   * whether the cluster has converged (`clusterStatus()`). Costs about 25
   * bytes of the 512 tag bytes and one membership update per change.
   */
  announceStateHash: z.boolean().default(false),
  announceIntervalMs: duration.default(1000),
  /** Dead and left members are forgotten after this long (default: the preset's, 24 h). */
  reapTimeoutMs: duration.optional(),
  /** Preset overrides. */
  probeIntervalMs: duration.optional(),
  probeTimeoutMs: duration.optional(),
  /**
   * Packet encryption (AES-256-GCM, the label as associated data). `keys`
   * are base64 32-byte keys, the first one primary (encrypts); all decrypt.
   * To move a running plaintext cluster to encryption without downtime,
   * start every node with `verifyIncoming: false, verifyOutgoing: false`,
   * then turn `verifyOutgoing` on everywhere, then `verifyIncoming`.
   */
  encryption: z
    .strictObject({
      keys: z.array(z.string()).min(1),
      verifyIncoming: z.boolean().default(true),
      verifyOutgoing: z.boolean().default(true),
      /** A key that opened a peer's packet this recently is not removed without force (default 10 s). */
      keyInUseMs: duration.optional(),
    })
    .optional(),
  /** How long `start` waits for a seed to answer before resolving anyway (it keeps retrying). */
  joinTimeoutMs: z.number().finite().nonnegative().default(10_000),
})

export type StartOptions = z.input<typeof startOptionsSchema>
export type ResolvedOptions = z.output<typeof startOptionsSchema>

/**
 * An address other nodes send to (`advertise`, a seed): a port other than 0
 * and an IP or a DNS name. `advertise` may not be a wildcard either: peers
 * would send to an address that reaches no one (or themselves).
 */
export function checkPeerAddress(text: string, option: string, kind: 'advertise' | 'seed'): void {
  const { host, port } = parseHostPort(text, option)
  if (port === 0) throw new ConfigError(option, `'${text}' has port 0; peers need the real port`)
  if (isIP(host) === 0 && !isHostName(host)) throw new ConfigError(option, `'${text}' has no valid host (an IP address or a DNS name)`)
  if (kind === 'advertise' && isWildcardHost(host)) throw new ConfigError(option, `'${text}' is a wildcard address; advertise an address peers can reach`)
}

/**
 * Tags peers will take: string values, at most maxTagsBytes encoded, the
 * state-hash tag included when this node announces it (peers refuse larger
 * tags, so they would never spread). For `tags` at start and `setTags` later.
 */
export function checkTags(tags: unknown, announceStateHash: boolean): void {
  if (tags === null || typeof tags !== 'object' || Object.values(tags).some((v) => typeof v !== 'string')) {
    throw new ConfigError('tags', 'tags must be an object of string values')
  }
  const published = announceStateHash ? { ...(tags as Record<string, string>), [STATE_HASH_TAG]: '0'.repeat(16) } : (tags as Record<string, string>)
  if (tagsEncodedSize(published) > DEFAULT_LIMITS.maxTagsBytes) {
    throw new ConfigError('tags', `at most ${DEFAULT_LIMITS.maxTagsBytes} bytes encoded${announceStateHash ? `, including the ${STATE_HASH_TAG} tag` : ''}`)
  }
}

export function resolveOptions(input: unknown): ResolvedOptions {
  const parsed = startOptionsSchema.safeParse(input)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const option = issue.path.length > 0 ? issue.path.join('.') : ((issue as { keys?: string[] }).keys?.join(', ') ?? '(options)')
    throw new ConfigError(option, issue.message)
  }
  const o = parsed.data
  parseHostPort(o.bind, 'bind')
  if (o.advertise !== undefined) checkPeerAddress(o.advertise, 'advertise', 'advertise')
  o.seeds.forEach((s, i) => checkPeerAddress(s, `seeds[${i}]`, 'seed'))
  o.encryption?.keys.forEach((k, i) => {
    try {
      parseKey(k)
    } catch (err) {
      throw new ConfigError(`encryption.keys[${i}]`, (err as Error).message)
    }
  })
  checkTags(o.tags, o.announceStateHash)
  if (o.maxValueBytes > o.maxStreamBytes) throw new ConfigError('maxValueBytes', 'must not exceed maxStreamBytes')
  return o
}
