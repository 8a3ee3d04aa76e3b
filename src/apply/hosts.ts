// Applying an environment: each host rendered and applied on its own, several at once. A host
// that cannot be tried (a name that does not resolve, no key, unreachable, a wrong host key, the
// lock held too long) or whose apply fails is reported, and the others go on.
import type { EnvironmentHost, HostOfEnvironment } from "../config/environment";
import type { Resolver } from "../config/resolve";
import type { SecretValues } from "../config/secrets";
import type { ConcernPlan } from "../render/artifact";
import { concernsOf, renderHost } from "../compose/host";
import type { RenderInput } from "../render/input";
import { prepareRenderInput } from "../render/prepare";
import { applyHost, ApplyError, type ApplyReport, type ChangeSlot } from "./engine";
import { hostIdentity, secondsSince } from "../render/report";
import { hostSecrets, reasonOf, runHostsChanging } from "./run-hosts";
import { hostTarget } from "./target";
import { HostSession } from "../ssh/session";

/** One host's secrets (files, its own variables, the shared ones), render input and plans, without Pulumi. */
export async function prepareHost(
    host: EnvironmentHost,
    resolver?: Resolver,
    secrets: SecretValues = hostSecrets(host),
): Promise<{ secrets: SecretValues; input: RenderInput; plans: ConcernPlan[] }> {
    const input = await prepareRenderInput(host.label, host.config, { resolver, source: host.source });
    return { secrets, input, plans: renderHost(input) };
}

/** done: every concern applied or unchanged; failed: one did not end applied; not-tried: nothing was changed. */
export type HostOutcome = "done" | "failed" | "not-tried";

export interface HostApplyResult {
    stack: string;
    /** The host's name; absent in the single-host form (the host is the stack). */
    host?: string;
    address: string;
    outcome: HostOutcome;
    /** The concerns the host's config manages, in apply order. */
    concerns: string[];
    report?: ApplyReport;
    /** Why the host was not tried. */
    reason?: string;
    seconds: number;
}

export async function applyEnvironmentHost(
    target: HostOfEnvironment,
    options: { resolver?: Resolver; changeSlot?: ChangeSlot } = {},
): Promise<HostApplyResult> {
    const started = process.hrtime.bigint();
    const { config } = target.host;
    const result = { ...hostIdentity(target), address: config.connection.address, concerns: concernsOf(config) };
    let secrets: SecretValues = {};
    let login: ReturnType<typeof HostSession.startLogin> | undefined;
    try {
        secrets = hostSecrets(target.host);
        const host = hostTarget(config, secrets);
        // Logged in while the host's plans are rendered (the engine reads the host first of all).
        login = HostSession.startLogin(host.session);
        const prepared = await prepareHost(target.host, options.resolver, secrets);
        const report = await applyHost(host, prepared.plans, secrets, {
            renderedForOpenssh: prepared.input.facts.openssh.join("."),
            session: login.take(),
            changeSlot: options.changeSlot,
        });
        return { ...result, outcome: "done", report, seconds: secondsSince(started) };
    } catch (error) {
        if (error instanceof ApplyError) return { ...result, outcome: "failed", report: error.report, seconds: secondsSince(started) };
        return { ...result, outcome: "not-tried", reason: reasonOf(error, secrets), seconds: secondsSince(started) };
    } finally {
        login?.discard();
    }
}

/**
 * Every host, at most `concurrency` changing at once (more are read at once: runHostsChanging);
 * `onResult` hears of each as it ends. Results in the hosts' order.
 */
export function applyHosts(
    targets: HostOfEnvironment[],
    options: { concurrency: number; resolver?: Resolver; onResult?: (result: HostApplyResult) => void },
): Promise<HostApplyResult[]> {
    return runHostsChanging(
        targets,
        options.concurrency,
        (target, changeSlot) => applyEnvironmentHost(target, { resolver: options.resolver, changeSlot }),
        options.onResult,
    );
}
