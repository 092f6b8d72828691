import { createHash, timingSafeEqual } from 'node:crypto'
import type http from 'node:http'
import { isIP } from 'node:net'

/** Why the HTTP API refused a request before serving it; each is a `/metrics` counter label. */
export type RefusalReason = 'host' | 'origin' | 'content-type' | 'token' | 'watch-cap' | 'slow-consumer'

/** An error answered as JSON `{code, message}` with its HTTP status; `reason` marks a refusal counted in `/metrics`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly reason?: RefusalReason,
  ) {
    super(message)
  }
}

export interface GuardOptions {
  /** When set, every route that reveals or changes data needs `Authorization: Bearer <token>`. */
  readonly token?: string
  /** Host names besides the bound address and `localhost` that clients may use (a DNS name in front of the agent). */
  readonly allowedHosts?: readonly string[]
}

const WILDCARDS = new Set(['0.0.0.0', '::', ''])

/** The host name of a Host header or of an origin's host: lowercased, brackets and port removed, no trailing dot. */
export function hostnameOf(hostHeader: string): string {
  let h = hostHeader.trim().toLowerCase()
  if (h.startsWith('[')) {
    const close = h.indexOf(']')
    h = close < 0 ? h : h.slice(1, close)
  } else {
    const colon = h.lastIndexOf(':')
    if (colon >= 0) h = h.slice(0, colon)
  }
  return h.endsWith('.') ? h.slice(0, -1) : h
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * The checks a request passes before any route sees it: DNS rebinding
 * (Host), cross-site requests (Origin, Sec-Fetch-Site), JSON content type,
 * bearer token.
 *
 * Why each holds:
 * - A browser tricked into sending requests to the agent by a page it loaded
 *   (DNS rebinding) always sends that page's host name as Host. A name is
 *   accepted only when it is `localhost`, the address the API is bound to, or
 *   one configured with --http-allowed-hosts. An IP literal cannot be
 *   rebound, so when bound to a wildcard address any IP literal is accepted.
 *   The port is not compared: rebinding is about the name, and a container's
 *   port mapping legitimately changes the port.
 * - A cross-origin page can send a POST without a CORS preflight only with a
 *   form content type, so JSON routes require `application/json`; PUT and
 *   DELETE always need a preflight, which this API never approves. State
 *   changes from a browser must also carry an Origin equal to the agent's own
 *   (scheme aside), and Sec-Fetch-Site must not say another site sent them.
 * - Tokens are compared as SHA-256 digests with timingSafeEqual: equal-length
 *   inputs, so the time taken reveals neither the token nor its length.
 */
export class HttpGuard {
  private readonly tokenDigest: Buffer | undefined
  private readonly allowed: Set<string>
  /** The host the API listens on, once bound. */
  boundHost = ''

  constructor(options: GuardOptions) {
    this.tokenDigest = options.token === undefined ? undefined : digest(options.token)
    this.allowed = new Set((options.allowedHosts ?? []).map(hostnameOf).filter((h) => h !== ''))
  }

  get requiresToken(): boolean {
    return this.tokenDigest !== undefined
  }

  private hostAllowed(hostname: string): boolean {
    if (hostname === 'localhost' || this.allowed.has(hostname)) return true
    const bound = this.boundHost.toLowerCase()
    if (hostname === bound) return true
    return WILDCARDS.has(bound) && isIP(hostname) !== 0
  }

  /** 421 for a Host this agent does not answer to. A request without Host (HTTP/1.0) did not come from a browser. */
  checkHost(req: http.IncomingMessage): void {
    const host = req.headers.host
    if (host === undefined) return
    if (!this.hostAllowed(hostnameOf(host))) {
      throw new HttpError(421, 'GV_ERR_MISDIRECTED', `this agent does not answer to the host '${host.slice(0, 100)}'; add it with --http-allowed-hosts if it is yours`, 'host')
    }
  }

  /** 403 for a state change sent by a page of another origin. */
  checkOrigin(req: http.IncomingMessage): void {
    const site = req.headers['sec-fetch-site']
    if (site === 'cross-site' || site === 'same-site') {
      throw new HttpError(403, 'GV_ERR_FORBIDDEN_ORIGIN', `a ${site} request cannot change this agent's state`, 'origin')
    }
    const origin = req.headers.origin
    if (origin === undefined) return
    let url: URL | undefined
    try {
      url = new URL(origin)
    } catch {
      url = undefined
    }
    const host = (req.headers.host ?? '').toLowerCase()
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.host !== host || !this.hostAllowed(hostnameOf(url.host))) {
      throw new HttpError(403, 'GV_ERR_FORBIDDEN_ORIGIN', `requests from the origin '${origin.slice(0, 100)}' cannot change this agent's state`, 'origin')
    }
  }

  /** 401 unless the agent has no token or the request carries it. */
  checkToken(req: http.IncomingMessage): void {
    if (this.tokenDigest === undefined) return
    const given = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1]
    if (given === undefined || !timingSafeEqual(digest(given), this.tokenDigest)) {
      throw new HttpError(401, 'GV_ERR_UNAUTHORIZED', 'this agent requires its bearer token (Authorization: Bearer <token>)', 'token')
    }
  }

  /** 415 unless the body is declared as JSON. */
  checkJson(req: http.IncomingMessage): void {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    if (type !== 'application/json') {
      throw new HttpError(415, 'GV_ERR_UNSUPPORTED_MEDIA_TYPE', `the body must be sent as application/json, not '${type.slice(0, 100)}'`, 'content-type')
    }
  }
}
