import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs'
import { type Logger, destination, pino } from 'pino'
import { DEFAULT_LIMITS } from '../codec/limits.js'
import { ENGINE_DEFAULTS } from '../engine/config.js'
import { Grapevine, type NodeKeyring } from '../node.js'
import { formatHostPort, isLoopback, parseHostPort } from '../runtime/address.js'
import { type KeyInfo, Keyring, parseKey } from '../security/keyring.js'
import type { AgentConfig } from './config.js'
import { renderDashboard } from './dashboard.js'
import { HttpApi, type KeyringOp } from './http-api.js'
import { HttpError } from './http-guard.js'
import { type KeyringFile, readKeyringFile, writeKeyringFile } from './keyring-file.js'
import { AgentMetrics } from './metrics.js'
import { type Snapshot, readSnapshot, snapshotPath, writeSnapshot } from './snapshot.js'

/** The keys of a keyring file: the primary first. */
function fileKeys(list: readonly KeyInfo[]): string[] {
  return [...list.filter((k) => k.primary), ...list.filter((k) => !k.primary)].map((k) => k.key)
}

/** A throwaway copy of a keyring, to rehearse changes on: what fails there is never tried on the node's. */
function scratchKeyring(list: readonly KeyInfo[]): NodeKeyring {
  const ring = Keyring.fromBase64(fileKeys(list))
  return {
    list: () => ring.list(),
    install: (key) => ring.install(parseKey(key)),
    use: (key) => ring.use(parseKey(key)),
    remove: (key) => ring.remove(parseKey(key)),
  }
}

/** Makes `ring` hold exactly `keys`, the first primary. */
function applyKeys(ring: NodeKeyring, keys: readonly string[]): void {
  for (const key of keys) ring.install(key)
  ring.use(keys[0]!)
  const wanted = new Set(keys.map((k) => parseKey(k).toString('base64')))
  for (const held of ring.list()) if (!wanted.has(held.key)) ring.remove(held.key)
}

/** Longest a graceful leave waits for the news to go out on SIGTERM. */
const LEAVE_TIMEOUT_MS = 3000

export interface AgentOptions {
  readonly config: AgentConfig
  /** Move an unreadable snapshot aside instead of refusing to start. */
  readonly discardSnapshot?: boolean
  /** Re-reads the config for SIGHUP (log level); the keyring file is read again as well. */
  readonly reloadConfig?: () => AgentConfig
  /** Install the daemon's signal handlers (before "agent started" is logged, so a signal never finds the defaults). */
  readonly handleSignals?: boolean
}

/**
 * The grapevine agent: one node, its HTTP API (and dashboard and metrics),
 * its data dir, and its signals. SIGTERM or SIGINT: leave the cluster, write
 * the snapshot, exit 0. SIGHUP: read the keyring file and the log level again.
 */
export class Agent {
  private snapshotTimer: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined

  private constructor(
    readonly node: Grapevine,
    readonly api: HttpApi,
    readonly httpAddress: string,
    private readonly options: AgentOptions,
    private readonly log: Logger,
  ) {}

  static async start(options: AgentOptions): Promise<Agent> {
    const c = options.config
    const log = pino({ name: 'grapevine', level: c.logLevel }, destination({ dest: 2, sync: true }))
    const keyring = c.keyringFile === undefined ? undefined : readKeyringFile(c.keyringFile)
    let restored: Snapshot | undefined
    if (c.dataDir !== undefined) {
      // The snapshot decides what this node believes after a restart: only its user may write there.
      mkdirSync(c.dataDir, { recursive: true, mode: 0o700 })
      const mode = statSync(c.dataDir).mode & 0o777
      if ((mode & 0o022) !== 0) log.warn({ dataDir: c.dataDir, mode: mode.toString(8) }, 'the data dir is group- or world-writable: others could replace its snapshot; chmod 700 it')
      try {
        restored = readSnapshot(c.dataDir, { name: c.name, label: c.label })
      } catch (err) {
        if (!options.discardSnapshot) throw err
        const aside = `${snapshotPath(c.dataDir)}.discarded-${Date.now()}`
        renameSync(snapshotPath(c.dataDir), aside)
        log.warn({ aside }, 'unreadable snapshot moved aside (--discard-snapshot); starting with an empty state')
      }
    }
    const now = Date.now()
    const retention = c.tombstoneRetentionMs ?? ENGINE_DEFAULTS.tombstoneRetentionMs
    const trusted = restored === undefined || now - restored.meta.savedAtMs <= retention
    // A restarted agent rejoins through the members it knew, besides its configured seeds.
    const known = restored?.meta.members.filter((m) => m.name !== c.name && (m.status === 'alive' || m.status === 'suspect')).map((m) => m.address) ?? []
    const seeds = [...new Set([...c.join, ...known])]
    const http = parseHostPort(c.http, '--http')
    const node = await Grapevine.start(
      {
        name: c.name,
        bind: c.bind,
        ...(c.advertise !== undefined ? { advertise: c.advertise } : {}),
        seeds,
        ...(c.dnsServers !== undefined ? { dnsServers: c.dnsServers } : {}),
        preset: c.preset,
        label: c.label,
        announceStateHash: true,
        ...(c.gossipIntervalMs !== undefined ? { gossipIntervalMs: c.gossipIntervalMs } : {}),
        ...(c.fanout !== undefined ? { fanout: c.fanout } : {}),
        ...(c.tombstoneRetentionMs !== undefined ? { tombstoneRetentionMs: c.tombstoneRetentionMs } : {}),
        ...(keyring !== undefined ? { encryption: keyring } : {}),
        joinTimeoutMs: known.length > 0 || c.join.length > 0 ? 5000 : 0,
      },
      restored === undefined ? undefined : { snapshot: restored.state, trusted, incarnation: restored.meta.incarnation },
    )
    const metrics = new AgentMetrics(node)
    // The API is made before the agent that handles its keyring changes.
    const self: { agent?: Agent } = {}
    const api = new HttpApi({
      node,
      metrics,
      ...(c.httpToken !== undefined ? { token: c.httpToken } : {}),
      allowedHosts: c.httpAllowedHosts,
      maxWatchers: c.httpMaxWatchers,
      maxKeyBytes: DEFAULT_LIMITS.maxKeyBytes,
      maxValueBytes: DEFAULT_LIMITS.maxValueBytes,
      dashboard: renderDashboard,
      changeKeyring: (op, key, force) => self.agent!.changeKeyring(op, key, force),
    })
    let bound: { host: string; port: number }
    try {
      bound = await api.listen(http.host, http.port)
    } catch (err) {
      await node.stop()
      throw err
    }
    const agent = new Agent(node, api, formatHostPort(bound.host, bound.port), options, log)
    self.agent = agent
    agent.wire()
    if (options.handleSignals === true) agent.handleSignals()
    if (keyring === undefined && !isLoopback(parseHostPort(c.bind, 'bind').host)) {
      log.warn(
        { gossip: c.bind },
        'gossip listens beyond loopback without a keyring: anyone who can reach this port can write, delete and join (THREAT_MODEL.md); give the agent --keyring-file',
      )
    }
    if (!trusted) log.warn({ ageMs: now - restored!.meta.savedAtMs, retentionMs: retention }, 'snapshot older than the tombstone retention: asking the cluster for a full transfer')
    log.info(
      {
        node: c.name,
        gossip: node.address,
        http: agent.httpAddress,
        seeds,
        encrypted: keyring !== undefined,
        restoredKeys: restored?.state.entries.length,
        snapshotTrusted: restored === undefined ? undefined : trusted,
      },
      'agent started',
    )
    return agent
  }

  private wire(): void {
    const { node, log } = this
    node.on('member', (e) => log.info({ member: e.member.name, address: e.member.address, status: e.member.status }, `member ${e.type}`))
    node.on('warning', (w) => log.warn(w))
    node.on('conflict', (c) => log.error(c, 'node name conflict'))
    node.on('error', (err) => log.debug({ err }, 'network error'))
    const dataDir = this.options.config.dataDir
    if (dataDir !== undefined) {
      this.snapshotTimer = setInterval(() => this.saveSnapshot(), this.options.config.snapshotIntervalMs)
      this.snapshotTimer.unref()
    }
  }

  /** Writes the data dir's snapshot (atomically); errors are logged, never fatal. */
  saveSnapshot(): void {
    const dataDir = this.options.config.dataDir
    if (dataDir === undefined) return
    try {
      const p = this.node.persistentState()
      const bytes = writeSnapshot(dataDir, { name: this.node.name, label: this.options.config.label, incarnation: p.incarnation, members: p.members, state: p.snapshot }, Date.now())
      this.log.debug({ bytes, keys: p.snapshot.entries.length }, 'snapshot written')
    } catch (err) {
      this.log.error({ err }, 'snapshot not written')
    }
  }

  get logLevel(): string {
    return this.log.level
  }

  /**
   * A keyring change from the API. Invariant: the keyring file and the node's
   * keyring agree afterwards, whatever fails. The change is rehearsed on a
   * copy, the file written (atomically) with the result, and only then made
   * on the node; should the node refuse it after all, the file is put back.
   */
  changeKeyring(op: KeyringOp, key: string, force = false): void {
    const ring = this.node.keyring
    // remove is refused (GV_ERR_KEY_IN_USE) while peers still seal with the key, unless forced.
    const apply = (): void => (op === 'remove' ? ring.remove(key, { force }) : ring[op](key))
    const file = this.options.config.keyringFile
    if (file === undefined) {
      apply()
      return
    }
    const before = fileKeys(ring.list())
    const scratch = scratchKeyring(ring.list())
    scratch[op](key)
    const switches = this.node.encryption!
    try {
      writeKeyringFile(file, { keys: fileKeys(scratch.list()), ...switches })
    } catch (err) {
      this.log.error({ err, file }, 'keyring file not written; the keyring is unchanged')
      throw new HttpError(500, 'GV_ERR_KEYRING_FILE', `the keyring file ${file} cannot be written (${(err as Error).message}); nothing was changed`)
    }
    try {
      apply()
    } catch (err) {
      try {
        writeKeyringFile(file, { keys: before, ...switches })
      } catch (restoreErr) {
        this.log.error({ err: restoreErr, file }, 'keyring file not restored after a refused change')
      }
      throw err
    }
  }

  /**
   * SIGHUP: the log level and the keyring file (install its keys, make its
   * first primary, remove the rest). All or nothing: everything is read,
   * checked and rehearsed on a copy of the keyring before anything changes;
   * should the node's keyring still refuse a step, it is put back as it was.
   */
  reload(): void {
    let fresh: AgentConfig | undefined
    let keyring: KeyringFile | undefined
    try {
      fresh = this.options.reloadConfig?.()
      const file = (fresh ?? this.options.config).keyringFile
      if (file !== undefined && existsSync(file)) {
        keyring = readKeyringFile(file)
        applyKeys(scratchKeyring(this.node.keyring.list()), keyring.keys)
      }
    } catch (err) {
      this.log.error({ err }, 'reload refused; nothing was changed')
      return
    }
    if (keyring !== undefined) {
      const ring = this.node.keyring
      const before = fileKeys(ring.list())
      try {
        applyKeys(ring, keyring.keys)
      } catch (err) {
        try {
          applyKeys(ring, before)
        } catch (restoreErr) {
          this.log.error({ err: restoreErr }, 'keyring not restored after a failed reload')
        }
        this.log.error({ err }, 'reload refused by the keyring; nothing was changed')
        return
      }
      this.node.setEncryption({ verifyIncoming: keyring.verifyIncoming, verifyOutgoing: keyring.verifyOutgoing })
    }
    if (fresh !== undefined) this.log.level = fresh.logLevel
    this.log.info({ logLevel: this.log.level }, 'reloaded')
  }

  /** Leaves the cluster gracefully, writes the snapshot, closes everything. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.snapshotTimer !== undefined) clearInterval(this.snapshotTimer)
      try {
        await this.node.leave(LEAVE_TIMEOUT_MS)
      } catch (err) {
        this.log.warn({ err }, 'leave did not complete')
      }
      this.saveSnapshot()
      await this.api.close()
      await this.node.stop()
      this.log.info('agent stopped')
      this.log.flush()
    })()
    return this.stopping
  }

  /** Installs the signal handlers of a daemon process. */
  handleSignals(): void {
    const stop = (signal: string): void => {
      this.log.info({ signal }, 'leaving the cluster')
      this.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          this.log.error({ err }, 'stop failed')
          process.exit(1)
        },
      )
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => this.reload())
  }
}
