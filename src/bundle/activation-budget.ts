/**
 * How long an activation may take, shared by the builder (which refuses a
 * bundle that cannot fit) and the installer (which stops at the limit).
 *
 * rick-update.service stops its run after TimeoutStartSec=1h. A run that
 * installs a bundle may activate it and, when its gate fails, restore the
 * previous generation: each of the two gets at most ACTIVATION_LIMIT_SEC,
 * so both fit in the hour with ten minutes left for the rest of the run
 * (intake, the flip, the state). A service's part of the limit is what its
 * gate may wait: its restart job and `active` (activeTimeoutSec), its HTTP
 * checks one after the other (each timeoutSec), and the settle period.
 * The parts are added up, as a rolling restart waits for one container
 * after the other.
 */

/** rick-update.service's TimeoutStartSec= (installer/systemd/rick-update.service). */
export const UPDATE_SERVICE_TIMEOUT_SEC = 3600;

/** The longest an activation, or the restore after it, may take. */
export const ACTIVATION_LIMIT_SEC = 1500;

/**
 * Seconds a service must stay active, with the same main process and no
 * automatic restart, before the gate passes it (manifest `settleSec`).
 */
export const DEFAULT_SETTLE_SEC = 5;

/** The fields of a manifest service the budget reads. */
export interface BudgetedService {
  service: string;
  activeTimeoutSec: number;
  settleSec?: number | undefined;
  checks: ReadonlyArray<{ timeoutSec: number }>;
}

export function settleSecOf(service: { settleSec?: number | undefined }): number {
  return service.settleSec ?? DEFAULT_SETTLE_SEC;
}

/** The longest the gate may spend on one service. */
export function serviceBudgetSec(service: BudgetedService): number {
  return (
    service.activeTimeoutSec +
    service.checks.reduce((sum, c) => sum + c.timeoutSec, 0) +
    settleSecOf(service)
  );
}

/** Each service's part and their sum, for the builder's refusal. */
export function activationBudget(services: readonly BudgetedService[]): {
  totalSec: number;
  parts: Array<{ service: string; sec: number }>;
} {
  const parts = services.map((s) => ({ service: s.service, sec: serviceBudgetSec(s) }));
  return { totalSec: parts.reduce((sum, p) => sum + p.sec, 0), parts };
}
