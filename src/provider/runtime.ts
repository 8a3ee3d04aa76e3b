// What the dynamic provider does, as plain functions over plain data. The provider object the
// Pulumi engine serializes (host-provider.ts) only loads this module and calls it, so nothing
// here is ever captured in a closure: no schema, no SSH client, no secret.
import { randomUUID } from "node:crypto";
import type { OsFamily } from "../config/os";
import type { SecretKey } from "../config/schema";
import { applyHost, liveDigests, lockSecondsOf, readHost, sameFiles, type HostTarget } from "../apply/engine";
import { redact } from "../render/redact";
import { marker, parseDeleteResult } from "../apply/protocol";
import { desiredDigests, type ConcernPlan, type FileDigest } from "../render/artifact";
import { HostSession } from "../ssh/session";
import { deleteScript, STATE_DIR } from "../apply/scripts";
import { connectable, type PlainSession } from "../apply/target";

/** Bump when the shape of HostState changes; `upgradeState` reads every earlier shape. */
export const STATE_VERSION = 1;

export interface HostInputs {
    /** The connection without secrets (they travel in `secrets`). */
    session: PlainSession;
    os: OsFamily;
    confirmSeconds: number;
    renderedForOpenssh: string;
    plans: ConcernPlan[];
    /** Secret input: private key, passphrase, TLS key, knocking keys. */
    secrets: Partial<Record<SecretKey, string>>;
}

export interface HostState extends HostInputs {
    stateVersion: number;
    /** Digests of the files without secrets, per concern, as last seen on the host. */
    files: Record<string, FileDigest[]>;
    /** Digests of files that hold a secret (the TLS key): secret outputs. */
    secretFiles: Record<string, FileDigest[]>;
    /** Per concern: did its live check pass when last seen? */
    running: Record<string, boolean>;
}

/** How to reach the host; `previous` (the olds of an update) adds the knock the host still expects. */
function target(inputs: HostInputs, previous?: HostInputs): HostTarget {
    return {
        os: inputs.os,
        confirmSeconds: inputs.confirmSeconds,
        session: connectable(inputs.session, inputs.secrets, previous),
    };
}

function split(plans: ConcernPlan[], digests: (plan: ConcernPlan) => FileDigest[]): Pick<HostState, "files" | "secretFiles"> {
    const files: Record<string, FileDigest[]> = {};
    const secretFiles: Record<string, FileDigest[]> = {};
    for (const plan of plans) {
        const all = digests(plan);
        files[plan.concern] = all.filter((_, index) => !plan.artifacts[index].secret);
        secretFiles[plan.concern] = all.filter((_, index) => plan.artifacts[index].secret);
    }
    return { files, secretFiles };
}

/** State written by any earlier version, in today's shape. */
export function upgradeState(state: Partial<HostState>): HostState {
    const version = typeof state.stateVersion === "number" ? state.stateVersion : 0;
    if (version > STATE_VERSION)
        throw new Error(`this state was written by a newer mor-harden (state version ${version}; this one reads up to ${STATE_VERSION}): upgrade mor-harden`);
    // Version 0 (before versioning) kept every digest in `files`, secret or not, and no running state.
    return {
        ...(state as HostState),
        stateVersion: STATE_VERSION,
        files: state.files ?? {},
        secretFiles: state.secretFiles ?? {},
        running: state.running ?? {},
    };
}

function desiredState(inputs: HostInputs): HostState {
    return {
        ...inputs,
        stateVersion: STATE_VERSION,
        ...split(inputs.plans, (plan) => desiredDigests(plan, inputs.secrets)),
        running: Object.fromEntries(inputs.plans.map((plan) => [plan.concern, true])),
    };
}

/** Concerns the old state manages and the new inputs no longer do (Apache turned off, say). */
function droppedPlans(olds: HostState, news: HostInputs): ConcernPlan[] {
    return olds.plans.filter((old) => !news.plans.some((plan) => plan.concern === old.concern));
}

/** Concerns whose files or running state differ from what the inputs want, or that are no longer wanted. */
export function changedConcerns(olds: HostState, news: HostInputs): string[] {
    const desired = desiredState(news);
    const changed = news.plans
        .map((plan) => plan.concern)
        .filter((concern) => {
            const seen = [...(olds.files[concern] ?? []), ...(olds.secretFiles[concern] ?? [])];
            const wanted = [...desired.files[concern], ...desired.secretFiles[concern]];
            return !sameFiles(seen, wanted) || olds.running[concern] === false;
        });
    return [...changed, ...droppedPlans(olds, news).map((plan) => plan.concern)];
}

export async function create(inputs: HostInputs): Promise<{ id: string; outs: HostState }> {
    const id = `${inputs.session.hostKey}/${randomUUID()}`;
    await applyHost(target(inputs), inputs.plans, inputs.secrets, { renderedForOpenssh: inputs.renderedForOpenssh });
    await claimHost(inputs, id);
    return { id, outs: desiredState(inputs) };
}

export async function update(olds: HostState, inputs: HostInputs): Promise<HostState> {
    const previous = upgradeState(olds);
    await applyHost(target(inputs, previous), inputs.plans, inputs.secrets, { renderedForOpenssh: inputs.renderedForOpenssh });
    const dropped = droppedPlans(previous, inputs);
    if (dropped.length > 0) await restoreOriginals(target(inputs, previous), dropped, inputs.secrets);
    return desiredState(inputs);
}

/** What is live on the host, in the state's shape: what `pulumi refresh` records and `diff` compares. */
export async function read(props: HostState): Promise<HostState> {
    const state = upgradeState(props);
    const live = await readHost(target(state), state.plans);
    return { ...state, ...split(state.plans, (plan) => liveDigests(plan, live)), running: live.running };
}

/**
 * The resource that last created the host's hardening owns it. A replacement creates the new
 * resource first; the old one's delete then finds another owner and leaves the host alone, so
 * it never undoes what the new one applied.
 */
async function claimHost(inputs: HostInputs, id: string): Promise<void> {
    const session = await HostSession.connect(target(inputs).session);
    try {
        await session.run(`mkdir -p '${STATE_DIR}' && printf '%s\\n' '${id.replace(/'/g, "")}' > '${STATE_DIR}/owner'\n`);
    } finally {
        session.close();
    }
}

/** Puts back each concern's files and running state as they were before mor-harden first changed them (last applied first). */
async function restoreOriginals(host: HostTarget, plans: ConcernPlan[], secrets: Record<string, string | undefined>, session?: HostSession): Promise<void> {
    const connection = session ?? (await HostSession.connect(host.session));
    const lockSeconds = lockSecondsOf(host);
    try {
        for (const plan of [...plans].reverse()) {
            const result = await connection.run(deleteScript(plan, { lockSeconds }), host.session.commandTimeoutSeconds, {
                marker: marker.locked,
                waitSeconds: lockSeconds,
            });
            const deleted = parseDeleteResult(result);
            // A tool's message can quote a file it read (the TLS key): redacted like an apply's.
            if (deleted.kind !== "deleted")
                throw new Error(
                    `${connection.target.address}: restoring the originals of ${plan.concern} failed: ${redact(deleted.kind === "aborted" ? deleted.why : deleted.output, secrets)}`,
                );
        }
    } finally {
        if (!session) connection.close();
    }
}

export async function remove(id: string, props: HostState): Promise<void> {
    const state = upgradeState(props);
    const session = await HostSession.connect(target(state).session);
    try {
        const owner = (await session.run(`cat '${STATE_DIR}/owner' 2>/dev/null || true\n`)).stdout.trim();
        if (owner !== id) return;
        await restoreOriginals(target(state), state.plans, state.secrets, session);
        await session.run(`rm -f '${STATE_DIR}/owner'\n`);
    } finally {
        session.close();
    }
}
