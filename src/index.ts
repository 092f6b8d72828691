/**
 * grapevine: cluster-wide key-value state and membership spread by gossip.
 * This file is the whole public surface.
 */
export { Grapevine } from './node.js'
export type { ChangeEvent, KeyValue, Member, MemberEvent, NodeKeyring, Version } from './node.js'
export { generateKey } from './security/keyring.js'
export type { KeyInfo } from './security/keyring.js'
export type { MemberEventType, NameConflict } from './membership/membership.js'
export type { PresetName, MembershipTiming } from './membership/presets.js'
export { PRESETS } from './membership/presets.js'
export type { StartOptions } from './options.js'
export type { Value } from './state/entry.js'
export type { EngineStats } from './engine/stats.js'
export {
  ConfigError,
  DecodeError,
  GrapevineError,
  InvalidKeyError,
  InvalidTtlError,
  KeyringError,
  NameConflictError,
  StoppedError,
  ValueTooLargeError,
} from './errors.js'
export type { DropReason } from './errors.js'
