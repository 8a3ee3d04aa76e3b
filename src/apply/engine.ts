// Applies plans to one host over SSH: read what is live (one round trip), then one
// transaction per concern that differs, confirmed by a NEW login when the change could lock
// the operator out. Knows nothing of firewalls or jails: only artifacts and commands.
import { randomBytes } from "node:crypto";
import type { OsFamily } from "../config/os";
import { desiredDigests, fillSecrets, type ConcernPlan, type FileDigest } from "../render/artifact";
import { CommandInterruptedError, HostSession, type CommandResult, type SessionTarget } from "../ssh/session";
import { redact } from "../render/redact";
import { gzippedScript } from "../render/shell";
import { lineDelta, rememberContent } from "./bulk";
import { secondsSince } from "../render/report";
import {
    marker,
    notesIn,
    parseConfirmResult,
    parseReadResult,
    parseRollbackNowResult,
    parseStatusResult,
    parseTransactionResult,
    type StageReason,
    type StatusOutcome,
} from "./protocol";
import {
    applyScript,
    concernOfTransaction,
    confirmScript,
    parseReadOutput,
    readScript,
    rollbackNowScript,
    statusScript,
    type FilledPlan,
    type LiveState,
} from "./scripts";

/**
 * How a concern ended. `failed`: nothing of it is live (refused before anything moved, or its
 * rollback could not be completed: the message says what is live); `rolled-back`: it was
 * activated or written and is back as it was, checked; `unknown`: the connection was lost and
 * the outcome could not be learnt (the message says what the host does by itself).
 */
export type ConcernStatus = "unchanged" | "applied" | "failed" | "rolled-back" | "unknown";

export interface ConcernReport {
    concern: string;
    status: ConcernStatus;
    /** What failed, with the tool's own message (secrets redacted). */
    message?: string;
    /** What the transaction did beside its files (rules it replaced, stale transactions it rolled back). */
    notes?: string[];
    /** Why the plan's stage refused the change, as the stage said it (`MORH-REASON <kind> <why>`). */
    reason?: StageReason;
    files: FileDigest[];
    /** How long its transaction took, confirmation included (absent when it was unchanged). */
    seconds?: number;
}

export interface ApplyReport {
    address: string;
    concerns: ConcernReport[];
    /** What the host did before this apply's transactions: earlier transactions it had to end (rolled back, committed). */
    notes?: string[];
    roundTrips: number;
    connections: number;
    bytes: number;
}

export class ApplyError extends Error {
    constructor(readonly report: ApplyReport) {
        super(
            `${report.address}: ` +
                report.concerns
                    .filter((concern) => concern.status !== "unchanged" && concern.status !== "applied")
                    .map((concern) => `${concern.concern} ${concern.status}: ${concern.message}`)
                    .join("; "),
        );
        this.name = "ApplyError";
    }
}

export interface HostTarget {
    session: SessionTarget;
    os: OsFamily;
    /** Seconds before an unconfirmed change rolls itself back on the host. */
    confirmSeconds: number;
}

/**
 * How long a transaction waits for the host's lock: another operator's transaction runs for at
 * most a command's time and then waits at most the confirm time for its confirmation.
 */
export function lockSecondsOf(target: HostTarget): number {
    return target.session.commandTimeoutSeconds + target.confirmSeconds;
}

export function liveDigests(plan: ConcernPlan, live: LiveState): FileDigest[] {
    return plan.artifacts.map((artifact) => {
        const file = live.files[artifact.path];
        return { path: artifact.path, sha256: file?.sha256 ?? "absent", mode: file?.mode ?? "absent", owner: file?.owner ?? "absent" };
    });
}

export function sameFiles(a: FileDigest[], b: FileDigest[]): boolean {
    return a.length === b.length && a.every((file, index) => JSON.stringify(file) === JSON.stringify(b[index]));
}

function lastLines(text: string, count: number): string {
    const lines = text.split("\n");
    return lines.length <= count ? text : `...\n${lines.slice(-count).join("\n")}`;
}

/** The plan with secrets filled in; a large file as its changed lines when the host's version is known here. */
function fill(plan: ConcernPlan, secrets: Record<string, string | undefined>, live?: LiveState): FilledPlan {
    const contents = plan.artifacts.map((artifact) => fillSecrets(artifact.content, secrets));
    const deltas = plan.artifacts.map((artifact, index) => {
        if (!artifact.merge) return undefined;
        const delta = lineDelta(contents[index], live?.files[artifact.path]?.sha256);
        rememberContent(contents[index]);
        return delta;
    });
    return { ...plan, contents, ...(deltas.some(Boolean) ? { deltas } : {}) };
}

function transactionId(concern: string): string {
    return `${new Date().toISOString().replace(/[-:.TZ]/g, "")}-${concern}-${randomBytes(4).toString("hex")}`;
}

async function withSession<T>(target: SessionTarget, work: (session: HostSession) => Promise<T>): Promise<T> {
    const session = await HostSession.connect(target);
    try {
        return await work(session);
    } finally {
        session.close();
    }
}

/** One round trip: what is live on the host for these plans. */
async function readLive(
    session: HostSession,
    target: HostTarget,
    plans: ConcernPlan[],
    secrets: Record<string, string | undefined>,
    options: { fillViewCache?: boolean; lockSeconds?: number } = {},
): Promise<LiveState & { notes: string[] }> {
    const lock = options.lockSeconds !== undefined ? { marker: marker.locked, waitSeconds: options.lockSeconds } : undefined;
    const read = parseReadResult(await session.run(gzippedScript(readScript(plans, target.os, options)), target.session.commandTimeoutSeconds, lock));
    if (read.kind !== "read")
        throw new Error(`${target.session.address}: reading the host failed: ${redact(read.kind === "aborted" ? read.why : read.output, secrets).trim()}`);
    return { ...parseReadOutput(read.output), notes: read.notes };
}

/**
 * What is live on the host for these plans: one connection, one round trip, nothing written. A
 * concern with a transaction waiting for its confirmation is not live as configured: what runs
 * may still be rolled back, so it is never reported as settled.
 */
export async function readHost(target: HostTarget, plans: ConcernPlan[]): Promise<LiveState & { roundTrips: number }> {
    return withSession(target.session, async (session) => {
        const live = await readLive(session, target, plans, {});
        for (const { txid } of live.pending) live.running[concernOfTransaction(txid)] = false;
        return { ...live, roundTrips: session.roundTrips };
    });
}

function checkFacts(plans: ConcernPlan[], live: LiveState, renderedFor: string | undefined): string | undefined {
    if (!renderedFor || !live.openssh || !plans.some((plan) => plan.concern === "sshd")) return undefined;
    const [major, minor] = live.openssh.split(".").map(Number);
    const [wantMajor, wantMinor] = renderedFor.split(".").map(Number);
    if (major < wantMajor || (major === wantMajor && minor < wantMinor)) {
        return `the sshd drop-in was rendered for OpenSSH ${renderedFor} but the host runs ${live.openssh}: set mor-harden:host.openssh to "${live.openssh}"`;
    }
    return undefined;
}

/**
 * Applies the plans in order. A concern whose files and running state already match is not
 * touched (no write, no reload). The first failure stops the run: that concern is rolled back
 * and the error names it; concerns applied before it stay applied. `options.session`: a login
 * already under way (HostSession.startLogin) for the first connection, instead of a new one.
 */
export async function applyHost(
    target: HostTarget,
    plans: ConcernPlan[],
    secrets: Record<string, string | undefined>,
    options: { renderedForOpenssh?: string; session?: Promise<HostSession>; changeSlot?: ChangeSlot } = {},
): Promise<ApplyReport> {
    const report: ApplyReport = { address: target.session.address, concerns: [], roundTrips: 0, connections: 1, bytes: 0 };
    let session = await (options.session ?? HostSession.connect(target.session));
    const count = (used: HostSession) => {
        report.roundTrips += used.roundTrips;
        report.bytes += used.bytesSent + used.bytesReceived;
    };
    try {
        // Waits out another operator's transaction first: what it reads is not about to be rolled back.
        const live = await readLive(session, target, plans, secrets, { fillViewCache: true, lockSeconds: lockSecondsOf(target) });
        if (live.notes.length > 0) report.notes = live.notes;
        const factProblem = checkFacts(plans, live, options.renderedForOpenssh);
        if (factProblem) {
            report.concerns.push({
                concern: "sshd",
                status: "failed",
                message: factProblem,
                files: liveDigests(
                    plans.find((p) => p.concern === "sshd")!,
                    live,
                ),
            });
            throw new ApplyError(report);
        }
        // Each plan's desired digests once (a blocklist's file is 100,000 lines to hash).
        const desiredOf = new Map(plans.map((plan) => [plan, desiredDigests(plan, secrets)]));
        const unchanged = (plan: ConcernPlan) => sameFiles(desiredOf.get(plan)!, liveDigests(plan, live)) && live.running[plan.concern];
        // The transactions wait for one of the apply's change slots (the hosts read at once are
        // more than those changed at once); a host with nothing to change needs none.
        const inSlot = plans.every(unchanged) || !options.changeSlot ? <T>(work: () => Promise<T>) => work() : options.changeSlot;
        await inSlot(async () => {
            for (const plan of plans) {
                const desired = desiredOf.get(plan)!;
                if (unchanged(plan)) {
                    report.concerns.push({ concern: plan.concern, status: "unchanged", files: desired });
                    continue;
                }
                if (session.isClosed) {
                    // Lost during an earlier concern (whose end was learnt over another connection).
                    count(session);
                    try {
                        session = await HostSession.connectPatiently(target.session);
                    } catch (error) {
                        report.concerns.push({
                            concern: plan.concern,
                            status: "failed",
                            message: `not tried: the connection was lost and a new one failed (${(error as Error).message})`,
                            files: liveDigests(plan, live),
                        });
                        throw new ApplyError(report);
                    }
                    report.connections++;
                }
                const started = process.hrtime.bigint();
                const { notes = [], ...outcome } = await applyConcern(session, target, plan, secrets, live, report);
                report.concerns.push({
                    ...outcome,
                    concern: plan.concern,
                    ...(notes.length > 0 ? { notes } : {}),
                    files: outcome.status === "applied" ? desired : liveDigests(plan, live),
                    seconds: secondsSince(started),
                });
                if (outcome.status !== "applied") throw new ApplyError(report);
            }
        });
        return report;
    } finally {
        count(session);
        session.close();
    }
}

/** Runs `work` holding one of an apply's change slots (runHostsChanging in ./run-hosts). */
export type ChangeSlot = <T>(work: () => Promise<T>) => Promise<T>;

type Outcome = { status: ConcernStatus; message?: string; notes?: string[]; reason?: StageReason };

async function applyConcern(
    session: HostSession,
    target: HostTarget,
    plan: ConcernPlan,
    secrets: Record<string, string | undefined>,
    live: LiveState,
    report: ApplyReport,
): Promise<Outcome> {
    const missingPackages = live.missingPackages[plan.concern] ?? [];
    const txid = transactionId(plan.concern);
    const lockSeconds = lockSecondsOf(target);
    const script = applyScript(fill(plan, secrets, live), {
        txid,
        os: target.os,
        installPackages: missingPackages,
        confirmSeconds: target.confirmSeconds,
        lockSeconds,
    });
    let result;
    try {
        result = await session.run(script, target.session.commandTimeoutSeconds, { marker: marker.locked, waitSeconds: lockSeconds });
    } catch (error) {
        if (!(error instanceof CommandInterruptedError)) throw error;
        return settleOverNewConnection(target, plan, txid, error.message, report);
    }
    const output = (text: string) => lastLines(redact(text, secrets), 12) || "(no output)";
    const notes = notesIn(result.stdout);
    const outcome = parseTransactionResult(result);
    switch (outcome.kind) {
        case "aborted":
            return { status: "failed", notes, message: `nothing was changed: ${redact(outcome.why, secrets)}` };
        case "rollback-incomplete":
            return { status: "failed", notes, message: `the change failed and its rollback is incomplete; what is live: ${output(outcome.output)}` };
        case "rolled-back":
            // A stage runs before anything moves: nothing of the change is live, what ran before still does.
            if (outcome.step === "stage") {
                const reason = outcome.reason && { kind: outcome.reason.kind, why: redact(outcome.reason.why, secrets) };
                return {
                    status: "failed",
                    notes,
                    ...(reason ? { reason } : {}),
                    message: `refused before anything moved: ${reason ? `${reason.kind}: ${reason.why}` : output(outcome.output)}`,
                };
            }
            return { status: "rolled-back", notes, message: `${outcome.step} failed, files and running state restored and checked: ${output(outcome.output)}` };
        case "unexpected": {
            // Not an end the script reports itself (a shell error, a signal): ask the host how it ended.
            const why = `the transaction script ended unexpectedly (exit ${outcome.code}: ${output(outcome.output)})`;
            return { ...(await settleOverNewConnection(target, plan, txid, why, report)), notes };
        }
        case "applied":
            break;
    }
    if (!plan.needsConfirm) return { status: "applied", notes };
    return { ...(await confirm(session, target, plan, txid, report)), notes };
}

/** The change could lock the operator out: only a NEW login proves it did not. */
async function confirm(session: HostSession, target: HostTarget, plan: ConcernPlan, txid: string, report: ApplyReport): Promise<Outcome> {
    report.connections++;
    let fresh: HostSession;
    try {
        // A refused connection is retried briefly: sshd may be restarting.
        fresh = await HostSession.connectPatiently(target.session, 10);
    } catch (error) {
        const reason = (error as Error).message;
        try {
            const now = await session.run(rollbackNowScript(txid), 180);
            return outcomeOfRollbackNow(now, `a new SSH login failed after activation (${reason})`, target);
        } catch {
            return {
                status: "unknown",
                message: `a new SSH login failed after activation (${reason}) and the first connection is gone: the host rolls the change back by itself within ${target.confirmSeconds} s of its activation`,
            };
        }
    }
    try {
        const result = await fresh.run(confirmScript(txid));
        report.roundTrips += fresh.roundTrips;
        const confirmed = parseConfirmResult(result);
        if (confirmed.kind === "confirmed") return { status: "applied" };
        if (confirmed.kind === "expired" && confirmed.ended.kind === "rolled-back")
            return { status: "rolled-back", message: `the host rolled the change back before it was confirmed (confirm timeout ${target.confirmSeconds} s)` };
        return settleOverNewConnection(target, plan, txid, `the confirmation was refused (${result.stdout.trim() || result.stderr.trim()})`, report);
    } catch (error) {
        // The confirmation may have been done with its reply lost: ask.
        return settleOverNewConnection(target, plan, txid, `the confirmation did not answer (${(error as Error).message})`, report);
    } finally {
        fresh.close();
    }
}

function outcomeOfRollbackNow(result: CommandResult, why: string, target: HostTarget): Outcome {
    const now = parseRollbackNowResult(result);
    switch (now.kind) {
        case "rolled-back":
            return { status: "rolled-back", message: `${why}; rolled back` };
        case "already-confirmed":
            return { status: "applied", message: `${why}, but the change had been confirmed` };
        case "rollback-incomplete":
            return { status: "failed", message: `${why}; the rollback is incomplete: ${lastLines(now.output, 12)}` };
        case "already-ended":
            if (now.ended.kind === "rolled-back")
                return { status: "rolled-back", message: `${why}; the host had rolled it back (confirm timeout ${target.confirmSeconds} s)` };
            return { status: "failed", message: `${why}; the transaction ended as: ${describeEnd(now.ended) || "(unknown)"}` };
        case "unexpected":
            return { status: "failed", message: `${why}; the transaction ended as: (unknown)` };
    }
}

/** A transaction's end as the host wrote it (`rolled-back <why>`), for messages. */
function describeEnd(end: StatusOutcome): string {
    switch (end.kind) {
        case "rolled-back":
        case "rollback-incomplete":
            return `${end.kind}${end.why ? ` ${end.why}` : ""}`;
        case "aborted":
            return `aborted: ${end.why}`;
        case "unknown":
            return end.text;
        default:
            return end.kind;
    }
}

/**
 * The connection was lost (or a command timed out) while a transaction ran: its script goes on
 * on the host. Asks over new connections how it ended, for a bounded time; a transaction waiting
 * for its confirmation is confirmed by that new login itself.
 */
async function settleOverNewConnection(target: HostTarget, plan: ConcernPlan, txid: string, why: string, report: ApplyReport): Promise<Outcome> {
    const deadline = Date.now() + (target.confirmSeconds + 30) * 1000;
    let lastError = "";
    while (Date.now() < deadline) {
        report.connections++;
        try {
            const status = await withSession(target.session, async (fresh): Promise<StatusOutcome> => {
                const state = parseStatusResult(await fresh.run(statusScript(txid), 30));
                report.roundTrips += fresh.roundTrips;
                if (state.kind !== "pending") return state;
                // Verified and waiting: this new login is the proof the confirmation wants.
                const confirmed = parseConfirmResult(await fresh.run(confirmScript(txid), 90));
                if (confirmed.kind === "confirmed") return { kind: "applied" };
                return confirmed.kind === "expired" ? confirmed.ended : { kind: "running" };
            });
            switch (status.kind) {
                case "applied":
                    return { status: "applied", message: `${why}; the transaction completed on the host` };
                case "rolled-back":
                    return { status: "rolled-back", message: `${why}; the host rolled the change back (${status.why || "failed step"})` };
                case "rollback-incomplete":
                    return { status: "failed", message: `${why}; the host's rollback is incomplete (see ${txid} on the host)` };
                case "aborted":
                    return { status: "failed", message: `${why}; nothing was changed: ${status.why}` };
                case "none":
                    return { status: "failed", message: `${why}; the transaction never started: nothing was changed` };
            }
            lastError = `the transaction is still ${describeEnd(status)}`;
        } catch (error) {
            lastError = (error as Error).message;
        }
        await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    const byItself = plan.needsConfirm
        ? `unless confirmed, the host rolls the change back by itself within ${target.confirmSeconds} s of its activation`
        : "the transaction finishes on the host by itself, applied or rolled back";
    return { status: "unknown", message: `${why}; its outcome could not be learnt (${lastError}): ${byItself}` };
}
