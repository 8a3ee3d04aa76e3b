// `mor-harden drift`: hosts compared with their stacks, read-only; exit 0 no drift, 1 drift, 2 could not check.
import { writeFileSync } from "node:fs";
import { checkHost, unreadableStack } from "../drift/check";
import { exitCode, junitReport, progressLine, textReport } from "../drift/report";
import { checkFleet, type FleetOptions } from "./fleet";
import { staticResolver } from "./resolver";

export interface DriftOptions extends FleetOptions {
    resolve: Record<string, string[]>;
}

export async function driftCommand(names: string[], options: DriftOptions): Promise<void> {
    const resolver = staticResolver(options.resolve);
    const results = await checkFleet(names, options, (host) => checkHost(host, { resolver }), unreadableStack, progressLine);
    if (options.junit) writeFileSync(options.junit, junitReport(results));
    process.stdout.write(options.json ? JSON.stringify(results, null, 2) + "\n" : textReport(results));
    process.exitCode = exitCode(results);
}
