// Apply results as text (a line per host as it ends, each concern's details, a summary table)
// and as one JSON document.
import type { HostApplyResult, HostOutcome } from "./hosts";
import { hostLabel } from "../render/report";
import { EXIT, worstExit } from "./run-hosts";

/** The CLI's exit code for a host's outcome (a transaction step's exit codes are stepExit, in protocol.ts). */
export const hostExit: Record<HostOutcome, number> = { done: EXIT.ok, failed: EXIT.found, "not-tried": EXIT.notTried };

/** 2 if some host was not tried, else 1 if a concern did not end applied on some host, else 0. */
export function applyExitCode(results: HostApplyResult[]): number {
    return worstExit(results.map((result) => hostExit[result.outcome]));
}

function outcomeText(result: HostApplyResult): string {
    if (result.outcome === "not-tried") return `NOT TRIED: ${result.reason}`;
    const changed = result.report!.concerns.filter((concern) => concern.status === "applied").length;
    if (result.outcome === "done") return changed > 0 ? `done (${changed} applied)` : "done (no change)";
    const ended = result.report!.concerns.find((concern) => concern.status !== "applied" && concern.status !== "unchanged")!;
    return `FAILED: ${ended.concern} ${ended.status}`;
}

export function applyProgressLine(result: HostApplyResult, index: number, total: number): string {
    return `[${index}/${total}] ${hostLabel(result)} (${result.address}): ${outcomeText(result)} - ${result.seconds.toFixed(2)} s`;
}

/** Each concern's status, message and notes, host by host, as an operator reads them. */
export function applyDetails(results: HostApplyResult[]): string {
    const lines = results.flatMap((result) => {
        if (!result.report) return [`${hostLabel(result)} (${result.address}): not tried: ${result.reason}`];
        const { report } = result;
        return [
            ...report.concerns.flatMap((concern) => [
                `${hostLabel(result)} (${report.address}) ${concern.concern}: ${concern.status}${concern.message ? ` (${concern.message})` : ""}`,
                ...(concern.notes ?? []).map((note) => `  ${note}`),
            ]),
            `${hostLabel(result)} (${report.address}): ${report.roundTrips} round trips over ${report.connections} connection(s), ${report.bytes} bytes`,
        ];
    });
    return lines.join("\n") + "\n";
}

/** One row per host, one column per concern: its status, `not reached` after a failure, `-` when not managed. */
export function summaryTable(results: HostApplyResult[]): string {
    const concerns = [...new Set(results.flatMap((result) => result.concerns))];
    const cell = (result: HostApplyResult, concern: string) => {
        if (!result.concerns.includes(concern)) return "-";
        if (!result.report) return "not tried";
        return result.report.concerns.find((reported) => reported.concern === concern)?.status ?? "not reached";
    };
    const rows = [
        ["host", "address", ...concerns],
        ...results.map((result) => [hostLabel(result), result.address, ...concerns.map((concern) => cell(result, concern))]),
    ];
    const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
    return (
        rows
            .map((row) =>
                row
                    .map((text, column) => text.padEnd(widths[column]))
                    .join("  ")
                    .trimEnd(),
            )
            .join("\n") + "\n"
    );
}

export function applyJson(results: HostApplyResult[]): string {
    return JSON.stringify({ exitCode: applyExitCode(results), hosts: results });
}
