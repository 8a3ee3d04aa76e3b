// Drift results as text for people, JSON and JUnit XML for CI systems.
import { hostLabel } from "../apply/hosts";
import type { DriftResult } from "./check";

export const driftExit = { clean: 0, drift: 1, error: 2 } as const;

/** 2 if any host could not be checked, else 1 if any drifted, else 0. */
export function exitCode(results: DriftResult[]): number {
    return Math.max(0, ...results.map((result) => driftExit[result.status]));
}

export function progressLine(result: DriftResult, index: number, total: number): string {
    const what = result.status === "clean" ? "no drift" : result.status === "drift" ? `DRIFT (${result.findings.length})` : `NOT CHECKED: ${result.reason}`;
    return `[${index}/${total}] ${hostLabel(result)}${result.address ? ` (${result.address})` : ""}: ${what} - ${result.roundTrips} round trip(s), ${result.seconds.toFixed(2)} s`;
}

export function textReport(results: DriftResult[]): string {
    const sections = results.map((result) => {
        const head = `== ${hostLabel(result)}${result.address ? ` (${result.address})` : ""}: ${result.status === "error" ? `could not check: ${result.reason}` : result.status === "drift" ? "drift" : "no drift"}`;
        const findings = result.findings.map((finding) => `-- ${finding.concern}: ${finding.subject}\n${finding.detail}`);
        const skipped = result.notChecked.length > 0 ? [`(not compared, their secret is not available here: ${result.notChecked.join(", ")})`] : [];
        return [head, ...findings, ...skipped].join("\n");
    });
    return sections.join("\n\n") + "\n";
}

const xml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function junitReport(results: DriftResult[]): string {
    const failures = results.filter((result) => result.status === "drift").length;
    const errors = results.filter((result) => result.status === "error").length;
    const cases = results.map((result) => {
        const name = xml(`${hostLabel(result)}${result.address ? ` (${result.address})` : ""}`);
        const body =
            result.status === "drift"
                ? `<failure message="drift in ${result.findings.length} place(s)">${xml(result.findings.map((f) => `${f.concern}: ${f.subject}\n${f.detail}`).join("\n\n"))}</failure>`
                : result.status === "error"
                  ? `<error message="${xml(result.reason ?? "could not check")}"/>`
                  : "";
        return `    <testcase classname="mor-harden.drift" name="${name}" time="${result.seconds.toFixed(3)}">${body}</testcase>`;
    });
    return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n  <testsuite name="mor-harden drift" tests="${results.length}" failures="${failures}" errors="${errors}">\n${cases.join("\n")}\n  </testsuite>\n</testsuites>\n`;
}
