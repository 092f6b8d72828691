/**
 * grapevine agents as real child processes (`grapevine agent ...`) on
 * loopback, for end-to-end tests: start one, learn its gossip and HTTP
 * addresses from its "agent started" log line, talk to it, signal it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { parseHostPort } from '../../src/runtime/address.js'
import { parseJsonOrUndefined } from '../../src/util/json.js'

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

export interface AgentProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly gossip: string
  readonly http: string
  /** Every log line so far (JSON objects from pino). */
  readonly logs: Record<string, unknown>[]
  stderr: string
}

/** Starts `grapevine agent` with the given flags (name, loopback addresses and `local` preset by default). */
export async function startAgent(name: string, flags: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> {
  const args = [CLI, 'agent', '--name', name, '--bind', '127.0.0.1:0', '--http', '127.0.0.1:0', '--preset', 'local', '--gossip-interval', '200ms', ...flags]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  const agent = { name, child, gossip: '', http: '', logs: [] as Record<string, unknown>[], stderr: '' }
  let buffered = ''
  const started = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      agent.stderr += chunk.toString()
      buffered += chunk.toString()
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        try {
          const entry = JSON.parse(line) as Record<string, unknown>
          agent.logs.push(entry)
          if (entry.msg === 'agent started') {
            agent.gossip = entry.gossip as string
            agent.http = entry.http as string
            resolve()
          }
        } catch {
          // not a log line (an error printed by the CLI)
        }
      }
    })
    child.once('exit', (code) => reject(new Error(`agent ${name} exited with ${code} before starting: ${agent.stderr}`)))
  })
  const timeout = setTimeout(() => child.kill('SIGKILL'), 20_000)
  try {
    await started
  } finally {
    clearTimeout(timeout)
  }
  return agent
}

/** Sends SIGTERM and waits for the exit; resolves to the exit code. */
export async function stopAgent(a: AgentProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (a.child.exitCode !== null || a.child.signalCode !== null) return a.child.exitCode
  const exited = once(a.child, 'exit') as Promise<[number | null]>
  a.child.kill(signal)
  const [code] = await exited
  return code
}

/** An HTTP request to an agent; the body parsed as JSON when it is JSON. */
export async function api(
  a: AgentProcess | string,
  method: string,
  path: string,
  body?: string | Uint8Array,
  headers: Record<string, string> = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever JSON the route documents
): Promise<{ status: number; json: any; text: string }> {
  const address = typeof a === 'string' ? a : a.http
  const res = await fetch(`http://${address}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) })
  const text = await res.text()
  return { status: res.status, json: parseJsonOrUndefined(text), text }
}

/** Runs a `grapevine` CLI command to completion. */
export function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever JSON the route documents
  json: any
}

/** One request with the path sent exactly as written (no URL normalisation) and any headers, Host included. */
export function rawRequest(address: string, method: string, target: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Reply> {
  const { host, port } = parseHostPort(address, 'address')
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: target, agent: false, headers: { connection: 'close', ...options.headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    // Every answer here is short: a request left hanging (a stream that should have been refused) fails instead.
    req.setTimeout(10_000, () => req.destroy(new Error(`no complete answer to ${method} ${target} within 10 s`)))
    req.end(options.body)
  })
}
