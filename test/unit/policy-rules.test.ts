import { describe, expect, it } from 'vitest';
import { podmanPodCreateFlags, podmanRunFlags } from '../../src/bundle/podman-args.js';
import { restrictedRules } from '../../src/host/policy/restricted/context.js';
import { quadletKinds } from '../../src/host/policy/restricted/kinds.js';
import {
  finalCheck,
  flagCheck,
  judgedFlags,
  keyCheck,
  lineCheck,
  restrictedRuleModules,
} from '../../src/host/policy/restricted/registry.js';
import { ruleDocs, ruleDocTable } from '../../src/host/policy/restricted/rule-docs.js';

describe('the rules of restricted as a table', () => {
  it('has every rule judged by exactly one module, with its one docs row', () => {
    expect(ruleDocs().map((r) => r.id)).toEqual([...restrictedRules]);
    const ids = restrictedRuleModules.flatMap((m) => m.rules);
    expect(ids.toSorted()).toEqual([...restrictedRules].sort());
    expect(ruleDocTable.map(([rule]) => rule)).toEqual(restrictedRuleModules);
    for (const [rule, docs] of ruleDocTable) expect(docs.map((d) => d.id)).toEqual(rule.rules);
  });

  it('holds a check for every key check, line check and final check the kind table names', () => {
    for (const kind of Object.values(quadletKinds)) {
      for (const use of kind.uses) {
        if ('check' in use) expect(() => keyCheck(use.check), use.check).not.toThrow();
        if ('afterFlag' in use && use.afterFlag)
          expect(() => lineCheck(use.afterFlag!), use.afterFlag).not.toThrow();
      }
      for (const name of kind.final ?? []) expect(() => finalCheck(name), name).not.toThrow();
    }
    expect(() => keyCheck('no-such-check' as never)).toThrow(
      'no rule of restricted holds the check no-such-check',
    );
  });

  it('judges every flag a Quadlet key is mapped to, and judges only flags podman has', () => {
    const unjudged: string[] = [];
    for (const [name, kind] of Object.entries(quadletKinds)) {
      for (const use of kind.uses) {
        if ('flag' in use && !flagCheck(use.flag)) unjudged.push(`${name} ${use.key}=`);
        if ('flag' in use && !(use.flag in kind.flags)) unjudged.push(`${name} --${use.flag}`);
      }
    }
    expect(unjudged).toEqual([]);
    const unknown = judgedFlags().filter(
      (f) => !(f in podmanRunFlags) && !(f in podmanPodCreateFlags),
    );
    expect(unknown).toEqual([]);
    expect(flagCheck('hostname')).toBeUndefined();
  });

  it('lists the Quadlet keys each key check reads among the keys its kinds know', () => {
    const missing: string[] = [];
    for (const [name, kind] of Object.entries(quadletKinds)) {
      for (const use of kind.uses) {
        if (!kind.known.has(use.key)) missing.push(`${name} ${use.key}`);
        if (!('check' in use)) continue;
        const check = restrictedRuleModules.find((m) => m.keyChecks?.[use.check])?.keyChecks?.[
          use.check
        ];
        for (const key of check?.keys ?? []) {
          if (!kind.known.has(key)) missing.push(`${name} ${use.check} reads ${key}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});
