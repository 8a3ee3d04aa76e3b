// Audit results as text for people, JSON and JUnit XML for CI systems, and the exit code.
import { EXIT } from "../apply/run-hosts";
import { hostHeading, junitCase, junitDocument, junitSuite, xmlEscape } from "../render/report";
import { checkIds, checks, severities, severityRank, type Severity } from "./checks";
import type { AuditResult } from "./check";

/** 2 if a host could not be checked, else 1 if a finding is at or above `failOn`, else 0. */
export function auditExitCode(results: AuditResult[], failOn: Severity): number {
    if (results.some((result) => result.status === "error")) return EXIT.notTried;
    return results.some((result) => result.findings.some((finding) => failsAt(finding.severity, failOn))) ? EXIT.found : EXIT.ok;
}

/** Whether a finding of this severity fails the audit; info never does. */
export const failsAt = (severity: Severity, failOn: Severity) => severityRank[severity] > 0 && severityRank[severity] >= severityRank[failOn];

export function severityCounts(result: AuditResult): Record<Severity, number> {
    const counts = Object.fromEntries(severities.map((severity) => [severity, 0])) as Record<Severity, number>;
    for (const finding of result.findings) counts[finding.severity]++;
    return counts;
}

const countsText = (result: AuditResult) => severities.map((severity) => `${severityCounts(result)[severity]} ${severity}`).join(", ");
const nameOf = hostHeading;

export function auditProgressLine(result: AuditResult, index: number, total: number): string {
    const what = result.status === "error" ? `NOT CHECKED: ${result.reason}` : countsText(result);
    return `[${index}/${total}] ${nameOf(result)}: ${what} - ${result.roundTrips} round trip(s), ${result.seconds.toFixed(2)} s`;
}

export function auditTextReport(results: AuditResult[]): string {
    const sections = results.map((result) => {
        if (result.status === "error") return `== ${nameOf(result)}: could not check: ${result.reason}`;
        const findings = result.findings.map((finding) =>
            [
                `${finding.severity.toUpperCase()} ${finding.id}: ${finding.title}`,
                `  evidence: ${finding.evidence}`,
                `  guide: ${finding.section}, line ${finding.guide}`,
                `  fix: ${finding.fix}`,
            ].join("\n"),
        );
        return [`== ${nameOf(result)}: ${countsText(result)}`, ...findings].join("\n");
    });
    return sections.join("\n\n") + "\n";
}

export function auditJson(results: AuditResult[], failOn: Severity): string {
    return (
        JSON.stringify(
            { exitCode: auditExitCode(results, failOn), failOn, hosts: results.map((result) => ({ ...result, counts: severityCounts(result) })) },
            null,
            2,
        ) + "\n"
    );
}

/** A test suite per host, a test case per check: failed when it has findings at or above `failOn`. */
export function auditJunit(results: AuditResult[], failOn: Severity): string {
    const suites = results.map((result) => {
        const name = nameOf(result);
        if (result.status === "error") {
            return junitSuite(name, [junitCase("mor-harden.audit", "connection", `<error message="${xmlEscape(result.reason ?? "could not check")}"/>`)], {
                failures: 0,
                errors: 1,
            });
        }
        let failures = 0;
        const cases = checkIds.map((id) => {
            const found = result.findings.filter((finding) => finding.id === id);
            const failing = found.filter((finding) => failsAt(finding.severity, failOn));
            const text = xmlEscape(found.map((finding) => `${finding.severity}: ${finding.evidence}`).join("\n"));
            if (failing.length > 0) failures++;
            const body =
                failing.length > 0
                    ? `<failure message="${xmlEscape(`${checks[id].title} (${found.length})`)}">${text}\nfix: ${xmlEscape(checks[id].fix)}</failure>`
                    : found.length > 0
                      ? `<system-out>${text}</system-out>`
                      : "";
            return junitCase(`mor-harden.audit.${xmlEscape(name)}`, id, body);
        });
        return junitSuite(name, cases, { failures, errors: 0 });
    });
    return junitDocument(suites, "mor-harden audit");
}
