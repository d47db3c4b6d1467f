/** `host-ports`: publishing a port on anything but loopback. */
import { parsePortNeed } from '../../../bundle/needs.js';
import type { UnitLine } from '../../../bundle/unit-file.js';
import { push, refuse, type UnitContext } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

/** `[[IP:][HOSTPORT]:]CONTAINERPORT[/PROTOCOL]` / PublishPort=. */
export function publishedPort(value: string): string | undefined {
  const slash = value.lastIndexOf('/');
  const protocol = slash === -1 ? 'tcp' : value.slice(slash + 1);
  const spec = slash === -1 ? value : value.slice(0, slash);
  let address = '*';
  let rest = spec;
  if (spec.startsWith('[')) {
    const end = spec.indexOf(']');
    if (end === -1) return undefined;
    address = spec.slice(0, end + 1).toLowerCase();
    rest = spec.slice(end + 2);
    if (spec[end + 1] !== ':') return undefined;
  }
  const parts = rest.split(':');
  let hostPort: string;
  if (address !== '*') {
    if (parts.length !== 2) return undefined;
    hostPort = parts[0]!;
  } else if (parts.length === 3) {
    address = parts[0] === '' ? '*' : parts[0]!;
    hostPort = parts[1]!;
  } else if (parts.length === 2) {
    hostPort = parts[0]!;
  } else if (parts.length === 1) {
    // Only a container port: published on a random host port of every address.
    hostPort = '';
  } else return undefined;
  if (address === '0.0.0.0' || address === '[::]')
    address = address === '[::]' ? '[::]' : '0.0.0.0';
  const need = `${address}:${hostPort === '' ? '*' : hostPort}/${protocol}`;
  return parsePortNeed(need) ? need : undefined;
}

function portUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const need = publishedPort(value);
  if (!need) {
    refuse(ctx, line, written, 'unjudged', 'a port mapping rick cannot read');
    return;
  }
  const p = parsePortNeed(need)!;
  if (p.address !== '*' && isLoopbackAddress(p.address)) return;
  push(ctx, line, written, 'host-ports', { kind: 'ports', value: need });
}

function isLoopbackAddress(address: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(address) || address === '[::1]';
}

export const portsRule: RestrictedRule = {
  rules: ['host-ports'],
  flags: {
    publish: ({ ctx, line, written, value }) => portUse(ctx, line, written, value),
    'publish-all': ({ ctx, line, written, value }) => {
      if (value !== 'false') {
        push(
          ctx,
          line,
          written,
          'host-ports',
          { kind: 'ports', value: '*:*/tcp' },
          'publishes every exposed port on every address',
        );
        push(
          ctx,
          line,
          written,
          'host-ports',
          { kind: 'ports', value: '*:*/udp' },
          'publishes every exposed port on every address',
        );
      }
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const portsDocs: readonly RuleDoc[] = [
  {
    id: 'host-ports',
    podSecurity: 'Host Ports (Baseline: "restricted to a known list")',
    refuses:
      'publishing (`PublishPort=`, `-p`, `-P`) on anything but loopback (`127.0.0.0/8`, `[::1]`); an address left out means every address (`*`)',
    allows: '`ports`',
  },
];
