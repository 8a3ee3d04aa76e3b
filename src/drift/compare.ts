// What differs between the rendered plans and what a host showed: unified diffs of files and
// live views, and services that are not running as configured. Pure.
import { sha256Hex, type ConcernPlan } from "../render/artifact";
import { concernOfTransaction } from "../apply/scripts";
import type { DriftRead } from "./scripts";

export interface Finding {
    concern: string;
    /** What differs: a file path, a live view's name, or "service". */
    subject: string;
    /** A unified diff (desired -> live), or a sentence when there is nothing to diff. */
    detail: string;
}

function patch(name: string, desired: string, live: string): string {
    // diff is loaded only when there is drift to show (a clean check never needs it).
    const { createTwoFilesPatch } = require("diff") as typeof import("diff");
    return createTwoFilesPatch(`${name} (desired)`, `${name} (live)`, desired, live, undefined, undefined, { context: 2 })
        .split("\n")
        .filter((line) => !/^=+$/.test(line) && !line.startsWith("Index: "))
        .join("\n")
        .trim();
}

/**
 * `desired[concern][i]` is the content artifact i must have (secrets filled in: only hashed
 * here), or undefined when a secret it needs is not available to this check (not compared).
 */
export function compareHost(plans: ConcernPlan[], desired: Record<string, (string | undefined)[]>, read: DriftRead): Finding[] {
    const findings: Finding[] = [];
    for (const plan of plans) {
        plan.artifacts.forEach((artifact, index) => {
            const want = desired[plan.concern][index];
            const live = read.files[artifact.path];
            const finding = (detail: string) => findings.push({ concern: plan.concern, subject: artifact.path, detail });
            if (!live) {
                finding("missing on the host");
                return;
            }
            if (want !== undefined && live.sha256 !== sha256Hex(want)) {
                finding(
                    artifact.bulk
                        ? "content differs (a large list: compared by digest, not shown)"
                        : artifact.secret || live.content === undefined
                          ? "content differs (a secret: not shown)"
                          : patch(artifact.path, want, live.content),
                );
            }
            if (live.mode !== artifact.mode) finding(`mode ${live.mode}, expected ${artifact.mode}`);
            if (live.owner !== `${artifact.owner}:${artifact.group}`) finding(`owner ${live.owner}, expected ${artifact.owner}:${artifact.group}`);
        });
        plan.liveViews.forEach((view, index) => {
            const seen = read.views[`${plan.concern}/${index}`];
            const expected = "text" in view.expected ? view.expected.text : seen?.expected;
            if (!seen || expected === undefined) findings.push({ concern: plan.concern, subject: view.name, detail: "could not be read" });
            else if (seen.live.trim() !== expected.trim())
                findings.push({ concern: plan.concern, subject: view.name, detail: patch(view.name, expected.trim() + "\n", seen.live.trim() + "\n") });
        });
        // What runs may still be rolled back: never reported as settled.
        for (const { txid, deadline } of read.pending.filter((pending) => concernOfTransaction(pending.txid) === plan.concern)) {
            findings.push({
                concern: plan.concern,
                subject: "transaction",
                detail: `${txid} is waiting for its confirmation until ${new Date(deadline * 1000).toISOString()}: what is live may still be rolled back`,
            });
        }
        const service = read.services[plan.concern];
        if (!service?.ok)
            findings.push({ concern: plan.concern, subject: "service", detail: `not running as configured${service?.output ? `: ${service.output}` : ""}` });
    }
    return findings;
}
