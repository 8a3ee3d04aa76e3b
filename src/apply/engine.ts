// Applies plans to one host over SSH: read what is live (one round trip), then one
// transaction per concern that differs, confirmed by a NEW login when the change could lock
// the operator out. Knows nothing of firewalls or jails: only artifacts and commands.
import { randomBytes } from "node:crypto";
import type { OsFamily } from "../config/os";
import { desiredDigests, fillSecrets, type ConcernPlan, type FileDigest } from "../render/artifact";
import { HostSession, type SessionTarget } from "../ssh/session";
import { applyScript, confirmScript, parseReadOutput, readScript, rollbackNowScript, stepOfExit, type FilledPlan, type LiveState } from "./scripts";

export type ConcernStatus = "unchanged" | "applied" | "failed" | "rolled-back";

export interface ConcernReport {
    concern: string;
    status: ConcernStatus;
    /** What failed, with the tool's own message (secrets redacted). */
    message?: string;
    files: FileDigest[];
}

export interface ApplyReport {
    address: string;
    concerns: ConcernReport[];
    roundTrips: number;
    connections: number;
    bytes: number;
}

export class ApplyError extends Error {
    constructor(readonly report: ApplyReport) {
        super(
            `${report.address}: ` +
                report.concerns
                    .filter((concern) => concern.status === "failed" || concern.status === "rolled-back")
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

export function liveDigests(plan: ConcernPlan, live: LiveState): FileDigest[] {
    return plan.artifacts.map((artifact) => {
        const file = live.files[artifact.path];
        return { path: artifact.path, sha256: file?.sha256 ?? "absent", mode: file?.mode ?? "absent", owner: file?.owner ?? "absent" };
    });
}

export function sameFiles(a: FileDigest[], b: FileDigest[]): boolean {
    return a.length === b.length && a.every((file, index) => JSON.stringify(file) === JSON.stringify(b[index]));
}

/** Tool output can quote what it read: never let a secret's text through. */
export function redact(text: string, secrets: Record<string, string | undefined>): string {
    let result = text;
    for (const value of Object.values(secrets)) {
        if (!value) continue;
        for (const line of value.split("\n").map((l) => l.trim()).filter((l) => l.length >= 8)) result = result.split(line).join("[redacted]");
    }
    return result;
}

function lastLines(text: string, count: number): string {
    const lines = text.split("\n");
    return lines.length <= count ? text : `...\n${lines.slice(-count).join("\n")}`;
}

function fill(plan: ConcernPlan, secrets: Record<string, string | undefined>): FilledPlan {
    return { ...plan, contents: plan.artifacts.map((artifact) => fillSecrets(artifact.content, secrets)) };
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
async function readLive(session: HostSession, target: HostTarget, plans: ConcernPlan[], secrets: Record<string, string | undefined>, options: { fillViewCache?: boolean } = {}): Promise<LiveState> {
    const result = await session.run(readScript(plans, target.os, options));
    if (result.code !== 0) throw new Error(`${target.session.address}: reading the host failed: ${redact(result.stderr, secrets).trim()}`);
    return parseReadOutput(result.stdout);
}

/** What is live on the host for these plans: one connection, one round trip. */
export async function readHost(target: HostTarget, plans: ConcernPlan[]): Promise<LiveState & { roundTrips: number }> {
    return withSession(target.session, async (session) => ({ ...(await readLive(session, target, plans, {})), roundTrips: session.roundTrips }));
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
 * and the error names it; concerns applied before it stay applied.
 */
export async function applyHost(target: HostTarget, plans: ConcernPlan[], secrets: Record<string, string | undefined>, options: { renderedForOpenssh?: string } = {}): Promise<ApplyReport> {
    const report: ApplyReport = { address: target.session.address, concerns: [], roundTrips: 0, connections: 1, bytes: 0 };
    const session = await HostSession.connect(target.session);
    try {
        const live = await readLive(session, target, plans, secrets, { fillViewCache: true });
        const factProblem = checkFacts(plans, live, options.renderedForOpenssh);
        if (factProblem) {
            report.concerns.push({ concern: "sshd", status: "failed", message: factProblem, files: liveDigests(plans.find((p) => p.concern === "sshd")!, live) });
            throw new ApplyError(report);
        }
        for (const plan of plans) {
            const desired = desiredDigests(plan, secrets);
            if (sameFiles(desired, liveDigests(plan, live)) && live.running[plan.concern]) {
                report.concerns.push({ concern: plan.concern, status: "unchanged", files: desired });
                continue;
            }
            const outcome = await applyConcern(session, target, plan, secrets, live.missingPackages[plan.concern] ?? [], report);
            report.concerns.push({ ...outcome, concern: plan.concern, files: outcome.status === "applied" ? desired : liveDigests(plan, live) });
            if (outcome.status !== "applied") throw new ApplyError(report);
        }
        return report;
    } finally {
        report.roundTrips += session.roundTrips;
        report.bytes += session.bytesSent + session.bytesReceived;
        session.close();
    }
}

async function applyConcern(
    session: HostSession,
    target: HostTarget,
    plan: ConcernPlan,
    secrets: Record<string, string | undefined>,
    missingPackages: string[],
    report: ApplyReport,
): Promise<{ status: ConcernStatus; message?: string }> {
    const txid = transactionId(plan.concern);
    const script = applyScript(fill(plan, secrets), { txid, os: target.os, installPackages: missingPackages, confirmSeconds: target.confirmSeconds });
    const result = await session.run(script);
    if (result.code !== 0) {
        const step = stepOfExit(result.code) ?? `exit ${result.code}`;
        const output = lastLines(redact(`${result.stdout}${result.stderr}`, secrets).replace(/^MORH-FAILED .*$/m, "").trim(), 12);
        return { status: "rolled-back", message: `${step} failed, files and running state restored: ${output || "(no output)"}` };
    }
    if (!plan.needsConfirm) return { status: "applied" };
    // The change could lock the operator out: only a NEW login proves it did not.
    report.connections++;
    try {
        const confirmed = await withSession(target.session, async (fresh) => {
            const outcome = await fresh.run(confirmScript(txid));
            report.roundTrips += fresh.roundTrips;
            return outcome;
        });
        if (confirmed.code === 0) return { status: "applied" };
        return { status: "rolled-back", message: `the host rolled the change back before it was confirmed (confirm timeout ${target.confirmSeconds} s)` };
    } catch (error) {
        const reason = (error as Error).message;
        try {
            await session.run(rollbackNowScript(txid), 60);
            return { status: "rolled-back", message: `a new SSH login failed after activation (${reason}); rolled back` };
        } catch {
            return { status: "rolled-back", message: `a new SSH login failed after activation (${reason}); the host rolls back by itself within ${target.confirmSeconds} s` };
        }
    }
}
