/** `sockets`: a plain `.socket` unit of the bundle; judged by src/host/policy/socket-check.ts. */
import type { RestrictedRule, RuleDoc } from './rule.js';

export const socketsRule: RestrictedRule = {
  rules: ['sockets'],
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const socketsDocs: readonly RuleDoc[] = [
  {
    id: 'sockets',
    podSecurity: '— (a pod spec has no host listeners)',
    refuses:
      "a plain `.socket` unit (`systemd/`), which systemd opens as root: `ListenStream=`/`ListenDatagram=`/`ListenSequentialPacket=` on a port beyond loopback (`tcp`, `udp`, `sctp`; a port alone is every address, `*`) or a path (`path:rw`); `ListenFIFO=` and `ListenUSBFunction=` (`path:rw`); `ListenSpecial=` (a `/dev` device, else `path:ro`, `rw` with `Writable=yes`); `ListenMessageQueue=` (the host's IPC namespace); `ListenNetlink=`, abstract (`@…`) and `vsock:` addresses (`privileged`); `SocketUser=`/`SocketGroup=` of an account the bundle does not create (`users`/`groups`); `SocketMode=`/`DirectoryMode=` with set-id or sticky bits, `Transparent=`, `Mark=`, `SmackLabel*=`, `SELinuxContextFromNet=` (`privileged`); `Symlinks=` (`path:rw`); `Service=`, or without it `<name>.service` (`<name>@.service` with `Accept=yes`), that is not one of the bundle's units (its plain units, its Quadlet units and the services quadlet makes of them). A socket file's mode is free: a local socket is like a loopback port, and it reaches only the bundle's own service",
    allows: '`ports`, `paths`, `devices`, `namespaces`, `users`, `groups`, `units`',
  },
];
