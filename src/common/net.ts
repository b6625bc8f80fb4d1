/** Address parsing shared by every role: "host:port", "[::1]:port", ":port". */
export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(text: string, defaultHost = '0.0.0.0'): HostPort | undefined {
  const t = text.trim();
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(t);
  const v4 = /^([^:]*):(\d+)$/.exec(t);
  const m = v6 ?? v4;
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  const host = m[1] === '' || m[1] === undefined ? defaultHost : m[1];
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
