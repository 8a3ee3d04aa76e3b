// Checks one stack's host for drift: render, one SSH connection, one read-only round trip, compare.
import { hostTarget } from "../apply/target";
import { loadStackConfig } from "../config/stack-file";
import { ConfigError } from "../config/schema";
import { secretsWithoutPulumi } from "../config/secrets";
import type { Resolver } from "../config/resolve";
import { fillSecrets } from "../render/artifact";
import { renderHost } from "../render/host";
import { prepareRenderInput } from "../render/prepare";
import { HostSession } from "../ssh/session";
import { redact } from "../apply/engine";
import { compareHost, type Finding } from "./compare";
import { driftScript, parseDriftOutput } from "./scripts";

export interface DriftResult {
    stack: string;
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

export async function checkStack(target: { stack?: string; file?: string }, options: { resolver?: Resolver; projectDir?: string } = {}): Promise<DriftResult> {
    const started = process.hrtime.bigint();
    const result: DriftResult = { stack: target.stack ?? target.file ?? "?", status: "error", findings: [], notChecked: [], roundTrips: 0, seconds: 0 };
    let secrets: Record<string, string | undefined> = {};
    try {
        const loaded = loadStackConfig(target, options.projectDir);
        result.stack = loaded.name;
        result.address = loaded.config.connection.address;
        secrets = secretsWithoutPulumi(loaded.config, loaded.source);
        const input = await prepareRenderInput(loaded.name, loaded.config, { resolver: options.resolver, source: loaded.source });
        const plans = renderHost(input);
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
        const session = await HostSession.connect(hostTarget(loaded.config, secrets).session);
        try {
            const output = await session.run(driftScript(plans));
            if (output.code !== 0) throw new Error(`the read-only check failed on the host: ${output.stderr.trim() || output.stdout.trim()}`);
            result.findings = compareHost(plans, desired, parseDriftOutput(output.stdout));
            result.status = result.findings.length > 0 ? "drift" : "clean";
        } finally {
            result.roundTrips = session.roundTrips;
            session.close();
        }
    } catch (error) {
        result.status = "error";
        result.reason = redact(error instanceof ConfigError ? error.message.replace(/\n\s*/g, " ") : (error as Error).message, secrets);
    }
    result.seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return result;
}
