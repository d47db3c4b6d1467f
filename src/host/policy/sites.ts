/**
 * What a bundle's Caddy sites take from a host: the addresses they claim and
 * the host files they serve. Pure; shared by `rick-bundle build` and the
 * installer, so that both judge a site alike.
 *
 * - An address with a host name (`gitea.example.org`, `https://x:8443`) is
 *   the bundle's own: no grant. Two bundles, or a bundle and the host's
 *   Caddyfile, may not claim one host name (src/host/candidate-checks.ts).
 * - A path-prefixed address (`shop.example.org/checkout*`) takes part of a
 *   domain over, and a catch-all (`http://`, `:80`, `*`) every name nothing
 *   else claims: each is the need `sites` of its normal form, which the
 *   bundle declares (`needs.sites`) and a host grants (`SITES=`).
 * - `root` with `file_server` serves a host directory (`paths` PATH:ro), and
 *   `reverse_proxy unix//PATH` connects to a host socket (`paths` PATH:rw).
 */

import { pathProblem } from '../../bundle/needs.js';
import {
  directiveArguments,
  normalizeSiteAddress,
  type SiteAddress,
  siteBlocks,
  siteTextProblems,
  wordsStartingWith,
} from '../../bundle/site-address.js';
import { RickError } from '../../errors.js';
import type { Finding } from './restricted.js';

/** One address one site file claims. */
export interface SiteClaim {
  bundle: string;
  /** Bundle path, `caddy/gitea.caddy`. */
  file: string;
  line: number;
  address: SiteAddress;
}

/** The addresses of a bundle's sites, and what cannot be read or may not be written. */
export function readSiteClaims(
  bundle: string,
  sites: ReadonlyMap<string, string>,
): { claims: SiteClaim[]; problems: string[] } {
  const claims: SiteClaim[] = [];
  const problems: string[] = [];
  for (const [file, text] of sites) {
    for (const p of siteTextProblems(text)) {
      problems.push(`${bundle}/${file}:${p.line}: ${p.written} ${p.problem}`);
    }
    for (const block of siteBlocks(text)) {
      for (const written of block.addresses) {
        const address = normalizeSiteAddress(written);
        if ('problem' in address) {
          problems.push(
            `${bundle}/${file}:${block.line}: site address ${written} ${address.problem}`,
          );
        } else {
          claims.push({ bundle, file, line: block.line, address });
        }
      }
    }
  }
  return { claims, problems };
}

/** `bundle/caddy/x.caddy:3 https://gitea.localhost:443 (written gitea.localhost)`. */
export function describeClaim(c: SiteClaim): string {
  if (c.file === '') return `${c.bundle} ${c.address.address}`;
  const written = c.address.written === c.address.address ? '' : ` (written ${c.address.written})`;
  return `${c.bundle}/${c.file}:${c.line} ${c.address.address}${written}`;
}

/** What two claims fight over, or undefined when they can stand side by side. */
export function claimClash(a: SiteAddress, b: SiteAddress): string | undefined {
  if (a.catchAll || b.catchAll) {
    return a.catchAll && b.catchAll && a.port === b.port
      ? `every name on port ${a.port}`
      : undefined;
  }
  // One host name, whatever the scheme, port or path: Caddy serves every
  // spelling of it from the routes of whichever site sorts first.
  return a.host === b.host ? `the host ${a.host}` : undefined;
}

/** Pairs of claims of different bundles on one address, each named once. */
export function crossBundleClashes(claims: readonly SiteClaim[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < claims.length; i++) {
    for (let j = i + 1; j < claims.length; j++) {
      const a = claims[i] as SiteClaim;
      const b = claims[j] as SiteClaim;
      if (a.bundle === b.bundle && a.file === b.file) continue;
      const what = claimClash(a.address, b.address);
      if (what) out.push(`${describeClaim(a)} and ${describeClaim(b)} both claim ${what}`);
    }
  }
  return out;
}

/** The needs a bundle's sites add beyond its own host names (see the top of this file). */
export function judgeSites(sites: ReadonlyMap<string, string>): Finding[] {
  const findings: Finding[] = [];
  for (const [file, text] of sites) {
    const unit = file.replace(/^caddy\//, '');
    for (const block of siteBlocks(text)) {
      for (const written of block.addresses) {
        const a = normalizeSiteAddress(written);
        if ('problem' in a || !(a.catchAll || a.path)) continue;
        findings.push({
          rule: 'site-addresses',
          unit,
          source: `${unit}:${block.line}`,
          written,
          need: { kind: 'sites', value: a.address },
          detail: a.catchAll
            ? `a catch-all: every name on port ${a.port} that no other site claims`
            : `takes ${a.path} of ${a.host} over`,
        });
      }
    }
    if (directiveArguments(text, 'file_server').length > 0) {
      for (const root of directiveArguments(text, 'root')) {
        // `root [<matcher>] <path>`: the path is the last word (a matcher may be `/api/*`).
        const path = root.args.at(-1);
        if (path === undefined || !path.startsWith('/')) continue;
        const clean = path.replace(/\/+$/, '') || '/';
        findings.push({
          rule: 'site-paths',
          unit,
          source: `${unit}:${root.line}`,
          written: `root ${root.args.join(' ')}`,
          need: { kind: 'paths', value: `${pathProblem(clean) ? path : clean}:ro` },
          detail: 'file_server serves this host directory',
        });
      }
    }
    for (const { line, word } of wordsStartingWith(text, 'unix/')) {
      const path = word.slice('unix/'.length).replace(/\|.*$/, '');
      findings.push({
        rule: 'site-paths',
        unit,
        source: `${unit}:${line}`,
        written: word,
        need: { kind: 'paths', value: `${path}:rw` },
        detail: 'Caddy connects to this host socket',
      });
    }
  }
  return findings;
}

/**
 * Refuses sites that hold what no grant allows (`import`, `{$ENV}`), an
 * address that cannot be read, or two claims on one host name; the builder
 * runs it on one bundle's sites, the installer on every bundle of a
 * candidate generation. Throws SITE_REJECTED naming each problem.
 */
export function checkSiteClaims(
  bundle: string,
  sites: ReadonlyMap<string, string>,
  others: readonly SiteClaim[] = [],
): SiteClaim[] {
  const { claims, problems } = readSiteClaims(bundle, sites);
  const clashes = crossBundleClashes([...others, ...claims]).filter((c) =>
    claims.some((own) => c.includes(describeClaim(own))),
  );
  if (problems.length || clashes.length) {
    throw new RickError('SITE_REJECTED', `${[...problems, ...clashes].join('; ')}`, {
      hint: clashes.length
        ? 'each host name is served by one site of one bundle: rename the address, or remove the other claim; nothing was changed'
        : "write the site's text out in the bundle; nothing was changed",
    });
  }
  return claims;
}

/**
 * The addresses the host's own Caddyfile serves, from `caddy adapt`'s JSON
 * (read with rick's sites left out): each host matcher of a server's routes,
 * on that server's ports, and a route without one as a catch-all.
 */
export function hostCaddyfileClaims(adapted: string, caddyfile: string): SiteClaim[] {
  let config: unknown;
  try {
    config = JSON.parse(adapted);
  } catch {
    return [];
  }
  type Server = {
    listen?: string[];
    routes?: { match?: { host?: string[] }[] }[];
    automatic_https?: { disable?: boolean; skip?: string[] };
  };
  const servers =
    (config as { apps?: { http?: { servers?: Record<string, Server> } } }).apps?.http?.servers ??
    {};
  const claims: SiteClaim[] = [];
  const claim = (written: string) => {
    const address = normalizeSiteAddress(written);
    if (!('problem' in address)) claims.push({ bundle: caddyfile, file: '', line: 0, address });
  };
  for (const server of Object.values(servers)) {
    const ports = (server.listen ?? []).map((l) => l.replace(/^.*:/, '')).filter(Boolean);
    // Caddy serves plain HTTP on port 80 and for the names automatic HTTPS skips.
    const plain = (host: string, port: string) =>
      port === '80' ||
      server.automatic_https?.disable === true ||
      (server.automatic_https?.skip ?? []).includes(host);
    for (const route of server.routes ?? []) {
      const matches = route.match ?? [];
      const hosts = matches.flatMap((m) => m.host ?? []);
      if (hosts.length === 0 || matches.some((m) => m.host === undefined)) {
        for (const port of ports) claim(`${port === '443' ? 'https' : 'http'}://:${port}`);
      }
      for (const host of hosts) {
        for (const port of ports.length ? ports : ['443']) {
          claim(`${plain(host, port) ? 'http' : 'https'}://${host}:${port}`);
        }
      }
    }
  }
  return claims;
}
