// Checks hosts for drift: render (while logging in), one SSH connection, one read-only round trip, compare.
import { prepareHost } from "../apply/hosts";
import { hostSecrets, reasonOf } from "../apply/run-hosts";
import { hostTarget } from "../apply/target";
import { HostSession } from "../ssh/session";
import { hostIdentity, secondsSince } from "../render/report";
import type { HostOfEnvironment } from "../config/environment";
import type { Resolver } from "../config/resolve";
import { fillSecrets, sha256Hex } from "../render/artifact";
import { compareHost, type Finding } from "./compare";
import { driftScript, parseDriftOutput } from "./scripts";
import { gzippedScript } from "../render/shell";

export interface DriftResult {
    stack: string;
    /** The host's name; absent in the single-host form (the host is the stack) and for a stack that could not be read. */
    host?: string;
    address?: string;
    /** clean: matches; drift: differs (findings); error: could not check (reason). */
    status: "clean" | "drift" | "error";
    findings: Finding[];
    reason?: string;
    /** Contents not compared because a secret they hold is not available here. */
    notChecked: string[];
    roundTrips: number;
    seconds: number;
}

/** A stack that could not be read or validated: one result standing for all its hosts. */
export function unreadableStack(target: { stack?: string; file?: string }, error: unknown): DriftResult {
    return { stack: target.stack ?? target.file ?? "?", status: "error", reason: reasonOf(error), findings: [], notChecked: [], roundTrips: 0, seconds: 0 };
}

/** One host of an environment: render while logging in, one SSH connection, one read-only round trip, compare. */
export async function checkHost(target: HostOfEnvironment, options: { resolver?: Resolver } = {}): Promise<DriftResult> {
    const started = process.hrtime.bigint();
    const result: DriftResult = {
        ...hostIdentity(target),
        address: target.host.config.connection.address,
        status: "error",
        findings: [],
        notChecked: [],
        roundTrips: 0,
        seconds: 0,
    };
    let secrets: Record<string, string | undefined> = {};
    let login: ReturnType<typeof HostSession.startLogin> | undefined;
    try {
        secrets = hostSecrets(target.host);
        // Logged in while the host's plans are rendered and their digests computed.
        login = HostSession.startLogin(hostTarget(target.host.config, secrets).session);
        const { plans } = await prepareHost(target.host, options.resolver, secrets);
        const desired: Record<string, (string | undefined)[]> = {};
        for (const plan of plans) {
            desired[plan.concern] = plan.artifacts.map((artifact) => {
                try {
                    return fillSecrets(artifact.content, secrets);
                } catch {
                    result.notChecked.push(artifact.path);
                    return undefined;
                }
            });
        }
        // The desired digests: the host sends back only the files that differ.
        const digests = Object.fromEntries(
            plans.flatMap((plan) =>
                plan.artifacts.map((artifact, index) => [
                    artifact.path,
                    desired[plan.concern][index] === undefined ? undefined : sha256Hex(desired[plan.concern][index]!),
                ]),
            ),
        );
        const session = await login.take();
        let output: Awaited<ReturnType<HostSession["run"]>>;
        try {
            output = await session.run(gzippedScript(driftScript(plans, digests)));
        } finally {
            result.roundTrips = session.roundTrips;
            session.close();
        }
        if (output.code !== 0) throw new Error(`the read-only check failed on the host: ${output.stderr.trim() || output.stdout.trim()}`);
        result.findings = compareHost(plans, desired, parseDriftOutput(output.stdout));
        result.status = result.findings.length > 0 ? "drift" : "clean";
    } catch (error) {
        result.status = "error";
        result.reason = reasonOf(error, secrets);
    } finally {
        login?.discard();
    }
    result.seconds = secondsSince(started);
    return result;
}
