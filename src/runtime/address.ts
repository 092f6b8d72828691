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
