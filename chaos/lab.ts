/**
 * The chaos harness's hosts: one Linux network namespace per agent, plus one
 * for the harness's own driver ("ctl"), all joined by a bridge of their own
 * through veth pairs. Addresses are in a private /24 the lab picks, and exist
 * inside those namespaces only: the bridge has none, so nothing in the
 * machine's own namespace can reach or be reached by the lab.
 *
 * Faults are iptables rules in a chain of the lab's own (`GVCHAOS`, jumped to
 * from INPUT) inside each agent's namespace: partitions drop what comes from
 * the other side's addresses, loss is a `statistic` match. The driver's
 * address is never matched, so the workload and the checks always reach
 * every agent that runs.
 *
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`). Everything is
 * named after the creating process (`gv<pid>...`) so that a later run can
 * remove what a killed run left behind.
 */
import { execFileSync, spawnSync } from 'node:child_process'

const PREFIX = 'gv'
const CHAIN = 'GVCHAOS'

export interface LabHost {
  readonly index: number
  readonly ns: string
  readonly address: string
}

export interface LabLayout {
  readonly id: string
  readonly bridge: string
  readonly subnet: string
  readonly ctl: LabHost
  readonly hosts: readonly LabHost[]
}

function run(args: readonly string[]): void {
  execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
}

function tryRun(args: readonly string[]): boolean {
  return spawnSync(args[0]!, args.slice(1), { stdio: 'ignore' }).status === 0
}

/** Why network namespaces cannot be used here, or undefined when they can. */
export function labUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the chaos harness needs root (ip netns, iptables)'
  for (const tool of ['ip', 'iptables']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error !== undefined) return `'${tool}' is not installed (Debian: iproute2, iptables)`
  }
  const probe = `${PREFIX}${process.pid}probe`
  if (!tryRun(['ip', 'netns', 'add', probe])) return "'ip netns add' is not permitted here"
  const ok = tryRun(['ip', 'netns', 'exec', probe, 'iptables', '-L', 'INPUT', '-n'])
  tryRun(['ip', 'netns', 'del', probe])
  return ok ? undefined : 'iptables cannot run inside a network namespace here'
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Namespaces and links of earlier runs whose process is gone (a run killed before it could clean up). */
export function removeStale(): string[] {
  const removed: string[] = []
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.length > 0)
  const owner = (name: string): number | undefined => {
    const m = new RegExp(`^${PREFIX}(\\d+)`).exec(name)
    return m === null ? undefined : Number(m[1])
  }
  for (const ns of names) {
    const pid = owner(ns)
    if (pid === undefined || pidAlive(pid)) continue
    killAllIn(ns)
    if (tryRun(['ip', 'netns', 'del', ns])) removed.push(ns)
  }
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined)
  for (const link of links) {
    const pid = owner(link)
    if (pid === undefined || pidAlive(pid)) continue
    if (tryRun(['ip', 'link', 'del', link])) removed.push(link)
  }
  return removed
}

function killAllIn(ns: string): void {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
  for (const line of (r.stdout ?? '').split('\n')) {
    const pid = Number(line.trim())
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone already
      }
    }
  }
}

/** A /24 in 10.0.0.0/8 that no address or route of this machine's namespace touches. */
function pickSubnet(seed: number): string {
  const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }) + execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' })
  for (let k = 0; k < 256; k++) {
    const b = 200 + ((seed + k) % 50)
    const c = (seed * 7 + k * 13) % 256
    const prefix = `10.${b}.${c}.`
    if (!used.includes(prefix) && !used.includes(`10.${b}.0.0/16`)) return prefix
  }
  throw new Error('no free private /24 for the lab')
}

/**
 * Creates the lab: a bridge, the ctl namespace and `hosts` agent namespaces,
 * each with `eth0` on the bridge and loopback up. Undo with `destroy`.
 */
export function createLab(hosts: number, seed: number): LabLayout {
  const id = `${PREFIX}${process.pid}`
  const subnet = pickSubnet(seed)
  const bridge = `${id}br`
  const ctl: LabHost = { index: -1, ns: `${id}ctl`, address: `${subnet}2` }
  const hostList: LabHost[] = []
  for (let i = 0; i < hosts; i++) hostList.push({ index: i, ns: `${id}h${i}`, address: `${subnet}${10 + i}` })
  const layout: LabLayout = { id, bridge, subnet: `${subnet}0/24`, ctl, hosts: hostList }
  try {
    run(['ip', 'link', 'add', bridge, 'type', 'bridge'])
    run(['ip', 'link', 'set', bridge, 'up'])
    for (const [k, h] of [ctl, ...hostList].entries()) {
      const veth = `${id}v${k}`
      run(['ip', 'netns', 'add', h.ns])
      run(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns])
      run(['ip', 'link', 'set', veth, 'master', bridge])
      run(['ip', 'link', 'set', veth, 'up'])
      run(['ip', '-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0'])
      run(['ip', '-n', h.ns, 'link', 'set', 'eth0', 'up'])
      run(['ip', '-n', h.ns, 'link', 'set', 'lo', 'up'])
      if (h.index >= 0) {
        run(['ip', 'netns', 'exec', h.ns, 'iptables', '-N', CHAIN])
        run(['ip', 'netns', 'exec', h.ns, 'iptables', '-A', 'INPUT', '-j', CHAIN])
      }
    }
  } catch (err) {
    destroyLab(layout)
    throw err
  }
  return layout
}

/** Removes everything `createLab` made, killing whatever still runs inside. Safe to call twice. */
export function destroyLab(layout: LabLayout): void {
  for (const h of [layout.ctl, ...layout.hosts]) {
    killAllIn(h.ns)
    tryRun(['ip', 'netns', 'del', h.ns])
  }
  tryRun(['ip', 'link', 'del', layout.bridge])
}

// ---- faults (run from any namespace: `ip netns exec` enters the host's) ----------

function iptables(ns: string, args: readonly string[]): void {
  run(['ip', 'netns', 'exec', ns, 'iptables', ...args])
}

/** Cuts the hosts into groups: each host drops everything from hosts of other groups. */
export function partition(layout: LabLayout, groupOf: readonly number[]): void {
  for (const h of layout.hosts) {
    for (const other of layout.hosts) {
      if (groupOf[other.index] !== groupOf[h.index]) iptables(h.ns, ['-A', CHAIN, '-s', other.address, '-j', 'DROP'])
    }
  }
}

/** Every host drops a share `p` of what reaches it from other hosts (never the driver's traffic). */
export function loss(layout: LabLayout, p: number): void {
  for (const h of layout.hosts) {
    iptables(h.ns, ['-A', CHAIN, '-i', 'eth0', '!', '-s', layout.ctl.address, '-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'DROP'])
  }
}

/** Removes every partition and loss rule. */
export function heal(layout: LabLayout): void {
  for (const h of layout.hosts) iptables(h.ns, ['-F', CHAIN])
}
