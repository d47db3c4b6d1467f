/**
 * A plain `.socket` unit of a bundle (systemd.socket(5)): systemd itself,
 * as root, creates what it listens on and starts a service when someone
 * connects. What it listens on is judged as a container's published ports
 * and host paths are; who owns the socket file as host accounts are; and
 * the service it activates must be one of the bundle's own units, or else a
 * 0666 socket in a granted directory could hand any local user the rootful
 * podman API (`Service=podman.service`). Pure.
 */
import { type Need, parsePortNeed, pathProblem } from '../../bundle/needs.js';
import type { UnitLine } from '../../bundle/unit-file.js';
import type { BundleNames } from './bundle-names.js';
import type { Control } from './controls.js';

/** One use beyond the profile in a plain unit, at its line. */
export interface LineControl extends Control {
  line: UnitLine;
  written: string;
}

export interface SocketContext {
  /** The socket unit's name, e.g. `app.socket`. */
  name: string;
  names: BundleNames;
  ownUsers: ReadonlySet<string>;
  ownGroups: ReadonlySet<string>;
  /** The value systemd uses (specifiers resolved), or undefined when it cannot be told. */
  expand: (value: string) => string | undefined;
}

/** `[Socket]` keys that act on the host beyond listening, each with why. */
const refusedKeys: Record<string, string> = {
  Transparent: 'IP_TRANSPARENT receives connections meant for other addresses of the host',
  Mark: "a firewall mark changes how the host's own firewall treats the traffic",
  SmackLabel: 'sets a Smack label',
  SmackLabelIPIn: 'sets a Smack label',
  SmackLabelIPOut: 'sets a Smack label',
  SELinuxContextFromNet: "starts the service in the peer's SELinux context",
};

/** The keys judged here; the rest tune the socket or are judged elsewhere (Exec*: host-commands). */
const judgedKeys = new Set([
  'ListenStream',
  'ListenDatagram',
  'ListenSequentialPacket',
  'ListenFIFO',
  'ListenSpecial',
  'ListenNetlink',
  'ListenMessageQueue',
  'ListenUSBFunction',
  'SocketUser',
  'SocketGroup',
  'SocketMode',
  'DirectoryMode',
  'Symlinks',
  'Service',
  ...Object.keys(refusedKeys),
]);

const isLoopback = (address: string) => /^127\.\d+\.\d+\.\d+$/.test(address) || address === '[::1]';

function controlAt(line: UnitLine, rule: Control['rule'], need: Need, detail: string): LineControl {
  return { line, written: `${line.key}=${line.value}`, rule, need, detail };
}

/**
 * A socket address as systemd reads one (socket_address_parse): a path, an
 * abstract name, a port alone (every address), `IPv4:PORT`, `[IPv6]:PORT`,
 * `vsock:CID:PORT`. Returns the port need, a path, or why it cannot be judged.
 */
export function socketAddress(
  value: string,
  protocol: string,
): { port: string } | { path: string } | { refuse: string } {
  if (value.startsWith('/')) return { path: value };
  if (value.startsWith('@')) {
    return {
      refuse:
        "an abstract socket lives in the host's network namespace, where another service may expect that name",
    };
  }
  if (value.startsWith('vsock:'))
    return { refuse: 'a vsock address reaches virtual machines of the host' };
  let address = '*';
  let port = value;
  const v6 = /^\[([0-9A-Fa-f:.]+)(?:%[^\]]+)?\]:(\d+)$/.exec(value);
  const v4 = /^(\d+\.\d+\.\d+\.\d+)(?:%[^:]+)?:(\d+)$/.exec(value);
  if (v6) {
    address = `[${v6[1]!.toLowerCase()}]`;
    port = v6[2]!;
  } else if (v4) {
    address = v4[1]!;
    port = v4[2]!;
  }
  if (address === '[::]' || address === '0.0.0.0')
    address = address === '[::]' ? '[::]' : '0.0.0.0';
  const need = `${address}:${port}/${protocol}`;
  if (!/^\d+$/.test(port) || !parsePortNeed(need)) {
    return {
      refuse: 'not an address systemd listens on (a path, a port, IPv4:PORT or [IPv6]:PORT)',
    };
  }
  return { port: need };
}

/** The default service of a socket: `<name>.service`, or the `<name>@.service` template with Accept=yes. */
export function activatedService(socket: string, accept: boolean): string {
  const base = socket.slice(0, socket.lastIndexOf('.'));
  return accept ? `${base}@.service` : `${base}.service`;
}

function accountUse(
  ctx: SocketContext,
  line: UnitLine,
  kind: 'users' | 'groups',
  raw: string,
): LineControl | undefined {
  const placeholder = /^@@rick:(uid|gid):([^@]+)@@$/.exec(raw);
  const name = placeholder ? placeholder[2]! : raw;
  if (name === '' || name === 'root' || name === '0') return undefined; // systemd's own default
  const own = kind === 'users' ? ctx.ownUsers : ctx.ownGroups;
  if (own.has(name)) return undefined;
  return controlAt(
    line,
    'sockets',
    { kind, value: name },
    `the socket file belongs to host ${kind === 'users' ? 'user' : 'group'} ${name}, which the bundle does not create`,
  );
}

function pathControl(line: UnitLine, path: string, access: 'ro' | 'rw', what: string): LineControl {
  if (pathProblem(path)) {
    return controlAt(
      line,
      'sockets',
      { kind: 'privileged' },
      `${path} is not an absolute, plain path`,
    );
  }
  return controlAt(line, 'sockets', { kind: 'paths', value: `${path}:${access}` }, what);
}

/** Judges the `[Socket]` section of a plain `.socket` unit. */
export function judgeSocket(ctx: SocketContext, section: readonly UnitLine[]): LineControl[] {
  const out: LineControl[] = [];
  const last = (key: string) => section.filter((l) => l.key === key).at(-1);
  const truthy = (line: UnitLine | undefined) =>
    line !== undefined && ['1', 'yes', 'true', 'on'].includes(line.value.toLowerCase());
  const socketProtocol = last('SocketProtocol')?.value;
  const writable = truthy(last('Writable'));
  const accept = truthy(last('Accept'));
  for (const line of section) {
    if (line.value === '' || !judgedKeys.has(line.key)) continue;
    const value = ctx.expand(line.value);
    if (value === undefined) {
      out.push(
        controlAt(
          line,
          'sockets',
          { kind: 'privileged' },
          'the value cannot be told before the unit runs (a host-specific specifier)',
        ),
      );
      continue;
    }
    switch (line.key) {
      case 'ListenStream':
      case 'ListenDatagram':
      case 'ListenSequentialPacket': {
        const protocol =
          line.key === 'ListenDatagram'
            ? 'udp'
            : line.key === 'ListenSequentialPacket' || socketProtocol === 'sctp'
              ? 'sctp'
              : 'tcp';
        const address = socketAddress(value, protocol);
        if ('refuse' in address) {
          out.push(controlAt(line, 'sockets', { kind: 'privileged' }, address.refuse));
        } else if ('path' in address) {
          out.push(
            pathControl(line, address.path, 'rw', 'systemd creates this socket file on the host'),
          );
        } else if (!isLoopback(parsePortNeed(address.port)!.address)) {
          out.push(
            controlAt(
              line,
              'sockets',
              { kind: 'ports', value: address.port },
              'systemd listens on this port of the host',
            ),
          );
        }
        break;
      }
      case 'ListenFIFO':
        out.push(pathControl(line, value, 'rw', 'systemd creates this FIFO on the host'));
        break;
      case 'ListenUSBFunction':
        out.push(pathControl(line, value, 'rw', "systemd opens this USB FunctionFS's endpoints"));
        break;
      case 'ListenSpecial':
        if (value.startsWith('/dev/') && !pathProblem(value)) {
          out.push(
            controlAt(
              line,
              'sockets',
              { kind: 'devices', value },
              'systemd opens this device and hands it to the service',
            ),
          );
        } else {
          out.push(
            pathControl(
              line,
              value,
              writable ? 'rw' : 'ro',
              `systemd opens this file ${writable ? 'read-write' : 'read-only'} and hands it to the service`,
            ),
          );
        }
        break;
      case 'ListenNetlink':
        out.push(
          controlAt(
            line,
            'sockets',
            { kind: 'privileged' },
            "a netlink socket of the host's kernel (audit, uevents, routing)",
          ),
        );
        break;
      case 'ListenMessageQueue':
        out.push(
          controlAt(
            line,
            'sockets',
            { kind: 'namespaces', value: 'ipc' },
            "a POSIX message queue lives in the host's IPC namespace",
          ),
        );
        break;
      case 'SocketUser':
      case 'SocketGroup': {
        const c = accountUse(ctx, line, line.key === 'SocketUser' ? 'users' : 'groups', value);
        if (c) out.push(c);
        break;
      }
      case 'SocketMode':
      case 'DirectoryMode':
        if (!/^0?[0-7]{1,3}$/.test(value)) {
          out.push(
            controlAt(
              line,
              'sockets',
              { kind: 'privileged' },
              'a mode with set-user-ID, set-group-ID or sticky bits, or not an octal mode',
            ),
          );
        }
        break;
      case 'Symlinks':
        for (const path of value.split(/\s+/).filter(Boolean)) {
          out.push(pathControl(line, path, 'rw', 'systemd makes this symbolic link on the host'));
        }
        break;
      case 'Service':
        if (!ctx.names.units.has(value)) {
          out.push(
            controlAt(
              line,
              'sockets',
              { kind: 'units', value },
              `activates ${value}, which is not one of ${ctx.names.bundle}'s units`,
            ),
          );
        }
        break;
      default:
        if (line.key in refusedKeys) {
          out.push(controlAt(line, 'sockets', { kind: 'privileged' }, refusedKeys[line.key]!));
        }
    }
  }
  if (!last('Service') && section.length > 0) {
    const service = activatedService(ctx.name, accept);
    if (!ctx.names.units.has(service)) {
      const anchor = section[0]!;
      out.push({
        line: anchor,
        written: `(no Service=) ${service}`,
        rule: 'sockets',
        need: { kind: 'units', value: service },
        detail: `without Service= the socket activates ${service}, which is not one of ${ctx.names.bundle}'s units`,
      });
    }
  }
  return out;
}
