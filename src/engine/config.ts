import { type Limits, DEFAULT_LIMITS } from '../codec/limits.js'
import { ANY_ADDRESS, type AddressRule } from '../codec/messages.js'
import { NO_TAGS, type Tags } from '../membership/member.js'
import { type MembershipTiming, PRESETS } from '../membership/presets.js'

/** Everything the engine needs to know; the driver fills in `name` and `address`. */
export interface EngineConfig {
  /** Unique node name; also the origin of this node's writes. */
  readonly name: string
  /** Distinguishes successive runs of one name (the real runtime uses its start time in ms). */
  readonly generation: number
  /** Address peers reach this node at (advertised). */
  readonly address: string
  /** Cluster label: messages of another label are dropped. */
  readonly label: string
  /** Addresses to contact when no peer is known yet. */
  readonly seeds: readonly string[]
  /** Period of anti-entropy rounds. */
  readonly gossipIntervalMs: number
  /** Peers contacted per round, and per eager push. */
  readonly fanout: number
  /** Whether local writes are pushed at once (rumor mongering) besides anti-entropy. */
  readonly eagerPush: boolean
  /** Hops a pushed write may still travel; undefined: ceil(log_fanout(N)) + 1, from the known cluster size. */
  readonly pushHops: number | undefined
  /** How long tombstones and expired entries are kept before collection. */
  readonly tombstoneRetentionMs: number
  /** Versions further than this ahead of our clock are refused. */
  readonly maxClockDriftMs: number
  /** A delta larger than this goes over a stream in one piece rather than datagram by datagram. */
  readonly bulkThresholdBytes: number
  readonly limits: Limits
  /** Membership and failure detection timing (a preset, possibly adjusted). */
  readonly timing: MembershipTiming
  /** Tags this node publishes about itself. */
  readonly tags: Tags
  /** Our membership incarnation starts above this (a previous run's, from a data dir). */
  readonly minIncarnation: number
  /** Which addresses on the wire the driver can send to; messages naming others are refused at decode. */
  readonly isUsableAddress: AddressRule
  /**
   * The sending host of a transport address: the key of per-source limits
   * and of the check that a stream's sender is the member it names. The real
   * network takes the IP (a stream arrives from an ephemeral port); the
   * default, the whole address, suits the simulator.
   */
  readonly peerHostOf: (address: string) => string
}

export const ENGINE_DEFAULTS = {
  label: '',
  seeds: [] as readonly string[],
  gossipIntervalMs: 1000,
  fanout: 3,
  eagerPush: true,
  pushHops: undefined as number | undefined,
  tombstoneRetentionMs: 24 * 60 * 60 * 1000,
  maxClockDriftMs: 60_000,
  bulkThresholdBytes: 16 * 1024,
  limits: DEFAULT_LIMITS,
  timing: PRESETS.lan,
  tags: NO_TAGS,
  minIncarnation: 0,
  isUsableAddress: ANY_ADDRESS,
  peerHostOf: (address: string): string => address,
}

export type EngineConfigInput = Partial<Omit<EngineConfig, 'limits' | 'timing'>> &
  Pick<EngineConfig, 'name' | 'address' | 'generation'> & { limits?: Partial<Limits>; timing?: Partial<MembershipTiming> }

export function engineConfig(partial: EngineConfigInput): EngineConfig {
  return {
    ...ENGINE_DEFAULTS,
    ...partial,
    limits: { ...DEFAULT_LIMITS, ...partial.limits },
    timing: { ...PRESETS.lan, ...partial.timing },
  }
}
