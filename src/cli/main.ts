#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { Agent } from '../agent/agent.js'
import { parseTtl, resolveAgentConfig } from '../agent/config.js'
import { SnapshotError } from '../agent/snapshot.js'
import { ConfigError, GrapevineError } from '../errors.js'
import { generateKey } from '../security/keyring.js'
import { CliError, EXIT, json, request, stream, table } from './client.js'
import { runDemo } from './demo.js'
import { runSimCommand } from './sim-command.js'

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }

interface Version {
  ts: number
  origin: string
}
interface KvJson {
  key: string
  value: string
  valueEncoding?: 'base64'
  version: Version
  expiresAt?: number
}

const program = new Command()
program
  .name('grapevine')
  .description('Gossip-protocol cluster state and membership for Node.js: the agent, its client commands, the demo')
  .version(pkg.version)
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(text) })

/** Client commands share --http, --json and the token options. */
function client(cmd: Command): Command {
  return cmd
    .addOption(new Option('--http <host:port>', 'the agent to talk to').env('GRAPEVINE_HTTP_ADDR').default('127.0.0.1:7070'))
    .addOption(new Option('--token <token>', "the agent's bearer token (other users see a flag in ps: prefer the environment or --token-file)").env('GRAPEVINE_HTTP_TOKEN'))
    .addOption(new Option('--token-file <file>', "read the agent's bearer token from this file").env('GRAPEVINE_HTTP_TOKEN_FILE'))
    .option('--json', 'print JSON instead of a table')
}

interface ClientOptions {
  http: string
  json?: boolean
  token?: string
  tokenFile?: string
}

/** The token to send, from --token-file or --token (or their environment variables). */
function auth(o: ClientOptions): { token?: string } {
  if (o.tokenFile !== undefined) {
    let token: string
    try {
      token = readFileSync(o.tokenFile, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new CliError(`cannot read the token file ${o.tokenFile}: ${(err as Error).message}`, EXIT.usage)
    }
    return { token }
  }
  return o.token ? { token: o.token } : {}
}

function out(text: string): void {
  process.stdout.write(`${text}\n`)
}

function shown(e: { value: string; valueEncoding?: string }): string {
  return e.valueEncoding === 'base64' ? `(bytes, base64) ${e.value}` : e.value
}

function versionText(v: Version): string {
  return `${v.ts}@${v.origin}`
}

program
  .command('agent')
  .description('run an agent: one cluster node with an HTTP API, dashboard and metrics')
  .option('--name <name>', 'node name, unique in the cluster')
  .option('--bind <host:port>', 'gossip address (UDP and TCP) [0.0.0.0:7946]')
  .option('--advertise <host:port>', 'address peers use to reach this node, when it differs from --bind')
  .option('--http <host:port>', 'HTTP API address [127.0.0.1:7070]')
  .option('--join <addr...>', 'seed addresses (host:port, DNS names allowed); repeat or comma-separate')
  .option('--dns-server <addr...>', 'resolve seed names with these DNS servers (ip or ip:port) instead of the system resolver')
  .option('--data-dir <dir>', 'keep a snapshot (state, members, incarnation) here across restarts')
  .option('--discard-snapshot', 'move an unreadable snapshot aside and start empty')
  .option('--config <file>', 'JSON config file (same names as the flags, camelCase)')
  .option('--preset <preset>', 'membership timing: lan, wan or local [lan]')
  .option('--label <label>', 'cluster label; packets of another label are refused')
  .option('--keyring-file <file>', 'JSON {"keys": [base64...]}: encrypt with the first key')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent [info]')
  .option('--http-token <token>', 'require this bearer token on every route but / and /v1/health (other users see a flag in ps: prefer --http-token-file or GRAPEVINE_HTTP_TOKEN)')
  .option('--http-token-file <file>', 'read the bearer token from this file')
  .option('--http-allowed-hosts <names>', 'host names clients may reach the HTTP API by, besides its address and localhost (comma-separated)')
  .option('--http-allow-unauthenticated', 'allow a non-loopback --http without a token')
  .option('--http-max-watchers <n>', 'concurrent /v1/watch streams at most [64]')
  .option('--gossip-interval <duration>', 'anti-entropy period, e.g. 1s [1s]')
  .option('--fanout <n>', 'peers per round [3]')
  .option('--tombstone-retention <duration>', 'how long deletes are remembered, e.g. 24h [24h]')
  .option('--snapshot-interval <duration>', 'how often the data dir snapshot is written [30s]')
  .action(async (opts: Record<string, string | string[] | boolean | undefined>) => {
    const flags: Record<string, string | string[] | undefined> = {}
    const map: Record<string, string> = {
      name: 'name',
      bind: 'bind',
      advertise: 'advertise',
      http: 'http',
      join: 'join',
      dnsServer: 'dnsServers',
      dataDir: 'dataDir',
      preset: 'preset',
      label: 'label',
      keyringFile: 'keyringFile',
      logLevel: 'logLevel',
      httpToken: 'httpToken',
      httpTokenFile: 'httpTokenFile',
      httpAllowedHosts: 'httpAllowedHosts',
      httpAllowUnauthenticated: 'httpAllowUnauthenticated',
      httpMaxWatchers: 'httpMaxWatchers',
      gossipInterval: 'gossipIntervalMs',
      fanout: 'fanout',
      tombstoneRetention: 'tombstoneRetentionMs',
      snapshotInterval: 'snapshotIntervalMs',
    }
    for (const [opt, key] of Object.entries(map)) {
      const v = opts[opt]
      if (typeof v === 'string' || Array.isArray(v)) flags[key] = v
      else if (v === true) flags[key] = 'true'
    }
    const configFile = typeof opts.config === 'string' ? opts.config : (process.env.GRAPEVINE_CONFIG ?? undefined)
    const load = (): ReturnType<typeof resolveAgentConfig> => resolveAgentConfig(flags, process.env, configFile)
    const config = load()
    await Agent.start({ config, discardSnapshot: opts.discardSnapshot === true, reloadConfig: load, handleSignals: true })
  })

client(program.command('get').description('print the value of a key').argument('<key>')).action(async (key: string, o: ClientOptions) => {
  const e = json<KvJson>(await request(o.http, 'GET', `/v1/kv/${encodeURIComponent(key)}`, auth(o)))
  if (o.json) out(JSON.stringify(e))
  else out(shown(e))
})

client(program.command('set').description('write a key').argument('<key>').argument('<value>').option('--ttl <duration>', 'expire after this long, e.g. 30s')).action(
  async (key: string, value: string, o: ClientOptions & { ttl?: string }) => {
    const q = o.ttl === undefined ? '' : `?ttl=${parseTtl(o.ttl, '--ttl')}`
    const r = json<{ key: string; version: Version }>(
      await request(o.http, 'PUT', `/v1/kv/${encodeURIComponent(key)}${q}`, { body: value, ...auth(o) }),
    )
    out(o.json ? JSON.stringify(r) : `${r.key} = ${value} (version ${versionText(r.version)})`)
  },
)

client(program.command('del').description('delete a key').argument('<key>')).action(async (key: string, o: ClientOptions) => {
  const r = json<{ key: string; version: Version }>(
    await request(o.http, 'DELETE', `/v1/kv/${encodeURIComponent(key)}`, { ...auth(o) }),
  )
  out(o.json ? JSON.stringify(r) : `${r.key} deleted (version ${versionText(r.version)})`)
})

client(program.command('keys').description('list live keys').option('--prefix <prefix>', 'only keys starting with this', '')).action(
  async (o: ClientOptions & { prefix: string }) => {
    const list = json<KvJson[]>(await request(o.http, 'GET', `/v1/kv?prefix=${encodeURIComponent(o.prefix)}`, auth(o)))
    if (o.json) out(JSON.stringify(list))
    else out(table(['KEY', 'VALUE', 'VERSION', 'EXPIRES'], list.map((e) => [e.key, shown(e).slice(0, 60), versionText(e.version), e.expiresAt ? new Date(e.expiresAt).toISOString() : ''])))
  },
)

client(program.command('members').description('list the members this agent knows')).action(async (o: ClientOptions) => {
  const list = json<{ name: string; address: string; status: string; incarnation: number; tags: Record<string, string>; lastHeardMs?: number }[]>(
    await request(o.http, 'GET', '/v1/members', auth(o)),
  )
  if (o.json) {
    out(JSON.stringify(list))
    return
  }
  const now = Date.now()
  out(
    table(
      ['NAME', 'ADDRESS', 'STATUS', 'INCARNATION', 'LAST HEARD', 'TAGS'],
      list.map((m) => [
        m.name,
        m.address,
        m.status,
        String(m.incarnation),
        m.lastHeardMs === undefined ? '-' : `${((now - m.lastHeardMs) / 1000).toFixed(1)}s ago`,
        Object.entries(m.tags)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      ]),
    ),
  )
})

client(program.command('status').description("the agent's state hash, keys, members and whether the cluster converged")).action(async (o: ClientOptions) => {
  const s = json<{
    name: string
    address: string
    stateHash: string
    keys: number
    tombstones: number
    members: Record<string, number>
    cluster: { converged: boolean; alive: number; agreeing: number }
  }>(await request(o.http, 'GET', '/v1/status', auth(o)))
  if (o.json) {
    out(JSON.stringify(s))
    return
  }
  out(
    table(
      ['FIELD', 'VALUE'],
      [
        ['name', s.name],
        ['address', s.address],
        ['state hash', s.stateHash],
        ['keys', `${s.keys} live, ${s.tombstones} tombstones`],
        ['members', Object.entries(s.members).map(([k, v]) => `${v} ${k}`).join(', ')],
        ['converged', s.cluster.converged ? 'yes' : `no (${s.cluster.agreeing} of ${s.cluster.alive} alive agree)`],
      ],
    ),
  )
})

client(program.command('watch').description('print every change as it happens (Ctrl-C to stop)').option('--prefix <prefix>', 'only keys starting with this', '')).action(
  async (o: ClientOptions & { prefix: string }) => {
    const ac = new AbortController()
    process.once('SIGINT', () => ac.abort())
    await stream(
      o.http,
      `/v1/watch?prefix=${encodeURIComponent(o.prefix)}`,
      (data) => {
        if (o.json) {
          out(data)
          return
        }
        const e = JSON.parse(data) as KvJson & { deleted: boolean; from?: string }
        out(`${e.key} ${e.deleted ? 'deleted' : `= ${shown(e)}`} (version ${versionText(e.version)}${e.from ? `, via ${e.from}` : ''})`)
      },
      ac.signal,
      auth(o).token,
    )
  },
)

const keyring = program.command('keyring').description("the agent's encryption keys (a rotation: install everywhere, use everywhere, remove the old)")
client(keyring.command('list').description('installed keys; the primary encrypts')).action(async (o: ClientOptions) => {
  const keys = json<{ id: number; primary: boolean }[]>(await request(o.http, 'GET', '/v1/keyring', auth(o)))
  if (o.json) out(JSON.stringify(keys))
  else out(table(['ID', 'PRIMARY'], keys.map((k) => [k.id.toString(16).padStart(8, '0'), k.primary ? 'yes' : ''])))
})
for (const op of ['install', 'use', 'remove'] as const) {
  const what = { install: 'add a key that decrypts', use: 'make an installed key the one that encrypts', remove: 'remove a key (not the primary)' }[op]
  const command = client(keyring.command(op).description(what).argument('<key>', 'base64, 32 bytes'))
  if (op === 'remove') command.option('--force', 'remove even while peers still seal with the key (refused otherwise)')
  command.action(async (key: string, o: ClientOptions & { force?: boolean }) => {
    const payload = JSON.stringify(o.force ? { key, force: true } : { key })
    const keys = json<{ id: number; primary: boolean }[]>(
      await request(o.http, 'POST', `/v1/keyring/${op}`, { body: payload, contentType: 'application/json', ...auth(o) }),
    )
    out(o.json ? JSON.stringify(keys) : `${op}: done; ${keys.length} key(s) installed`)
  })
}
program
  .command('keygen')
  .description('print a new random key (base64) for encryption')
  .action(() => out(generateKey()))

program
  .command('sim')
  .description('run an experiment on the real engine in the simulator (virtual time, seeded, reproducible)')
  .option('--nodes <n>', 'cluster size [1000]')
  .option('--fanout <f>', 'peers per round [3]')
  .option('--interval-ms <ms>', 'gossip interval [1000]')
  .option('--preset <preset>', 'membership timing: lan, wan or local [lan]')
  .option('--loss <p>', 'probability a datagram is lost [0]')
  .option('--latency-ms <a..b>', 'one-way latency, uniform in [a, b] ms [1]')
  .option('--partition <spec>', 'FRACTION@START[-END], e.g. 0.5@10s-30s')
  .option('--crash <spec>', 'COUNT@TIME or PERCENT%@TIME, e.g. 1@5s')
  .option('--writes-per-sec <w>', 'steady writes to random nodes from 1 s on [0: one write at 1 s]')
  .option('--duration <d>', 'simulated time, e.g. 60s [60s]')
  .option('--seed <s>', 'seed of every random choice [1]')
  .option('--eager-push <on|off>', 'push fresh writes at once [on]')
  .option('--json', 'one JSON object on stdout')
  .option('--out <dir>', 'write timeseries.csv, summary.json and the plots (SVG and PNG) here')
  .option('--scenario <file>', 'JSON scenario: the same settings plus timed events (partition, heal, crash, restart, write)')
  .action(async (opts: Record<string, string | boolean | undefined>) => {
    await runSimCommand(opts as never)
  })

program
  .command('demo')
  .description('run five nodes on loopback UDP and watch an update and a delete spread')
  .option('--interval-ms <ms>', 'gossip interval', '1000')
  .option('--fanout <n>', 'peers per round (1 shows the epidemic hop by hop)', '1')
  .action(async (opts: { intervalMs: string; fanout: string }) => {
    const ok = await runDemo({ gossipIntervalMs: Number(opts.intervalMs), fanout: Number(opts.fanout) })
    process.exitCode = ok ? 0 : 1
  })

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here too, with code 0.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage
  } else if (err instanceof CliError) {
    process.stderr.write(`error: ${err.message}\n`)
    process.exitCode = err.exitCode
  } else if (err instanceof ConfigError || err instanceof SnapshotError) {
    // Exit code 2: restarting will not help (systemd's unit does not restart on it).
    process.stderr.write(`error: ${err.message}\n`)
    process.exitCode = EXIT.usage
  } else if (err instanceof GrapevineError) {
    process.stderr.write(`error: ${err.message}\n`)
    process.exitCode = 1
  } else {
    throw err
  }
}
