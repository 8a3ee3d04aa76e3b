// `mor-harden apply`: an environment's hosts applied directly, in parallel, with no Pulumi state.
import { applyHosts } from "../apply/hosts";
import { applyDetails, applyExitCode, applyJson, applyProgressLine, summaryTable } from "../apply/report";
import { concurrencyOf } from "./options";
import { staticResolver } from "./resolver";
import { stackTargets, targetHosts, type TargetOptions } from "./targets";

export interface ApplyOptions extends TargetOptions {
    concurrency: number;
    resolve: Record<string, string[]>;
    json?: boolean;
}

export async function applyCommand(options: ApplyOptions): Promise<void> {
    const hosts = targetHosts(stackTargets(options, { exactlyOne: true }), options.host);
    let done = 0;
    const results = await applyHosts(hosts, {
        concurrency: concurrencyOf(options.concurrency),
        resolver: staticResolver(options.resolve),
        onResult: (result) => console.error(applyProgressLine(result, ++done, hosts.length)),
    });
    process.stdout.write(options.json ? applyJson(results) + "\n" : `${applyDetails(results)}\n${summaryTable(results)}`);
    process.exitCode = applyExitCode(results);
}
