import { isIP } from 'node:net'
import { ConfigError } from '../errors.js'

export interface HostPort {
  readonly host: string
  readonly port: number
}

/** Parses `host:port` or `[v6addr]:port`. */
export function parseHostPort(text: string, option: string): HostPort {
  let host: string
  let portText: string
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0 || text[close + 1] !== ':') throw new ConfigError(option, `'${text}' is not [ipv6]:port`)
    host = text.slice(1, close)
    portText = text.slice(close + 2)
  } else {
    const colon = text.lastIndexOf(':')
    if (colon <= 0) throw new ConfigError(option, `'${text}' is not host:port`)
    host = text.slice(0, colon)
    portText = text.slice(colon + 1)
    if (host.includes(':')) throw new ConfigError(option, `'${text}': write IPv6 addresses as [addr]:port`)
  }
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(option, `'${text}' has no valid port (0-65535)`)
  }
  return { host, port }
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** A DNS name (RFC 1123 labels: letters, digits and hyphens, dot-separated, at most 253 characters). */
const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

/**
 * Whether `host` is a DNS name. The one rule for the config (advertise,
 * seeds), the decoder and the transport, so a node never advertises a name
 * its peers refuse.
 */
export function isHostName(host: string): boolean {
  return HOSTNAME.test(host)
}

/** Whether `host` is an IP wildcard (0.0.0.0, ::): a bind address, never a peer's. */
export function isWildcardHost(host: string): boolean {
  return isIP(host) !== 0 && /^[0.:]+$/.test(host)
}

/**
 * Whether a peer address read from the wire is one the real network can send
 * to: `host:port` or `[v6]:port`, the port from 1 to 65535, the host an IP
 * literal or a DNS name, and not a wildcard (0.0.0.0, ::), which names no
 * peer. A datagram to port 0 makes node:dgram throw, so such an address must
 * never get past the decoder.
 */
export function isUsableInetAddress(text: string): boolean {
  let hp: HostPort
  try {
    hp = parseHostPort(text, 'address')
  } catch {
    return false
  }
  if (hp.port === 0) return false
  if (isIP(hp.host) !== 0) return !isWildcardHost(hp.host)
  return !text.startsWith('[') && isHostName(hp.host)
}

/** The host of `host:port` or `[v6]:port` (the IP a source address comes from); the text itself when it has no port. */
export function hostOf(address: string): string {
  const colon = address.lastIndexOf(':')
  if (colon <= 0) return address
  const host = address.slice(0, colon)
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

/** Whether a host names this machine's loopback interface only (localhost, ::1, 127.0.0.0/8). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
