// The one way every command that goes to hosts runs (apply, drift, audit, bans, unban): each host
// on its own, at most `concurrency` at once, its secrets loaded here, its time measured, whatever
// stops it turned into one reason (secrets redacted), a report per host, and the exit-code table.
import pLimit from "p-limit";
import type { EnvironmentHost, HostOfEnvironment } from "../config/environment";
import { ConfigError } from "../config/schema";
import { secretsWithoutPulumi, type SecretValues } from "../config/secrets";
import { redact } from "../render/redact";
import { HostSession } from "../ssh/session";
import type { ChangeSlot } from "./engine";
import { hostTarget } from "./target";

/**
 * Exit codes, as the README documents them for each command: 0 nothing to report, 1 what the
 * command looks for was found (drift, findings, a failed apply or ban operation), 2 could not even
 * start or a host could not be tried (bad config, bad arguments, unreachable, for apply, drift, audit).
 */
export const EXIT = { ok: 0, found: 1, notTried: 2 } as const;

/** The highest code of the hosts' (0 when there is none). */
export const worstExit = (codes: number[]) => Math.max(EXIT.ok, ...codes);

/** What stopped a host, in one line a person reads: a config error's lines joined, no secret's text. */
export function reasonOf(error: unknown, secrets: Record<string, string | undefined> = {}): string {
    const message = error instanceof ConfigError ? error.message.replace(/\n\s*/g, " ") : (error as Error).message;
    return redact(message, secrets);
}

/** A host's secrets without Pulumi (files, its own variables, the shared ones). */
export const hostSecrets = (host: EnvironmentHost): SecretValues => secretsWithoutPulumi(host.config, host.source, process.env, host.name);

/**
 * Runs `work` in one SSH session to the host (knock, key and host key from its config and
 * secrets), closing it however `work` ends; `onClose` hears the session's round trips.
 */
export async function withSession<T>(
    target: HostOfEnvironment,
    secrets: SecretValues,
    work: (session: HostSession) => Promise<T>,
    onClose?: (session: HostSession) => void,
): Promise<T> {
    const session = await HostSession.connect(hostTarget(target.host.config, secrets).session);
    try {
        return await work(session);
    } finally {
        onClose?.(session);
        session.close();
    }
}

/** Every host, at most `concurrency` at once; `onResult` hears of each as it ends. Results in the hosts' order. */
export function runHosts<Result>(
    targets: HostOfEnvironment[],
    concurrency: number,
    runOne: (target: HostOfEnvironment) => Promise<Result>,
    onResult?: (result: Result) => void,
): Promise<Result[]> {
    const limit = pLimit(concurrency);
    return Promise.all(
        targets.map((target) =>
            limit(async () => {
                const result = await runOne(target);
                onResult?.(result);
                return result;
            }),
        ),
    );
}

/**
 * How many hosts an apply reads at once, whatever its --concurrency: a host's login and read
 * change nothing, and a no-change apply is all read (over a 100 ms link 50 hosts at 10 at once
 * took five rounds, 1.8x of 50 `ssh true`; drift reads 25 at once by default).
 */
export const APPLY_READS_AT_ONCE = 25;

/**
 * An apply's hosts: at most max(`changes`, APPLY_READS_AT_ONCE) logged in and read at once, and at
 * most `changes` changing at once (`runOne` runs its transactions inside the ChangeSlot it is
 * given), so --concurrency still bounds how many hosts a wrong change reaches before the first
 * report. Results in the hosts' order.
 */
export function runHostsChanging<Result>(
    targets: HostOfEnvironment[],
    changes: number,
    runOne: (target: HostOfEnvironment, changeSlot: ChangeSlot) => Promise<Result>,
    onResult?: (result: Result) => void,
): Promise<Result[]> {
    const changeLimit = pLimit(changes);
    const changeSlot: ChangeSlot = (work) => changeLimit(work);
    return runHosts(targets, Math.max(changes, APPLY_READS_AT_ONCE), (target) => runOne(target, changeSlot), onResult);
}
