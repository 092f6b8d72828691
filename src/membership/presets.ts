/**
 * Timing of membership and failure detection. Presets follow memberlist's
 * (`lan`, `wan`, `local`) in spirit; the README documents each value and
 * ARCHITECTURE.md gives detection time as a formula of them.
 */
export interface MembershipTiming {
  /** Period of SWIM probes: each node probes one member per period. */
  readonly probeIntervalMs: number
  /** Wait for a direct Ack before asking `indirectChecks` others to probe. */
  readonly probeTimeoutMs: number
  /** Helpers asked to probe a member that missed a direct probe (SWIM's k). */
  readonly indirectChecks: number
  /** Minimum suspicion timeout = suspicionMult x max(2, log10 N) x probeIntervalMs. */
  readonly suspicionMult: number
  /** Maximum suspicion timeout (no confirmations yet) = this x the minimum (Lifeguard). */
  readonly suspicionMaxMult: number
  /** Period of membership dissemination rounds (only when there is news). */
  readonly memberGossipIntervalMs: number
  /** Members each dissemination round sends to. */
  readonly gossipNodes: number
  /** Each update is sent retransmitMult x ceil(log10(N + 1)) times. */
  readonly retransmitMult: number
  /** Dead members still receive dissemination rounds for this long (so they learn of it and refute). */
  readonly gossipToTheDeadMs: number
  /** Dead and left members are forgotten after this long. */
  readonly reapTimeoutMs: number
  /** A full membership sync with a peer whose fingerprint differs, at most once per this period. */
  readonly memberSyncIntervalMs: number
  /** Local health (Lifeguard awareness) caps at this; timeouts scale by (score + 1). */
  readonly awarenessMax: number
  /** First join retry delay; it doubles up to `joinRetryMaxMs`. */
  readonly joinRetryMs: number
  readonly joinRetryMaxMs: number
}

export type PresetName = 'lan' | 'wan' | 'local'

const DAY = 24 * 60 * 60 * 1000

export const PRESETS: Readonly<Record<PresetName, MembershipTiming>> = {
  lan: {
    probeIntervalMs: 1000,
    probeTimeoutMs: 500,
    indirectChecks: 3,
    suspicionMult: 1.25,
    suspicionMaxMult: 6,
    memberGossipIntervalMs: 200,
    gossipNodes: 3,
    retransmitMult: 4,
    gossipToTheDeadMs: 30_000,
    reapTimeoutMs: DAY,
    memberSyncIntervalMs: 30_000,
    awarenessMax: 8,
    joinRetryMs: 1000,
    joinRetryMaxMs: 30_000,
  },
  wan: {
    probeIntervalMs: 5000,
    probeTimeoutMs: 3000,
    indirectChecks: 3,
    suspicionMult: 3,
    suspicionMaxMult: 6,
    memberGossipIntervalMs: 500,
    gossipNodes: 4,
    retransmitMult: 4,
    gossipToTheDeadMs: 60_000,
    reapTimeoutMs: DAY,
    memberSyncIntervalMs: 60_000,
    awarenessMax: 8,
    joinRetryMs: 2000,
    joinRetryMaxMs: 60_000,
  },
  local: {
    probeIntervalMs: 1000,
    probeTimeoutMs: 200,
    indirectChecks: 3,
    suspicionMult: 1.25,
    suspicionMaxMult: 6,
    memberGossipIntervalMs: 100,
    gossipNodes: 3,
    retransmitMult: 2,
    gossipToTheDeadMs: 15_000,
    reapTimeoutMs: DAY,
    memberSyncIntervalMs: 15_000,
    awarenessMax: 8,
    joinRetryMs: 500,
    joinRetryMaxMs: 10_000,
  },
}

/** Lifeguard's suspicion timeout: from max (no confirmation) down to min (k confirmations), on a log scale. */
export function suspicionTimeoutMs(minMs: number, maxMs: number, confirmations: number, k: number): number {
  if (k < 1) return minMs
  const frac = Math.log(Math.min(confirmations, k) + 1) / Math.log(k + 1)
  return Math.max(minMs, maxMs - (maxMs - minMs) * frac)
}

/** The minimum suspicion timeout for a cluster of `n` members. */
export function minSuspicionMs(t: MembershipTiming, n: number): number {
  return t.suspicionMult * Math.max(2, Math.log10(Math.max(1, n))) * t.probeIntervalMs
}

/**
 * Times an update is retransmitted in a cluster of `n`: retransmitMult x
 * ceil(log10(n + 1)), at least twice the multiplier, since in a small
 * cluster a handful of sends can all miss the one node that needs them.
 */
export function retransmitLimit(t: MembershipTiming, n: number): number {
  return t.retransmitMult * Math.max(2, Math.ceil(Math.log10(n + 1)))
}
