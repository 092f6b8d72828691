import http from 'node:http'
import { parseHostPort } from '../runtime/address.js'
import { SseReader } from '../util/sse.js'

/**
 * The CLI's side of the agent's HTTP API. Exit codes of the client
 * commands: 0 ok, 1 not found, 2 usage, 3 agent unreachable (or it
 * answered with an error the command cannot act on).
 */
export const EXIT = { ok: 0, notFound: 1, usage: 2, unreachable: 3 } as const

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
  }
}

export interface ApiResponse {
  readonly status: number
  readonly body: Buffer
}

/**
 * Where to connect. The path is sent as given, not through `new URL`, which
 * would resolve dot segments and so ask for another key than the one named.
 */
function target(address: string): { host: string; port: number } {
  try {
    return parseHostPort(address, '--http')
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage)
  }
}

/** One request to the agent at `address` (host:port); a connection failure is exit code 3. */
export function request(
  address: string,
  method: string,
  path: string,
  options: { body?: Buffer | string; contentType?: string; token?: string; timeoutMs?: number } = {},
): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'text/plain; charset=utf-8'
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    const req = http.request({ ...target(address), path, method, headers, timeout: options.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
      res.on('error', (err) => reject(new CliError(`agent at ${address}: ${err.message}`, EXIT.unreachable)))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (err) => reject(new CliError(`cannot reach the agent at ${address}: ${err.message}`, EXIT.unreachable)))
    if (options.body !== undefined) req.end(options.body)
    else req.end()
  })
}

/** The JSON body of a 2xx answer; 404 is exit code 1, anything else exit code 3 with the agent's message. */
export function json<T>(r: ApiResponse): T {
  const text = r.body.toString('utf8')
  if (r.status >= 200 && r.status < 300) return JSON.parse(text) as T
  let message = text
  try {
    const e = JSON.parse(text) as { code?: string; message?: string }
    message = `${e.code ?? r.status}: ${e.message ?? text}`
  } catch {
    // not JSON: the raw text
  }
  if (r.status === 404) throw new CliError(message, EXIT.notFound)
  if (r.status === 400 || r.status === 413) throw new CliError(message, EXIT.usage)
  throw new CliError(message, EXIT.unreachable)
}

/** Streams Server-Sent Events from `path`, calling `onEvent` with each event's data, until the connection ends. */
export function stream(address: string, path: string, onEvent: (data: string) => void, signal?: AbortSignal, token?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
    const req = http.get({ ...target(address), path, headers, ...(signal !== undefined ? { signal } : {}) }, (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          try {
            json({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) })
            reject(new CliError(`agent answered ${res.statusCode}`, EXIT.unreachable))
          } catch (err) {
            reject(err as Error)
          }
        })
        return
      }
      const sse = new SseReader()
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        for (const data of sse.push(chunk)) onEvent(data)
      })
      res.on('end', () => resolve())
      res.on('error', () => resolve())
    })
    req.on('error', (err) => {
      if ((err as Error).name === 'AbortError') resolve()
      else reject(new CliError(`cannot reach the agent at ${address}: ${err.message}`, EXIT.unreachable))
    })
  })
}

/** A plain text table: columns padded to their widest cell. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}
