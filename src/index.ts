/**
 * grapevine: cluster-wide key-value state and membership spread by gossip.
 * This file is the whole public surface.
 */
export { Grapevine } from './node.js'
export type { ChangeEvent, KeyValue, Member, Version } from './node.js'
export type { StartOptions } from './options.js'
export type { Value } from './state/entry.js'
export type { EngineStats } from './engine/stats.js'
export {
  ConfigError,
  DecodeError,
  GrapevineError,
  InvalidKeyError,
  StoppedError,
  ValueTooLargeError,
} from './errors.js'
export type { DropReason } from './errors.js'
