// What `mor-harden drift` and `mor-harden audit` share: read-only checks over many stacks' hosts,
// a progress line on stderr as each host ends, a stack that cannot be read one result among them.
import { runHosts } from "../apply/run-hosts";
import type { HostOfEnvironment } from "../config/environment";
import { concurrencyOf } from "./options";
import { readableHosts, stackTargets, type StackTarget, type TargetOptions } from "./targets";

export interface FleetOptions extends TargetOptions {
    stack: string[];
    config: string[];
    concurrency: number;
    json?: boolean;
    junit?: string;
}

/** Every host of the named stacks checked, at most --concurrency at once; unreadable stacks first. */
export async function checkFleet<Result>(
    names: string[],
    options: FleetOptions,
    check: (host: HostOfEnvironment) => Promise<Result>,
    unreadable: (target: StackTarget, error: unknown) => Result,
    progress: (result: Result, index: number, total: number) => string,
): Promise<Result[]> {
    const targets = stackTargets(options, { names, missing: "name at least one stack (or --all)" });
    const concurrency = concurrencyOf(options.concurrency);
    const readable = readableHosts(targets, options.host);
    const unreadableResults = readable.unreadable.map(({ target, error }) => unreadable(target, error));
    const total = readable.hosts.length + unreadableResults.length;
    let done = 0;
    const report = (result: Result) => console.error(progress(result, ++done, total));
    unreadableResults.forEach(report);
    return [...unreadableResults, ...(await runHosts(readable.hosts, concurrency, check, report))];
}
