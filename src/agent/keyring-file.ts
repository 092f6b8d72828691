import { readFileSync } from 'node:fs'
import { ConfigError } from '../errors.js'
import { parseKey } from '../security/keyring.js'
import { writeFileAtomic } from './atomic-file.js'

/**
 * The agent's keyring file (`--keyring-file`), JSON:
 *
 *   { "keys": ["<base64>", ...], "verifyIncoming": true, "verifyOutgoing": true }
 *
 * The first key is the primary. The agent rewrites the file after every
 * keyring change made through the API, so a restart keeps the rotation's
 * state, and reads it again on SIGHUP.
 */
export interface KeyringFile {
  readonly keys: string[]
  readonly verifyIncoming: boolean
  readonly verifyOutgoing: boolean
}

export function readKeyringFile(path: string): KeyringFile {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ConfigError('--keyring-file', `cannot read ${path}: ${(err as Error).message}`)
  }
  const o = raw as { keys?: unknown; verifyIncoming?: unknown; verifyOutgoing?: unknown }
  if (typeof o !== 'object' || o === null || !Array.isArray(o.keys) || o.keys.length === 0 || !o.keys.every((k) => typeof k === 'string')) {
    throw new ConfigError('--keyring-file', `${path} must hold {"keys": ["<base64 key>", ...]} with at least one key`)
  }
  for (const [i, k] of (o.keys as string[]).entries()) {
    try {
      parseKey(k)
    } catch (err) {
      throw new ConfigError('--keyring-file', `${path}: keys[${i}]: ${(err as Error).message}`)
    }
  }
  for (const f of ['verifyIncoming', 'verifyOutgoing'] as const) {
    if (o[f] !== undefined && typeof o[f] !== 'boolean') throw new ConfigError('--keyring-file', `${path}: ${f} must be true or false`)
  }
  return { keys: o.keys as string[], verifyIncoming: (o.verifyIncoming as boolean | undefined) ?? true, verifyOutgoing: (o.verifyOutgoing as boolean | undefined) ?? true }
}

export function writeKeyringFile(path: string, k: KeyringFile): void {
  writeFileAtomic(path, `${JSON.stringify(k, null, 2)}\n`, 0o600)
}
