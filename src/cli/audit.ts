// `mor-harden audit`: where each host stands against Kolmisoft's guide, read-only.
import { writeFileSync } from "node:fs";
import { auditHost, unreadableStackAudit } from "../audit/check";
import type { Severity } from "../audit/checks";
import { auditHtml } from "../audit/html";
import { auditExitCode, auditJson, auditJunit, auditProgressLine, auditTextReport } from "../audit/report";
import { checkFleet, type FleetOptions } from "./fleet";

export interface AuditOptions extends FleetOptions {
    html?: string;
    failOn: Severity;
}

export async function auditCommand(names: string[], options: AuditOptions): Promise<void> {
    const results = await checkFleet(names, options, auditHost, unreadableStackAudit, auditProgressLine);
    if (options.junit) writeFileSync(options.junit, auditJunit(results, options.failOn));
    if (options.html) writeFileSync(options.html, auditHtml(results, new Date()));
    process.stdout.write(options.json ? auditJson(results, options.failOn) : auditTextReport(results));
    process.exitCode = auditExitCode(results, options.failOn);
}
