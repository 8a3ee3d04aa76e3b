import { createHash } from "node:crypto";

// What a renderer produces: plain data, the same for `render`, the Pulumi program, the direct
// apply and the drift check. The effects layer runs these commands without knowing the concern.

/** Digests of large contents (a blocklist's sets file is hashed by the render, the engine and drift): the last few. */
const largeDigests = new Map<string, string>();
const LARGE = 1 << 16;

/** sha256 of a text, hex; a large one is hashed once for all its users. */
export function sha256Hex(content: string): string {
    if (content.length < LARGE) return createHash("sha256").update(content).digest("hex");
    let digest = largeDigests.get(content);
    if (digest === undefined) {
        digest = createHash("sha256").update(content).digest("hex");
        largeDigests.set(content, digest);
        // The oldest go first (a Map iterates in insertion order).
        const oldest = largeDigests.keys().next().value;
        if (largeDigests.size > 8 && oldest !== undefined) largeDigests.delete(oldest);
    }
    return digest;
}

export type Concern = "blocklists" | "firewall" | "fail2ban" | "sshd" | "apache" | "knocking" | "system";

export interface Artifact {
    /** Absolute path on the host. */
    path: string;
    /** File content; secret parts are `secretPlaceholder(name)` tokens filled in on the host side only. */
    content: string;
    mode: string;
    owner: string;
    group: string;
    /** True when the content holds a secret placeholder: never print the filled-in text. */
    secret: boolean;
    /** A large file (a blocklist's sets): drift compares its digest only and never reads it back. */
    bulk: boolean;
    /**
     * For a bulk file whose line order the content itself defines: a command printing the new file
     * from the old one ($MORH_OLD) without the lines in $MORH_REMOVED and with those in
     * $MORH_ADDED. With it, an apply sends only the changed lines (see apply/bulk.ts).
     */
    merge?: string;
}

/**
 * Set (to 1) while an apply reads a host: a live view may then remember what it computed, in
 * VIEW_MEMORY_DIR, to compute less next time. A drift check never sets it: it writes nothing.
 */
export const FILL_VIEWS_VARIABLE = "MORH_FILL_VIEWS";
/**
 * The host's mor-harden lock (flock): every transaction holds it, and so does anything a plan
 * installs that changes what a transaction checks (certbot's deploy hook, for one).
 */
export const HOST_LOCK_FILE = "/var/lib/mor-harden/lock";
export const VIEW_MEMORY_DIR = "/var/lib/mor-harden/views";

/**
 * Live state that files alone do not show (the loaded ruleset, sshd's effective settings): a
 * command that prints it, and what it must print, either fixed text or the output of a command
 * fed one artifact's desired content (so the same tool formats both sides).
 */
export interface LiveView {
    name: string;
    live: string;
    /** A slow read (a large set): started first and run beside the rest of a read-only script. */
    background?: boolean;
    expected: { text: string } | { artifact: number; command: string };
}

export interface ConcernPlan {
    concern: Concern;
    /** What the preview shows beside the files: resolved sources, chosen directives and why. */
    summary: string[];
    /** OS packages that must be installed before the files mean anything. */
    packages: string[];
    artifacts: Artifact[];
    /**
     * Commands run after the packages and before the files move into place: a step the new files
     * need done on the host first (an ACME issuance). A failure refuses the change with nothing
     * moved; a line `MORH-REASON <kind> <why>` on its output says why, typed.
     */
    stage?: string[];
    /**
     * Commands that take away what a stage leaves while it runs (a temporary vhost), run by every
     * rollback of the transaction, whenever it ends: a stage cut short (a killed session, a reboot)
     * leaves nothing behind once the transaction is rolled back (the next lock, the boot hook).
     */
    stageUndo?: string[];
    /** Idempotent commands run after the files are written, before validation (enable modules, sites). */
    prepare: string[];
    /** Commands that judge the written files with the real tool; any failure rolls the files back. */
    validate: string[];
    /**
     * Commands that make the files live (reload, restore). A line `MORH-NOTE <text>` on their
     * output is carried into the report (what an activation replaced, for instance).
     */
    activate: string[];
    /** Commands that check the live state after activation (effective config, loaded jails); also how drift in the running state is seen. */
    verify: string[];
    /**
     * Commands that save the running state into the directory `$MORH_STATE` before activation (the
     * firewall's live rules). The first transaction of a concern keeps its snapshot with the
     * originals, so delete can bring back the running state mor-harden found.
     */
    snapshot: string[];
    /** Commands that bring the running state back from `$MORH_STATE` once the old files are restored (default: activate again). */
    rollback: string[];
    /**
     * Commands run after `rollback`: each exits non-zero, printing what is live instead, when the
     * running state does not match the snapshot in `$MORH_STATE`. "Rolled back" is reported only
     * when all pass.
     */
    rollbackCheck: string[];
    /**
     * Commands that undo activation when mor-harden stops managing the concern, after the originals
     * are back; `$MORH_STATE` is the snapshot the first transaction took (it may be missing).
     */
    deactivate: string[];
    /** What drift checks compare beyond the files. */
    liveViews: LiveView[];
    /** A mistake here can lock the operator out: the change is committed only after a new SSH login. */
    needsConfirm: boolean;
}

/**
 * The lines a plan's own commands may print for the engine, at the start of a line (the apply
 * protocol, src/apply/protocol.ts, takes them from here): `MORH-NOTE <text>` is carried into the
 * report; `MORH-REASON <kind> <why>` says why a stage refused the change (the last one counts).
 */
export const PLAN_MARKER = { note: "MORH-NOTE", reason: "MORH-REASON" } as const;

const SECRET_MARK = "@@mor-harden-secret:";

/** The token a renderer writes where a secret goes; the provider substitutes it on the way to the host. */
export function secretPlaceholder(name: string): string {
    return `${SECRET_MARK}${name}@@`;
}

export function secretNamesIn(content: string): string[] {
    return [...content.matchAll(/@@mor-harden-secret:([A-Za-z0-9_]+)@@/g)].map((match) => match[1]);
}

/** Fills the placeholders; a missing secret is an error naming the key, never its value. */
export function fillSecrets(content: string, secrets: Record<string, string | undefined>): string {
    return content.replace(/@@mor-harden-secret:([A-Za-z0-9_]+)@@/g, (_, name: string) => {
        const value = secrets[name];
        if (value === undefined) throw new Error(`secret "${name}" is needed but not set`);
        return value;
    });
}

export function file(path: string, content: string, options: Partial<Omit<Artifact, "path" | "content">> = {}): Artifact {
    return {
        path,
        content,
        mode: options.mode ?? "0644",
        owner: options.owner ?? "root",
        group: options.group ?? "root",
        secret: options.secret ?? secretNamesIn(content).length > 0,
        bulk: options.bulk ?? false,
        ...(options.merge ? { merge: options.merge } : {}),
    };
}

/** The content as previews show it: each secret placeholder becomes `[secret NAME]`. */
export function redactSecrets(content: string): string {
    return content.replace(/@@mor-harden-secret:([A-Za-z0-9_]+)@@/g, "[secret $1: never shown]");
}

/** A managed file as it should be on the host: what drift and idempotence compare. */
export interface FileDigest {
    path: string;
    sha256: string;
    mode: string;
    /** "owner:group" */
    owner: string;
}

/** The digests of a plan's files with secrets filled in (the filled text is never kept). */
export function desiredDigests(plan: ConcernPlan, secrets: Record<string, string | undefined>): FileDigest[] {
    return plan.artifacts.map((artifact) => ({
        path: artifact.path,
        sha256: sha256Hex(fillSecrets(artifact.content, secrets)),
        mode: artifact.mode,
        owner: `${artifact.owner}:${artifact.group}`,
    }));
}
