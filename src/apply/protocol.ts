// The protocol between mor-harden's host scripts and the engine: every marker and result line
// the scripts print (scripts.ts and templates/apply/ get them from here, never spelled twice),
// the exit codes of a transaction's steps, and one parser per script that turns what it printed
// into a discriminated union the engine switches on (pure, tested without a host).

import { PLAN_MARKER } from "../render/artifact";

/** The lines the host scripts print, each at the start of a line. */
export const marker = {
    /** The script holds the host's lock: its own time starts here (see HostSession.run). */
    locked: "MORH-LOCKED",
    /** Nothing was changed: `MORH-ABORTED <why>` (the lock is held, the disk is full, a tool is missing). */
    aborted: "MORH-ABORTED",
    /** What a step or the lock did beside its files: `MORH-NOTE <text>`. */
    note: PLAN_MARKER.note,
    /** Why a stage refused the change: `MORH-REASON <kind> <why>` (kinds are the plan's own). */
    reason: PLAN_MARKER.reason,
    /** A step failed and its rollback follows: `MORH-FAILED <step>`. */
    failed: "MORH-FAILED",
    /** The rollback (and its check) passed. */
    rolledBack: "MORH-ROLLED-BACK",
    /** The rollback did not complete: what is live is in the lines before. */
    rollbackIncomplete: "MORH-ROLLBACK-INCOMPLETE",
    /** A rollback check found the running state other than it was: `MORH-ROLLBACK-MISMATCH <what>`. */
    rollbackMismatch: "MORH-ROLLBACK-MISMATCH",
    /** The transaction is live (committed, or waiting for its confirmation). */
    applied: "MORH-APPLIED",
    /** confirm: the lock stayed held (another script of the host runs). */
    busy: "MORH-BUSY",
    /** confirm: the transaction has not verified its change yet. */
    notReady: "MORH-NOT-READY",
    /** confirm: the change stays. */
    confirmed: "MORH-CONFIRMED",
    /** confirm: too late: `MORH-EXPIRED <result>`. */
    expired: "MORH-EXPIRED",
    /** rollback-now: the change had been confirmed. */
    alreadyConfirmed: "MORH-ALREADY-CONFIRMED",
    /** rollback-now: the transaction had ended: `MORH-ALREADY-ENDED <result>`. */
    alreadyEnded: "MORH-ALREADY-ENDED",
    /** status: `MORH-STATUS <state>`. */
    status: "MORH-STATUS",
    /** delete: mor-harden never recorded this concern's originals. */
    noOriginals: "MORH-NO-ORIGINALS",
    /** delete: done. */
    deleted: "MORH-DELETED",
} as const;

/** What `$TX/result` holds (the first word), for a caller that lost the connection. */
export const resultWord = {
    applied: "applied",
    pending: "pending",
    rolledBack: "rolled-back",
    rollbackIncomplete: "rollback-incomplete",
    aborted: "aborted:",
} as const;

/** The states the status script prints beside a result: no such transaction, its script still holds the lock, never ended. */
export const statusWord = { none: "none", running: "running", unknown: "unknown" } as const;

/**
 * Exit codes of a transaction script, by the step that failed. `state` means nothing was changed:
 * the host could not protect the transaction (lock held, disk full, read-only, a tool missing);
 * `rollback`: a step failed and the rollback is incomplete.
 */
export const stepExit = {
    write: 10,
    packages: 11,
    prepare: 12,
    validate: 13,
    snapshot: 14,
    activate: 15,
    verify: 16,
    state: 17,
    rollback: 18,
    stage: 19,
} as const;
export type ApplyStep = keyof typeof stepExit;

/** Exit codes of the confirm script. */
export const confirmExit = { expired: 3, notReady: 4, busy: 4 } as const;

export function stepOfExit(code: number): ApplyStep | undefined {
    return (Object.keys(stepExit) as ApplyStep[]).find((step) => stepExit[step] === code);
}

/** What a script printed and how it exited (as HostSession.run returns it). */
export interface ScriptResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** The text after `<marker> ` on the last line that starts with it (undefined: no such line). */
function after(output: string, name: string): string | undefined {
    let found: string | undefined;
    for (const line of output.split("\n")) {
        if (line === name) found = "";
        else if (line.startsWith(`${name} `)) found = line.slice(name.length + 1);
    }
    return found;
}

/** Whether a line of the output is exactly the marker (markers stand on lines of their own). */
const has = (output: string, name: string) => output.split("\n").some((line) => line === name);

/** Everything of the output after the last line starting with the marker (a reason may span lines). */
function restAfter(output: string, name: string): string | undefined {
    const index = output.lastIndexOf(`${name} `);
    if (index < 0 || (index > 0 && output[index - 1] !== "\n")) return after(output, name);
    return output.slice(index + name.length + 1);
}

/** The `MORH-NOTE` lines of a script's output, without the marker. */
export function notesIn(output: string): string[] {
    return output.split("\n").flatMap((line) => (line.startsWith(`${marker.note} `) ? [line.slice(marker.note.length + 1)] : []));
}

/** The output with the protocol's own lines (lock taken, failed step, notes, the rollback's marker) taken out: the tools' words remain. */
export function toolOutput(text: string): string {
    return text
        .split("\n")
        .filter(
            (line) =>
                line !== marker.locked &&
                !line.startsWith(`${marker.failed} `) &&
                !line.startsWith(`${marker.note} `) &&
                !line.startsWith(`${marker.reason} `) &&
                line !== marker.rolledBack &&
                line !== marker.rollbackIncomplete,
        )
        .join("\n")
        .trim();
}

/** Why a stage refused a change: the last `MORH-REASON <kind> <why>` line. */
export interface StageReason {
    kind: string;
    why: string;
}

export function reasonIn(output: string): StageReason | undefined {
    const text = after(output, marker.reason);
    if (!text) return undefined;
    const [kind, ...why] = text.split(" ");
    return /^[a-z0-9-]+$/.test(kind) ? { kind, why: why.join(" ").trim() } : undefined;
}

/** How a transaction ended, as `$TX/result` (and the status, confirm and rollback-now scripts) say it. */
export type TransactionEnd =
    | { kind: "applied" }
    | { kind: "pending" }
    | { kind: "rolled-back"; why: string }
    | { kind: "rollback-incomplete"; why: string }
    | { kind: "aborted"; why: string }
    | { kind: "unknown"; text: string };

export function parseTransactionEnd(text: string): TransactionEnd {
    const line = text.trim();
    const rest = (word: string) => line.slice(word.length).replace(/^ /, "");
    if (line === resultWord.applied) return { kind: "applied" };
    if (line === resultWord.pending) return { kind: "pending" };
    if (line === resultWord.rolledBack || line.startsWith(`${resultWord.rolledBack} `)) return { kind: "rolled-back", why: rest(resultWord.rolledBack) };
    if (line === resultWord.rollbackIncomplete || line.startsWith(`${resultWord.rollbackIncomplete} `))
        return { kind: "rollback-incomplete", why: rest(resultWord.rollbackIncomplete) };
    if (line.startsWith(resultWord.aborted)) return { kind: "aborted", why: rest(resultWord.aborted) };
    return { kind: "unknown", text: line };
}

/** A read (with or without the lock): its lines, or why it failed. */
export type ReadOutcome = { kind: "read"; output: string; notes: string[] } | { kind: "aborted"; why: string } | { kind: "failed"; output: string };

export function parseReadResult(result: ScriptResult): ReadOutcome {
    if (result.code === 0) return { kind: "read", output: result.stdout, notes: notesIn(result.stdout) };
    const why = result.code === stepExit.state ? restAfter(result.stdout, marker.aborted) : undefined;
    if (why !== undefined) return { kind: "aborted", why: why.trim() };
    return { kind: "failed", output: result.stderr.trim() || result.stdout.trim() };
}

/** How a transaction script ended, as far as its own output says. */
export type TransactionOutcome =
    | { kind: "applied" }
    | { kind: "aborted"; why: string }
    | { kind: "rolled-back"; step: ApplyStep; output: string; reason?: StageReason }
    | { kind: "rollback-incomplete"; output: string }
    /** Not an end the script reports itself (a shell error, a signal, garbage): ask the host. */
    | { kind: "unexpected"; code: number; output: string };

export function parseTransactionResult(result: ScriptResult): TransactionOutcome {
    const output = toolOutput(`${result.stdout}${result.stderr}`);
    if (result.code === stepExit.state) {
        const why = restAfter(result.stdout, marker.aborted);
        if (why !== undefined) return { kind: "aborted", why: why.trim() };
    }
    if (result.code === stepExit.rollback) return { kind: "rollback-incomplete", output };
    const step = stepOfExit(result.code);
    if (result.code !== 0 && step && step !== "state" && has(result.stdout, marker.rolledBack)) {
        const reason = step === "stage" ? reasonIn(result.stdout) : undefined;
        return { kind: "rolled-back", step, output, ...(reason ? { reason } : {}) };
    }
    if (result.code === 0 && has(result.stdout, marker.applied)) return { kind: "applied" };
    return { kind: "unexpected", code: result.code, output };
}

/** How the confirm script ended. */
export type ConfirmOutcome =
    { kind: "confirmed" } | { kind: "expired"; ended: TransactionEnd } | { kind: "busy" } | { kind: "not-ready" } | { kind: "unexpected"; output: string };

export function parseConfirmResult(result: ScriptResult): ConfirmOutcome {
    if (result.code === 0 && has(result.stdout, marker.confirmed)) return { kind: "confirmed" };
    const expired = after(result.stdout, marker.expired);
    if (expired !== undefined) return { kind: "expired", ended: parseTransactionEnd(expired) };
    if (has(result.stdout, marker.busy)) return { kind: "busy" };
    if (has(result.stdout, marker.notReady)) return { kind: "not-ready" };
    return { kind: "unexpected", output: result.stdout.trim() || result.stderr.trim() };
}

/** How the rollback-now script ended. */
export type RollbackNowOutcome =
    | { kind: "rolled-back" }
    | { kind: "already-confirmed" }
    | { kind: "rollback-incomplete"; output: string }
    | { kind: "already-ended"; ended: TransactionEnd }
    | { kind: "unexpected"; output: string };

export function parseRollbackNowResult(result: ScriptResult): RollbackNowOutcome {
    if (has(result.stdout, marker.rolledBack)) return { kind: "rolled-back" };
    if (has(result.stdout, marker.alreadyConfirmed)) return { kind: "already-confirmed" };
    if (has(result.stdout, marker.rollbackIncomplete)) return { kind: "rollback-incomplete", output: toolOutput(result.stdout) };
    const ended = after(result.stdout, marker.alreadyEnded);
    if (ended !== undefined) return { kind: "already-ended", ended: parseTransactionEnd(ended) };
    return { kind: "unexpected", output: result.stdout.trim() || result.stderr.trim() };
}

/** What the status script says of a transaction. */
export type StatusOutcome = TransactionEnd | { kind: "none" } | { kind: "running" };

export function parseStatusResult(result: ScriptResult): StatusOutcome {
    const state = after(result.stdout, marker.status);
    if (state === undefined) return { kind: "unknown", text: statusWord.unknown };
    if (state === statusWord.none) return { kind: "none" };
    if (state === statusWord.running) return { kind: "running" };
    return parseTransactionEnd(state);
}

/** How the delete script ended. */
export type DeleteOutcome = { kind: "deleted"; notes: string[]; noOriginals: boolean } | { kind: "aborted"; why: string } | { kind: "failed"; output: string };

export function parseDeleteResult(result: ScriptResult): DeleteOutcome {
    if (result.code === 0 && has(result.stdout, marker.deleted))
        return { kind: "deleted", notes: notesIn(result.stdout), noOriginals: has(result.stdout, marker.noOriginals) };
    const why = result.code === stepExit.state ? restAfter(result.stdout, marker.aborted) : undefined;
    if (why !== undefined) return { kind: "aborted", why: why.trim() };
    return { kind: "failed", output: `${result.stdout}${result.stderr}`.trim() };
}
