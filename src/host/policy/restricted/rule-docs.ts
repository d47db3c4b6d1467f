/**
 * docs/policy.md's table of the rules of `restricted`, from the rows each
 * rule module keeps beside its checks: `npm run docs` writes it
 * (scripts/generate-docs.mjs), test/integration/docs.test.ts keeps the page
 * equal. Only the docs and the tests import this module, so the installer,
 * which bundles the judge, carries none of the table's text.
 */

import { capabilitiesDocs, capabilitiesRule } from './capabilities.js';
import { confinementDocs, confinementRule } from './confinement.js';
import { type RuleId, restrictedRules } from './context.js';
import { devicesDocs, devicesRule } from './devices.js';
import { groupsDocs, groupsRule } from './groups.js';
import { hostCommandsDocs, hostCommandsRule } from './host-commands.js';
import { hostPathsDocs, hostPathsRule } from './host-paths.js';
import { imageSourcesDocs, imageSourcesRule } from './image-sources.js';
import { namespacesDocs, namespacesRule } from './namespaces.js';
import { portsDocs, portsRule } from './ports.js';
import { privilegedDocs, privilegedRule } from './privileged.js';
import type { RestrictedRule, RuleDoc } from './rule.js';
import { secretsDocs, secretsRule } from './secrets.js';
import { sensitivePathsDocs, sensitivePathsRule } from './sensitive-paths.js';
import { serviceDirectivesDocs, serviceDirectivesRule } from './service-directives.js';
import { sitesDocs, sitesRule } from './sites.js';
import { socketsDocs, socketsRule } from './sockets.js';
import { sysctlsDocs, sysctlsRule } from './sysctls.js';
import { unitDependenciesDocs, unitDependenciesRule } from './unit-dependencies.js';
import { unreadableDocs, unreadableRule } from './unreadable.js';
import { usersDocs, usersRule } from './users.js';
import { volumesDocs, volumesRule } from './volumes.js';

/** Each rule module with its rows. */
export const ruleDocTable: readonly (readonly [RestrictedRule, readonly RuleDoc[]])[] = [
  [privilegedRule, privilegedDocs],
  [capabilitiesRule, capabilitiesDocs],
  [namespacesRule, namespacesDocs],
  [hostPathsRule, hostPathsDocs],
  [sensitivePathsRule, sensitivePathsDocs],
  [devicesRule, devicesDocs],
  [portsRule, portsDocs],
  [confinementRule, confinementDocs],
  [sysctlsRule, sysctlsDocs],
  [usersRule, usersDocs],
  [groupsRule, groupsDocs],
  [serviceDirectivesRule, serviceDirectivesDocs],
  [hostCommandsRule, hostCommandsDocs],
  [secretsRule, secretsDocs],
  [volumesRule, volumesDocs],
  [imageSourcesRule, imageSourcesDocs],
  [socketsRule, socketsDocs],
  [unitDependenciesRule, unitDependenciesDocs],
  [unreadableRule, unreadableDocs],
  [sitesRule, sitesDocs],
];

/** Every rule's row, in restrictedRules' order; a rule without exactly one row, or a row for a rule its module does not judge, is a mistake. */
export function ruleDocs(): RuleDoc[] {
  const rows = new Map<RuleId, RuleDoc>();
  for (const [rule, docs] of ruleDocTable) {
    for (const row of docs) {
      if (!rule.rules.includes(row.id))
        throw new Error(`rule ${row.id} has a row beside a module that does not judge it`);
      if (rows.has(row.id)) throw new Error(`rule ${row.id} has two rows`);
      rows.set(row.id, row);
    }
  }
  return restrictedRules.map((id) => {
    const row = rows.get(id);
    if (!row) throw new Error(`rule ${id} has no row`);
    return row;
  });
}

/** docs/policy.md's table of the rules of `restricted`. */
export function formatRulesMarkdown(): string {
  return [
    '| rule | Pod Security control (level) | what `restricted` refuses | need that allows it |',
    '|---|---|---|---|',
    ...ruleDocs().map((r) => `| \`${r.id}\` | ${r.podSecurity} | ${r.refuses} | ${r.allows} |`),
  ].join('\n');
}
