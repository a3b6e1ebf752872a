/**
 * The parts of a CNI result podlog shows and acts on (addresses, gateway, routes, DNS), in one typed
 * form whatever the result's version: 0.3.0 and later list `interfaces` and `ips` (0.3.x and 0.4.0
 * with a `version` per address), 0.1.0 and 0.2.0 had `ip4` and `ip6`. The raw result stays what DEL
 * and CHECK are given; this is what the log shows a person.
 */
import { isIP } from 'node:net';
import { PodlogError } from '../errors.js';
import { versionAtLeast } from './config.js';
import { isJsonObject, type JsonObject } from './json.js';

export interface NetworkInterface {
  name: string;
  mac?: string;
  /** The namespace path for an interface in the pod; absent for one on the host. */
  sandbox?: string;
}

export interface NetworkAddress {
  /** The address alone: 172.16.28.2. */
  address: string;
  /** Its prefix length: 24. */
  prefixLength: number;
  gateway?: string;
  /** The pod interface it is on, when the result says. */
  interface?: string;
}

export interface NetworkRoute {
  /** A CIDR: 0.0.0.0/0 for the default route. */
  dst: string;
  gw?: string;
}

export interface NetworkDns {
  nameservers: string[];
  domain?: string;
  search: string[];
  options: string[];
}

export interface NetworkSummary {
  interfaces: NetworkInterface[];
  ips: NetworkAddress[];
  routes: NetworkRoute[];
  dns: NetworkDns;
}


/** Reads one network's result; every error names the network and the field. */
class Reader {
  constructor(private readonly network: string) {}

  fail(message: string): PodlogError {
    return new PodlogError('ENET_RESULT', `network "${this.network}": the CNI result ${message}`);
  }

  list(v: unknown, field: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.fail(`has ${field} that is not a list`);
    return v;
  }

  object(v: unknown, field: string): JsonObject {
    if (!isJsonObject(v)) throw this.fail(`has ${field} that is not an object`);
    return v;
  }

  string(v: unknown, field: string): string {
    if (typeof v !== 'string') throw this.fail(`has ${field} that is not a string`);
    return v;
  }

  optionalString(v: unknown, field: string): string | undefined {
    return v === undefined || v === '' ? undefined : this.string(v, field);
  }

  strings(v: unknown, field: string): string[] {
    return this.list(v, field).map((s, i) => this.string(s, `${field}[${i}]`));
  }

  ip(v: unknown, field: string): string {
    const s = this.string(v, field);
    if (isIP(s) === 0) throw this.fail(`has ${field} ${JSON.stringify(s)}, which is not an IP address`);
    return s;
  }

  optionalIp(v: unknown, field: string): string | undefined {
    return v === undefined || v === '' ? undefined : this.ip(v, field);
  }

  cidr(v: unknown, field: string): { address: string; prefixLength: number } {
    const s = this.string(v, field);
    const [address = '', prefix = '', ...rest] = s.split('/');
    const family = isIP(address);
    const prefixLength = Number(prefix);
    if (family === 0 || rest.length > 0 || !/^\d+$/.test(prefix) || prefixLength > (family === 4 ? 32 : 128)) {
      throw this.fail(`has ${field} ${JSON.stringify(s)}, which is not an address with a prefix length`);
    }
    return { address, prefixLength };
  }

  route(v: unknown, field: string): NetworkRoute {
    const r = this.object(v, field);
    const { address, prefixLength } = this.cidr(r.dst, `${field}.dst`);
    const gw = this.optionalIp(r.gw, `${field}.gw`);
    return { dst: `${address}/${prefixLength}`, ...(gw === undefined ? {} : { gw }) };
  }

  dns(v: unknown): NetworkDns {
    if (v === undefined || v === null) return { nameservers: [], search: [], options: [] };
    const d = this.object(v, 'dns');
    const domain = this.optionalString(d.domain, 'dns.domain');
    return {
      nameservers: this.strings(d.nameservers, 'dns.nameservers').map((s, i) => this.ip(s, `dns.nameservers[${i}]`)),
      ...(domain === undefined ? {} : { domain }),
      search: this.strings(d.search, 'dns.search'),
      options: this.strings(d.options, 'dns.options'),
    };
  }
}

const withGateway = (a: { address: string; prefixLength: number }, gateway: string | undefined): NetworkAddress =>
  gateway === undefined ? a : { ...a, gateway };

/** Spec 0.3.0 and later: interfaces, and ips that point into them by index. */
const current = (r: Reader, doc: JsonObject): Omit<NetworkSummary, 'dns'> => {
  const interfaces = r.list(doc.interfaces, 'interfaces').map((v, i): NetworkInterface => {
    const o = r.object(v, `interfaces[${i}]`);
    const mac = r.optionalString(o.mac, `interfaces[${i}].mac`);
    const sandbox = r.optionalString(o.sandbox, `interfaces[${i}].sandbox`);
    return { name: r.string(o.name, `interfaces[${i}].name`), ...(mac === undefined ? {} : { mac }), ...(sandbox === undefined ? {} : { sandbox }) };
  });
  const ips = r.list(doc.ips, 'ips').map((v, i): NetworkAddress => {
    const o = r.object(v, `ips[${i}]`);
    const a = withGateway(r.cidr(o.address, `ips[${i}].address`), r.optionalIp(o.gateway, `ips[${i}].gateway`));
    if (o.interface === undefined) return a;
    const index = o.interface;
    const iface = typeof index === 'number' ? interfaces[index] : undefined;
    if (iface === undefined) throw r.fail(`has ips[${i}].interface ${JSON.stringify(index)}, which is not an index into its interfaces`);
    return { ...a, interface: iface.name };
  });
  return { interfaces, ips, routes: r.list(doc.routes, 'routes').map((v, i) => r.route(v, `routes[${i}]`)) };
};

/** Spec 0.1.0 and 0.2.0: one ip4 and one ip6, each with its own routes. */
const legacy = (r: Reader, doc: JsonObject): Omit<NetworkSummary, 'dns'> => {
  const families = (['ip4', 'ip6'] as const).filter((k) => doc[k] !== undefined && doc[k] !== null).map((k) => ({ k, o: r.object(doc[k], k) }));
  return {
    interfaces: [],
    ips: families.map(({ k, o }) => withGateway(r.cidr(o.ip, `${k}.ip`), r.optionalIp(o.gateway, `${k}.gateway`))),
    routes: families.flatMap(({ k, o }) => r.list(o.routes, `${k}.routes`).map((v, i) => r.route(v, `${k}.routes[${i}]`))),
  };
};

/** The summary of `network`'s ADD result. */
export const summarizeResult = (network: string, result: unknown): NetworkSummary => {
  const r = new Reader(network);
  if (!isJsonObject(result)) throw r.fail('is not a JSON object');
  const doc = result;
  // Results of 0.1.0 plugins may lack cniVersion: their shape is the legacy one.
  const version = doc.cniVersion === undefined ? '0.1.0' : r.string(doc.cniVersion, 'cniVersion');
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw r.fail(`has cniVersion ${JSON.stringify(version)}, which is not a version`);
  const parts = versionAtLeast(version, '0.3.0') ? current(r, doc) : legacy(r, doc);
  return { ...parts, dns: r.dns(doc.dns) };
};

const isEmptyDns = (d: NetworkDns): boolean => d.nameservers.length === 0 && d.domain === undefined && d.search.length === 0 && d.options.length === 0;

/**
 * The DNS settings a pod gets from its networks when `--dns` is not given: the first network (in
 * attach order) whose result has any, as rkt takes them; later networks' are ignored.
 */
export const dnsFromNetworks = (summaries: readonly NetworkSummary[]): NetworkDns | undefined => summaries.map((s) => s.dns).find((d) => !isEmptyDns(d));
