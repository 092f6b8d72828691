import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { MAX_TTL_MS } from '../codec/limits.js'
import { ConfigError } from '../errors.js'
import { checkPeerAddress } from '../options.js'
import { isLoopback, parseHostPort } from '../runtime/address.js'

/**
 * The agent's settings, from four sources in this order of precedence:
 * command-line flag > environment variable (`GRAPEVINE_*`) > config file
 * (JSON, `--config`) > default. Every value is checked before anything
 * binds; a bad one is a `ConfigError` naming the flag.
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** A duration: a number of ms, or text such as "500ms", "30s", "5m", "24h". */
export function parseDuration(text: string | number, option: string): number {
  if (typeof text === 'number') {
    if (Number.isFinite(text) && text >= 0) return text
    throw new ConfigError(option, `'${text}' is not a duration`)
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim())
  if (m === null) throw new ConfigError(option, `'${text}' is not a duration (e.g. 500ms, 30s, 5m, 24h)`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms']
  return Number(m[1]) * unit
}

/**
 * A TTL: a positive duration of at most MAX_TTL_MS (an expiry is an absolute
 * time carried in every write, so an absurd one would poison every node).
 */
export function parseTtl(text: string, option: string): number {
  if (text.length > 32) throw new ConfigError(option, 'is not a duration (e.g. 30s, 5m, 24h, 7d)')
  const ms = parseDuration(text, option)
  if (!Number.isFinite(ms) || ms <= 0) throw new ConfigError(option, `'${text}' is not a positive duration`)
  if (ms > MAX_TTL_MS) throw new ConfigError(option, `'${text}' exceeds the longest TTL, ${MAX_TTL_MS} ms (10 years)`)
  return ms
}

const hostPort = (option: string) =>
  z.string().superRefine((v, ctx) => {
    try {
      parseHostPort(v, option)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
    }
  })

const peerAddress = (kind: 'advertise' | 'seed') =>
  z.string().superRefine((v, ctx) => {
    try {
      checkPeerAddress(v, kind, kind)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
    }
  })

const schema = z.strictObject({
  name: z.string().min(1),
  bind: hostPort('bind').default('0.0.0.0:7946'),
  advertise: peerAddress('advertise').optional(),
  http: hostPort('http').default('127.0.0.1:7070'),
  join: z.array(peerAddress('seed')).default([]),
  dnsServers: z.array(z.string()).optional(),
  dataDir: z.string().min(1).optional(),
  preset: z.enum(['lan', 'wan', 'local']).default('lan'),
  label: z.string().default(''),
  keyringFile: z.string().min(1).optional(),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  httpToken: z.string().min(1).optional(),
  /** A file holding the token (a flag's value is visible to every user in `ps`). */
  httpTokenFile: z.string().min(1).optional(),
  /** Host names (besides the bound address and localhost) clients may reach the HTTP API by. */
  httpAllowedHosts: z.array(z.string().min(1)).default([]),
  /** Serve the HTTP API on a non-loopback address without a token. */
  httpAllowUnauthenticated: z.boolean().default(false),
  httpMaxWatchers: z.number().int().positive().max(10_000).default(64),
  gossipIntervalMs: z.number().positive().optional(),
  fanout: z.number().int().positive().max(64).optional(),
  tombstoneRetentionMs: z.number().positive().optional(),
  /** How often the data dir's snapshot is written (and at shutdown). */
  snapshotIntervalMs: z.number().positive().default(30_000),
})

export type AgentConfig = z.output<typeof schema>

/** One setting: its config-file key, flag and environment variable, and how text becomes its value. */
interface Setting {
  readonly key: keyof AgentConfig
  readonly flag: string
  readonly env: string
  readonly parse: (text: string, flag: string) => unknown
}

const text = (t: string): unknown => t
const list = (t: string): unknown =>
  t
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
const duration = (t: string, flag: string): unknown => parseDuration(t, flag)
const bool = (t: string, flag: string): unknown => {
  const v = t.trim().toLowerCase()
  if (['true', '1', 'yes'].includes(v)) return true
  if (['false', '0', 'no'].includes(v)) return false
  throw new ConfigError(flag, `'${t}' is not true or false`)
}
const int = (t: string, flag: string): unknown => {
  if (!/^\d+$/.test(t.trim())) throw new ConfigError(flag, `'${t}' is not a whole number`)
  return Number(t)
}

export const SETTINGS: readonly Setting[] = [
  { key: 'name', flag: 'name', env: 'GRAPEVINE_NAME', parse: text },
  { key: 'bind', flag: 'bind', env: 'GRAPEVINE_BIND', parse: text },
  { key: 'advertise', flag: 'advertise', env: 'GRAPEVINE_ADVERTISE', parse: text },
  { key: 'http', flag: 'http', env: 'GRAPEVINE_HTTP', parse: text },
  { key: 'join', flag: 'join', env: 'GRAPEVINE_JOIN', parse: list },
  { key: 'dnsServers', flag: 'dns-server', env: 'GRAPEVINE_DNS_SERVERS', parse: list },
  { key: 'dataDir', flag: 'data-dir', env: 'GRAPEVINE_DATA_DIR', parse: text },
  { key: 'preset', flag: 'preset', env: 'GRAPEVINE_PRESET', parse: text },
  { key: 'label', flag: 'label', env: 'GRAPEVINE_LABEL', parse: text },
  { key: 'keyringFile', flag: 'keyring-file', env: 'GRAPEVINE_KEYRING_FILE', parse: text },
  { key: 'logLevel', flag: 'log-level', env: 'GRAPEVINE_LOG_LEVEL', parse: text },
  { key: 'httpToken', flag: 'http-token', env: 'GRAPEVINE_HTTP_TOKEN', parse: text },
  { key: 'httpTokenFile', flag: 'http-token-file', env: 'GRAPEVINE_HTTP_TOKEN_FILE', parse: text },
  { key: 'httpAllowedHosts', flag: 'http-allowed-hosts', env: 'GRAPEVINE_HTTP_ALLOWED_HOSTS', parse: list },
  { key: 'httpAllowUnauthenticated', flag: 'http-allow-unauthenticated', env: 'GRAPEVINE_HTTP_ALLOW_UNAUTHENTICATED', parse: bool },
  { key: 'httpMaxWatchers', flag: 'http-max-watchers', env: 'GRAPEVINE_HTTP_MAX_WATCHERS', parse: int },
  { key: 'gossipIntervalMs', flag: 'gossip-interval', env: 'GRAPEVINE_GOSSIP_INTERVAL', parse: duration },
  { key: 'fanout', flag: 'fanout', env: 'GRAPEVINE_FANOUT', parse: int },
  { key: 'tombstoneRetentionMs', flag: 'tombstone-retention', env: 'GRAPEVINE_TOMBSTONE_RETENTION', parse: duration },
  { key: 'snapshotIntervalMs', flag: 'snapshot-interval', env: 'GRAPEVINE_SNAPSHOT_INTERVAL', parse: duration },
]

/** Config-file values use the same names as the settings (camelCase); durations may be text there too. */
function fromFile(path: string): Record<string, unknown> {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ConfigError('config', `cannot read ${path}: ${(err as Error).message}`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('config', `${path} must hold a JSON object`)
  const out: Record<string, unknown> = { ...(raw as Record<string, unknown>) }
  for (const s of SETTINGS) {
    const v = out[s.key]
    if (typeof v === 'string' && s.parse === duration) out[s.key] = parseDuration(v, `config ${s.key}`)
  }
  return out
}

/**
 * Merges the sources (flags as commander gives them, by setting key, raw
 * text) and validates the result.
 */
export function resolveAgentConfig(flags: Readonly<Record<string, string | string[] | undefined>>, env: NodeJS.ProcessEnv, configFile?: string): AgentConfig {
  const merged: Record<string, unknown> = configFile === undefined ? {} : fromFile(configFile)
  for (const s of SETTINGS) {
    const e = env[s.env]
    if (e !== undefined && e !== '') merged[s.key] = s.parse(e, s.env)
  }
  for (const s of SETTINGS) {
    const f = flags[s.key]
    if (f === undefined) continue
    merged[s.key] = Array.isArray(f) ? f.flatMap((x) => list(x) as string[]) : s.parse(f, `--${s.flag}`)
  }
  const parsed = schema.safeParse(merged)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const key = issue.path.length > 0 ? String(issue.path[0]) : ((issue as { keys?: string[] }).keys?.join(', ') ?? '(config)')
    const setting = SETTINGS.find((s) => s.key === key)
    throw new ConfigError(setting === undefined ? key : `--${setting.flag}`, issue.message)
  }
  return checkHttpAccess(parsed.data)
}

/** Read once: a token file's content, trimmed of the final newline. */
function readTokenFile(file: string): string {
  let token: string
  try {
    token = readFileSync(file, 'utf8').replace(/\r?\n$/, '')
  } catch (err) {
    throw new ConfigError('--http-token-file', `cannot read ${file}: ${(err as Error).message}`)
  }
  if (token === '' || /\s/.test(token)) throw new ConfigError('--http-token-file', `${file} must hold one token: no spaces, not empty`)
  return token
}

/**
 * The token (from --http-token or --http-token-file), and the invariant
 * that an HTTP API reachable from other hosts has one unless the operator
 * said otherwise: everything it serves (keys, values, keyring changes) is
 * otherwise open to the network.
 */
function checkHttpAccess(c: AgentConfig): AgentConfig {
  let token = c.httpToken
  if (c.httpTokenFile !== undefined) {
    if (token !== undefined) throw new ConfigError('--http-token-file', 'give either --http-token or --http-token-file, not both')
    token = readTokenFile(c.httpTokenFile)
  }
  if (token !== undefined && /\s/.test(token)) throw new ConfigError('--http-token', 'the token must not contain spaces')
  const { host } = parseHostPort(c.http, '--http')
  if (token === undefined && !c.httpAllowUnauthenticated && !isLoopback(host)) {
    throw new ConfigError(
      '--http',
      `'${c.http}' is not a loopback address: anyone who can reach it could read and change everything. Set --http-token-file (or --http-token, GRAPEVINE_HTTP_TOKEN), or pass --http-allow-unauthenticated`,
    )
  }
  return token === undefined ? c : { ...c, httpToken: token }
}
