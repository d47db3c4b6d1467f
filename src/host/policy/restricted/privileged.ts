/**
 * `privileged`: what turns confinement off as a whole or reaches podman
 * itself (its configuration, storage, runtime and hooks).
 */
import { splitArgs } from '../../../bundle/podman-args.js';
import { lookupAll } from '../../../bundle/unit-file.js';
import { refuse } from './context.js';
import type { FlagCheck, RestrictedRule, RuleDoc } from './rule.js';

/** Flags refused outright, each with why. */
const privilegedFlags: Record<string, string> = {
  privileged: 'turns off every confinement',
  'volumes-from': "takes another container's mounts, which rick cannot see",
  'device-cgroup-rule': 'allows device nodes by number',
  gpus: 'hands over the host GPUs',
  'cgroup-parent': 'places the container in any part of the host cgroup tree',
  rootfs: 'runs a host directory as the root file system',
};

const refused =
  (why: string): FlagCheck =>
  ({ ctx, line, written, value }) => {
    if (value !== 'false') refuse(ctx, line, written, 'privileged', why);
  };

export const privilegedRule: RestrictedRule = {
  rules: ['privileged'],
  flags: {
    ...Object.fromEntries(
      Object.entries(privilegedFlags).map(([flag, why]) => [flag, refused(why)]),
    ),
    annotation: ({ ctx, line, written, value }) => {
      if (/^(run\.oci\.|io\.podman\.annotations\.)/.test(value)) {
        refuse(
          ctx,
          line,
          written,
          'privileged',
          'a runtime annotation changes how the container is confined',
        );
      }
    },
  },
  keyChecks: {
    'containers-conf-module': {
      keys: ['ContainersConfModule'],
      check: (ctx, { group }) => {
        for (const line of lookupAll(ctx.unit, group, 'ContainersConfModule')) {
          refuse(
            ctx,
            line,
            `ContainersConfModule=${line.value}`,
            'privileged',
            "a containers.conf module can change every default of podman's",
          );
        }
      },
    },
    'global-args': {
      keys: ['GlobalArgs'],
      check: (ctx, { group }) => {
        for (const line of lookupAll(ctx.unit, group, 'GlobalArgs')) {
          const words = splitArgs(line.value);
          const harmless =
            words.problems.length === 0 &&
            words.words.every(
              (w, i, all) => /^--log-level(=|$)/.test(w) || (i > 0 && all[i - 1] === '--log-level'),
            );
          if (!harmless) {
            refuse(
              ctx,
              line,
              `GlobalArgs=${line.value}`,
              'privileged',
              "global flags choose podman's storage, runtime and hooks",
            );
          }
        }
      },
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const privilegedDocs: readonly RuleDoc[] = [
  {
    id: 'privileged',
    podSecurity: 'Privileged Containers (Baseline)',
    refuses:
      "`--privileged`; `--volumes-from`, `--device-cgroup-rule`, `--gpus`, `--cgroup-parent`, `--rootfs` in `PodmanArgs`; runtime annotations (`run.oci.*`, `io.podman.annotations.*`); `shared`/`rshared` mount propagation; `ContainersConfModule=` and `GlobalArgs=` other than `--log-level` (they choose podman's configuration, storage, runtime and hooks)",
    allows: '`privileged`',
  },
];
