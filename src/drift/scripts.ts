// The one read-only script a drift check runs on a host, and the parser of what it prints.
// It writes nothing: it reads the managed files, prints live views (a scratch network
// namespace formats the desired ruleset with the host's own iptables, unless the form cached by
// the last apply already equals the live one), and runs the checks.
import { backgroundLast, END_BACKGROUND_VIEWS, expectedOfView, liveOfView, PENDING_LINES, startBackgroundViews } from "../apply/scripts";
import { readsAtOnce, wholeScript } from "../render/shell";
import type { ConcernPlan } from "../render/artifact";

export interface LiveFileContent {
    mode: string;
    owner: string;
    sha256: string;
    /** Undefined for secret files: only their digest leaves the host. */
    content?: string;
}

export interface DriftRead {
    files: Record<string, LiveFileContent | undefined>;
    /** `${concern}/${view index}` -> what the live command printed and, for artifact views, what the desired content prints. */
    views: Record<string, { live: string; expected?: string }>;
    /** concern -> its checks' exit code and output. */
    services: Record<string, { ok: boolean; output: string }>;
    /** Transactions waiting for their confirmation (their id and deadline, epoch seconds). */
    pending: { txid: string; deadline: number }[];
}

const unb64 = (text: string | undefined) => Buffer.from(text ?? "", "base64").toString("utf8");

/**
 * `digests` (path -> the sha256 the file must have) lets the host send back only the contents of
 * files that differ (for their diff): on a clean host, none. Without it every readable file comes
 * back (53 KB of base64 in the lab, most of a clean check's answer).
 */
export function driftScript(plans: ConcernPlan[], digests?: Record<string, string | undefined>): string {
    const all = plans.flatMap((plan) => plan.artifacts);
    const quoted = (artifacts: typeof all) => artifacts.map((artifact) => `'${artifact.path}'`).join(" ");
    const readable = all.filter((artifact) => !artifact.secret && !artifact.bulk);
    // Few processes, whatever the number of files (process creation is most of a check's cost):
    // one stat and one sha256sum for all files (a missing file prints no line), then the files
    // that hold no secret (those whose digest differs, when the digests are known) concatenated in
    // one base64 line, cut apart by the sizes stat printed.
    // The reads are independent: they run at once (readsAtOnce; the parser reads lines in any
    // order). The views started in the background at the start (startBackgroundViews) are read
    // by the script's own shell, which alone can `wait` for them.
    const files = [
        `stat -c 'M %n %a %U:%G' ${quoted(all)} 2>/dev/null`,
        `morh_h=$(sha256sum ${quoted(all)} 2>/dev/null)`,
        `[ -z "$morh_h" ] || printf '%s\\n' "$morh_h" | sed 's/^\\([0-9a-f]*\\)  /H \\1 /'`,
        ...contentLines(readable, digests),
        PENDING_LINES,
    ];
    const parts = [files];
    const last: string[] = [];
    for (const plan of backgroundLast(plans)) {
        const reads: string[] = [];
        plan.liveViews.forEach((view, index) => {
            const id = `${plan.concern}/${index}`;
            const printLive = `printf 'W ${id} live %s\\n' "$(printf '%s' "$live" | base64 -w0)"`;
            if (!("artifact" in view.expected)) {
                reads.push(`${liveOfView(plan, index)}; ${printLive}`);
                return;
            }
            // Usually the cached form equals the live one: "same" then, nothing computed and
            // nothing sent back (the live ruleset is most of a clean check's answer: ~20 KB of
            // base64 in the lab); the host compared the very texts the workstation would.
            reads.push(
                `${liveOfView(plan, index)}; ${expectedOfView(plan, index)}; if [ "$exp" = "$live" ]; then echo 'W ${id} same'; else ${printLive}; printf 'W ${id} expected %s\\n' "$(printf '%s' "$exp" | base64 -w0)"; fi`,
            );
        });
        const checks = plan.verify.length > 0 ? plan.verify.map((command) => `( ${command} )`).join(" && ") : "true";
        // A check that passed usually printed nothing: no base64 process for it then.
        reads.push(`out=$( { ${checks}; } 2>&1); code=$?; printf 'S ${plan.concern} %s %s\\n' "$code" "$([ -z "$out" ] || printf '%s' "$out" | base64 -w0)"`);
        if (plan.liveViews.some((view) => view.background)) last.push(...reads);
        else parts.push(reads);
    }
    const lines = ["set -u", "export LC_ALL=C", ...startBackgroundViews(plans), ...readsAtOnce(parts, last), END_BACKGROUND_VIEWS];
    return wholeScript(lines);
}

/**
 * `Z path size` lines and one `C base64` line for the readable files to send back: every one
 * without `digests`; with them, only those whose digest (in $morh_h, sha256sum's output) is not
 * the desired one. A file whose desired content is unknown (a secret it needs is not available
 * here) is not compared, so not sent either.
 */
function contentLines(readable: { path: string }[], digests?: Record<string, string | undefined>): string[] {
    const send = (paths: string) => [`stat -c 'Z %n %s' ${paths} 2>/dev/null`, `printf 'C %s\\n' "$(cat ${paths} 2>/dev/null | base64 -w0)"`];
    if (!digests) return send(readable.map((artifact) => `'${artifact.path}'`).join(" "));
    const compared = readable.filter((artifact) => digests[artifact.path] !== undefined);
    // The list of files to send is built in the positional parameters (paths may hold spaces).
    // Whole lines of sha256sum's output are matched (between newlines), so no path that only
    // begins with another one stands for it.
    return [
        "morh_nl='\n'",
        "set --",
        ...compared.map(
            (artifact) =>
                `case "\${morh_nl}\${morh_h}\${morh_nl}" in *"\${morh_nl}${digests[artifact.path]}  ${artifact.path}\${morh_nl}"*) ;; *) [ ! -e '${artifact.path}' ] || set -- "$@" '${artifact.path}' ;; esac`,
        ),
        `if [ $# -gt 0 ]; then ${send('"$@"').join("; ")}; fi`,
    ];
}

export function parseDriftOutput(output: string): DriftRead {
    const read: DriftRead = { files: {}, views: {}, services: {}, pending: [] };
    const hashes: Record<string, string> = {};
    const sizes: [string, number][] = [];
    let concatenated = Buffer.alloc(0);
    for (const line of output.split("\n")) {
        const fields = line.split(" ");
        if (fields[0] === "M" && fields.length === 4) {
            read.files[fields[1]] = { mode: fields[2].padStart(4, "0"), owner: fields[3], sha256: "" };
        } else if (fields[0] === "Z" && fields.length === 3) {
            sizes.push([fields[1], Number(fields[2])]);
        } else if (fields[0] === "H" && fields.length === 3) {
            hashes[fields[2]] = fields[1];
        } else if (fields[0] === "C") {
            concatenated = Buffer.from(fields[1] ?? "", "base64");
        } else if (fields[0] === "W") {
            const view = (read.views[fields[1]] ??= { live: "" });
            // "same": the host found both texts equal and sent neither.
            if (fields[2] === "same") view.expected = view.live;
            else view[fields[2] as "live" | "expected"] = unb64(fields[3]);
        } else if (fields[0] === "T" && fields.length === 3) {
            read.pending.push({ txid: fields[1], deadline: Number(fields[2]) });
        } else if (fields[0] === "S") {
            read.services[fields[1]] = { ok: fields[2] === "0", output: unb64(fields[3]).trim() };
        }
    }
    const contents: Record<string, string> = {};
    let offset = 0;
    for (const [path, size] of sizes) {
        contents[path] = concatenated.subarray(offset, offset + size).toString("utf8");
        offset += size;
    }
    for (const [path, file] of Object.entries(read.files)) {
        if (file) Object.assign(file, { sha256: hashes[path] ?? "", content: contents[path] });
    }
    return read;
}
