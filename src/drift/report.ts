// Drift results as text for people, JSON and JUnit XML for CI systems.
import { EXIT, worstExit } from "../apply/run-hosts";
import { hostHeading, junitCase, junitDocument, junitSuite, xmlEscape } from "../render/report";
import type { DriftResult } from "./check";

export const driftExit = { clean: EXIT.ok, drift: EXIT.found, error: EXIT.notTried } as const;

/** 2 if any host could not be checked, else 1 if any drifted, else 0. */
export function exitCode(results: DriftResult[]): number {
    return worstExit(results.map((result) => driftExit[result.status]));
}

export function progressLine(result: DriftResult, index: number, total: number): string {
    const what = result.status === "clean" ? "no drift" : result.status === "drift" ? `DRIFT (${result.findings.length})` : `NOT CHECKED: ${result.reason}`;
    return `[${index}/${total}] ${hostHeading(result)}: ${what} - ${result.roundTrips} round trip(s), ${result.seconds.toFixed(2)} s`;
}

export function textReport(results: DriftResult[]): string {
    const sections = results.map((result) => {
        const head = `== ${hostHeading(result)}: ${result.status === "error" ? `could not check: ${result.reason}` : result.status === "drift" ? "drift" : "no drift"}`;
        const findings = result.findings.map((finding) => `-- ${finding.concern}: ${finding.subject}\n${finding.detail}`);
        const skipped = result.notChecked.length > 0 ? [`(not compared, their secret is not available here: ${result.notChecked.join(", ")})`] : [];
        return [head, ...findings, ...skipped].join("\n");
    });
    return sections.join("\n\n") + "\n";
}

export function junitReport(results: DriftResult[]): string {
    const failures = results.filter((result) => result.status === "drift").length;
    const errors = results.filter((result) => result.status === "error").length;
    const cases = results.map((result) => {
        const body =
            result.status === "drift"
                ? `<failure message="drift in ${result.findings.length} place(s)">${xmlEscape(result.findings.map((f) => `${f.concern}: ${f.subject}\n${f.detail}`).join("\n\n"))}</failure>`
                : result.status === "error"
                  ? `<error message="${xmlEscape(result.reason ?? "could not check")}"/>`
                  : "";
        return junitCase("mor-harden.drift", xmlEscape(hostHeading(result)), body, result.seconds);
    });
    return junitDocument([junitSuite("mor-harden drift", cases, { failures, errors })]);
}
