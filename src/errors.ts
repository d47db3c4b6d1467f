/**
 * The one error model of rick. Every refusal is a RickError with a code from
 * the closed set below; each code maps to a documented exit code so that
 * scripts and the update timer can tell refusals apart.
 */

/** Exit codes shared by both programs. Documented in docs/exit-codes.md and in `--help`. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  invalidBundle: 3,
  untrustedSignature: 4,
  missingPrerequisite: 5,
  versionPolicy: 6,
  rolledBack: 7,
  rollbackFailed: 8,
  lockBusy: 9,
  drift: 10,
  feed: 11,
  imagePull: 12,
  indexExpired: 13,
  policy: 14,
  database: 15,
  interrupted: 16,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const codes = {
  INTERNAL: ExitCode.internal,
  IO_ERROR: ExitCode.internal,
  USAGE: ExitCode.usage,
  INPUT_NOT_FOUND: ExitCode.usage,
  INVALID_VERSION: ExitCode.usage,
  // Build side: the bundle definition or its templates are wrong.
  DEFINITION_INVALID: ExitCode.invalidBundle,
  TEMPLATE_ERROR: ExitCode.invalidBundle,
  UNDEFINED_VARIABLE: ExitCode.invalidBundle,
  UNKNOWN_PLACEHOLDER: ExitCode.invalidBundle,
  NEEDS_UNDECLARED: ExitCode.invalidBundle,
  QUADLET_REJECTED: ExitCode.invalidBundle,
  UNITS_REJECTED: ExitCode.invalidBundle,
  SITE_REJECTED: ExitCode.invalidBundle,
  // Image digests (images.lock, `rick-bundle pin`, `build --require-pinned`).
  IMAGE_REFERENCE_INVALID: ExitCode.invalidBundle,
  IMAGES_LOCK_INVALID: ExitCode.invalidBundle,
  IMAGES_UNPINNED: ExitCode.invalidBundle,
  // Host side: the bundle itself is malformed or hostile.
  BUNDLE_INVALID: ExitCode.invalidBundle,
  MANIFEST_INVALID: ExitCode.invalidBundle,
  // A valid, signed bundle, but not the bundle or version that was asked for.
  BUNDLE_MISMATCH: ExitCode.invalidBundle,
  // Trust.
  SIGNATURE_INVALID: ExitCode.untrustedSignature,
  SIGNATURE_MISSING: ExitCode.untrustedSignature,
  KEYRING_INVALID: ExitCode.untrustedSignature,
  KEYRING_INSECURE: ExitCode.untrustedSignature,
  KEY_INVALID: ExitCode.usage,
  // The signed key list (keys.json) under the root key (/etc/rick/keys/root.asc):
  // not signed by the root, older than the one accepted, expired, or
  // malformed (naming no key, a public key that is not the fingerprint listed).
  KEY_LIST_UNTRUSTED: ExitCode.untrustedSignature,
  KEY_LIST_ROLLBACK: ExitCode.untrustedSignature,
  KEY_LIST_EXPIRED: ExitCode.untrustedSignature,
  KEY_LIST_INVALID: ExitCode.untrustedSignature,
  // A root hand-over statement not signed by the root this host trusts, or malformed.
  ROOT_HANDOVER_INVALID: ExitCode.untrustedSignature,
  // Host prerequisites and facts.
  PREREQUISITE_MISSING: ExitCode.missingPrerequisite,
  FACT_MISSING: ExitCode.missingPrerequisite,
  SECRETS_INSECURE: ExitCode.missingPrerequisite,
  // A container that cannot reach what it mounts (a client socket) as its own user and groups.
  PREFLIGHT_FAILED: ExitCode.missingPrerequisite,
  // Version policy.
  VERSION_REFUSED: ExitCode.versionPolicy,
  VERSION_QUARANTINED: ExitCode.versionPolicy,
  // Activation.
  IMAGE_PULL_FAILED: ExitCode.imagePull,
  // `rick-bundle pin`: the registry has no such tag, or could not tell its digest.
  IMAGE_NOT_FOUND: ExitCode.imagePull,
  REGISTRY_ERROR: ExitCode.imagePull,
  ROLLED_BACK: ExitCode.rolledBack,
  ROLLBACK_FAILED: ExitCode.rollbackFailed,
  // rick's own state (state.json, current, the lock, generations) is damaged
  // or contradicts itself: nothing is undone on a guess, a person decides.
  STATE_INCONSISTENT: ExitCode.rollbackFailed,
  LOCK_BUSY: ExitCode.lockBusy,
  DRIFT: ExitCode.drift,
  // Host policy: the bundle needs more than this host grants it.
  POLICY_REFUSED: ExitCode.policy,
  // A declared PostgreSQL database or role could not be created or updated.
  DATABASE_FAILED: ExitCode.database,
  // Release feed.
  FEED_ERROR: ExitCode.feed,
  CONFIG_INVALID: ExitCode.usage,
  // Signed release index: an older index than the one accepted before, one
  // issued in the future (the publisher's or this host's clock is wrong), or an expired one.
  INDEX_ROLLBACK: ExitCode.feed,
  INDEX_NOT_YET_VALID: ExitCode.feed,
  INDEX_EXPIRED: ExitCode.indexExpired,
  // A stop signal (SIGTERM, SIGHUP, SIGINT) ended the run, once it had put the host back.
  INTERRUPTED: ExitCode.interrupted,
} as const satisfies Record<string, ExitCode>;

export type ErrorCode = keyof typeof codes;

export interface RickErrorOptions {
  /** One line telling the operator what to do about it. */
  hint?: string;
  /** The lower-level error this one wraps. */
  cause?: unknown;
}

export class RickError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: RickErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RickError';
    this.code = code;
    this.hint = options.hint;
  }

  get exitCode(): ExitCode {
    return codes[this.code];
  }
}

export function isRickError(error: unknown): error is RickError {
  return error instanceof RickError;
}

export function exitCodeFor(code: ErrorCode): ExitCode {
  return codes[code];
}

/**
 * The exit-code table: the one source for `--help` and the table of docs/exit-codes.md
 * (`npm run docs` writes it there; a test keeps the two equal).
 */
export const exitCodeHelp: ReadonlyArray<readonly [ExitCode, string]> = [
  [ExitCode.ok, 'success, including "same version already installed, nothing to do"'],
  [ExitCode.internal, 'unexpected error (a bug or an I/O failure)'],
  [
    ExitCode.usage,
    'usage: bad arguments, missing input file, invalid version, existing key file, invalid rick.conf',
  ],
  [
    ExitCode.invalidBundle,
    'invalid bundle, bundle definition or template; units or sites rejected by quadlet, systemd-analyze or Caddy; not the bundle or version asked for',
  ],
  [
    ExitCode.untrustedSignature,
    'signature missing, invalid or not by a trusted key; insecure keyring; a key list or root hand-over refused (not signed by the root, older, expired, naming no key)',
  ],
  [
    ExitCode.missingPrerequisite,
    'missing prerequisite or host fact (group, user, secret, podman, quadlet, gpgv); a container cannot reach a socket it mounts (pre-flight)',
  ],
  [ExitCode.versionPolicy, 'refused by version policy (downgrade or quarantined version)'],
  [ExitCode.rolledBack, 'the new generation failed its health gate and was rolled back'],
  [
    ExitCode.rollbackFailed,
    "the host needs attention: a rollback failed, or rick's state is inconsistent",
  ],
  [ExitCode.lockBusy, 'another rick-install holds the lock (the message names the holder)'],
  [ExitCode.drift, 'live files differ from their generation (`verify`)'],
  [
    ExitCode.feed,
    'release feed unreachable or malformed, or an index older than the last accepted or issued in the future',
  ],
  [
    ExitCode.imagePull,
    'an image the new units need could not be pulled: nothing was changed, the update timer tries again; `rick-bundle pin`: the registry has no such tag or cannot tell its digest, images.lock unchanged',
  ],
  [ExitCode.indexExpired, 'release index expired: the feed may be frozen; nothing was installed'],
  [ExitCode.policy, 'refused by host policy: the bundle needs what this host has not granted'],
  [
    ExitCode.database,
    "a declared PostgreSQL database or role could not be created or updated (PostgreSQL's message); nothing went live",
  ],
  [
    ExitCode.interrupted,
    'stopped by SIGTERM, SIGHUP or SIGINT: what the run made live was restored first (after a second signal, the next run restores it)',
  ],
];

/**
 * The table for a program's `--help`: only the codes it can exit with
 * (`only`), or all of them.
 */
export function formatExitCodes(only?: readonly ExitCode[]): string {
  return exitCodeHelp
    .filter(([code]) => only === undefined || only.includes(code))
    .map(([code, text]) => `  ${String(code).padStart(2)}  ${text.replaceAll('`', '')}`)
    .join('\n');
}

/** The same table as Markdown, for docs/exit-codes.md. */
export function formatExitCodesMarkdown(): string {
  const rows = exitCodeHelp.map(([code, text]) => `| ${code} | ${text} |`);
  return ['| code | meaning |', '|---|---|', ...rows].join('\n');
}

/** Wraps an unknown low-level failure at an I/O edge, keeping RickErrors as they are. */
export function wrapError(
  error: unknown,
  code: ErrorCode,
  message: string,
  hint?: string,
): RickError {
  if (isRickError(error)) return error;
  return new RickError(code, `${message}: ${describe(error)}`, { hint, cause: error });
}

export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
