// fail2ban-regex as the judge of the filters: annotated sample logs in fail2ban's own format
// (`# failJSON:` before each line, `# filterOptions:` starting a section), one fail2ban-regex run
// per section, each failure it prints mapped back to the line that produced it.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Artifact } from "../../src/render/artifact";

/** Debian's fail2ban package ships upstream's annotated samples here. */
export const UPSTREAM_SAMPLES = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

export interface FailExpectation {
    match?: boolean;
    host?: string;
    constraint?: string;
    desc?: string;
    /** Where the line's format comes from: its own "source", or the sample's last `# source:` line. */
    source?: string;
    [key: string]: unknown;
}

export interface SampleLine {
    /** 1-based line number in the sample file. */
    lineNo: number;
    text: string;
    expect: FailExpectation;
}

export interface SampleSection {
    /** The section's filter option sets (upstream tests each line with each set). */
    optionSets: Record<string, unknown>[];
    lines: SampleLine[];
}

export interface SampleFile {
    sections: SampleSection[];
    /** Our own samples: `# bansJSON: [...]`, the hosts the whole file bans at the jail's thresholds. */
    bans?: string[];
}

/** Reads a sample log annotated the way fail2ban's own tests read theirs (samplestestcase.py). */
export function parseSamples(text: string): SampleFile {
    const file: SampleFile = { sections: [{ optionSets: [{}], lines: [] }] };
    const rows = text.split("\n");
    let expect: FailExpectation | undefined;
    let source: string | undefined;
    rows.forEach((row, index) => {
        const sourceLine = /^# source: (.+)$/.exec(row);
        if (sourceLine) source = sourceLine[1].trim();
        const annotation = /^#+ ?(failJSON|filterOptions|bansJSON):(.+)$/.exec(row);
        if (annotation) {
            const data = JSON.parse(annotation[2]);
            if (annotation[1] === "filterOptions") file.sections.push({ optionSets: Array.isArray(data) ? data : [data], lines: [] });
            else if (annotation[1] === "bansJSON") file.bans = data;
            else expect = data;
            return;
        }
        if (row.startsWith("#") || row.trim() === "") return;
        const expectation = expect ?? {};
        file.sections
            .at(-1)!
            .lines.push({ lineNo: index + 1, text: row.replace(/\r$/, ""), expect: source && !expectation.source ? { ...expectation, source } : expectation });
        expect = undefined;
    });
    file.sections = file.sections.filter((section) => section.lines.length > 0);
    return file;
}

/**
 * Upstream's annotations carry Python conditions ("opts.get('mode') == 'aggressive'",
 * "name == 'sshd'"); Python itself evaluates them, all at once.
 */
export function evaluateConditions(conditions: { expression: string; name: string; opts: Record<string, unknown> }[]): boolean[] {
    if (conditions.length === 0) return [];
    const program =
        "import json,sys\nprint(json.dumps([bool(eval(c['expression'], {}, {'name': c['name'], 'opts': c['opts']})) for c in json.load(sys.stdin)]))";
    return JSON.parse(execFileSync("python3", ["-c", program], { input: JSON.stringify(conditions), encoding: "utf8" }));
}

export interface Failure {
    /** Index into the lines given to fail2ban-regex. */
    index: number;
    host: string;
    /** Seconds since the epoch, as fail2ban read it from the line. */
    time: number;
}

/** A copy of the machine's /etc/fail2ban with the rendered filter files in it. */
export function fail2banConfigWith(artifacts: Artifact[]): { dir: string; cleanup: () => void } {
    const root = mkdtempSync(join(tmpdir(), "mor-harden-f2b-"));
    const dir = join(root, "fail2ban");
    cpSync("/etc/fail2ban", dir, { recursive: true });
    for (const artifact of artifacts) {
        if (!artifact.path.startsWith("/etc/fail2ban/")) continue;
        writeFileSync(join(dir, artifact.path.slice("/etc/fail2ban/".length)), artifact.content);
    }
    return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

const RECORD = "\u0001";

/**
 * Runs fail2ban-regex once over `lines` with `filter` (a name, optionally with options in
 * brackets) and returns each failure with the line that produced it. fail2ban-regex prints
 * failures in the order it reads lines, each with the lines it matched (several for a multi-line
 * failure, the last being the one that completed it). --no-check-all: like fail2ban-server, the
 * first matching pattern wins.
 */
export function runFilter(configDir: string, filter: string, lines: string[]): Failure[] {
    return withLog(lines, (log) => {
        const run = spawnSync(
            "fail2ban-regex",
            ["-c", configDir, "-l", "warning", "--raw", "--no-check-all", "-o", `${RECORD}<fid>\t<time>\t<matches>`, log, filter],
            { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
        );
        if (run.status !== 0) throw new Error(`fail2ban-regex ${filter} failed (${run.status}): ${run.stderr}${run.stdout}`);
        // fail2ban-server ignores a failure whose line has no date it can read; fail2ban-regex
        // only warns and stamps it "now". Such a filter would never ban: an error here.
        const undated = /Match without a timestamp: (.*)/.exec(run.stdout + run.stderr);
        if (undated) throw new Error(`${filter} finds no date in: ${undated[1]}`);
        const out = run.stdout;
        const failures: Failure[] = [];
        let next = 0;
        for (const record of out.split(RECORD).slice(1)) {
            const [host, time, ...rest] = record.replace(/\n$/, "").split("\t");
            const message = rest.join("\t").split("\n");
            const index = findFrom(lines, next, message);
            if (index < 0) throw new Error(`fail2ban-regex reported a failure on a line not in the log: ${JSON.stringify(message)}`);
            failures.push({ index, host, time: Number(time) });
            // Identical lines are common in samples: the next failure comes from a later line.
            next = index + 1;
        }
        return failures;
    });
}

/** `lines` as a log file in a scratch directory, for the time of `use`. */
function withLog<T>(lines: string[], use: (log: string) => T): T {
    const work = mkdtempSync(join(tmpdir(), "mor-harden-f2b-log-"));
    try {
        const log = join(work, "sample.log");
        writeFileSync(log, lines.join("\n") + "\n");
        return use(log);
    } finally {
        rmSync(work, { recursive: true, force: true });
    }
}

function findFrom(lines: string[], from: number, message: string[]): number {
    for (const candidate of [...message].reverse()) {
        const index = lines.indexOf(candidate, from);
        if (index >= 0) return index;
    }
    return -1;
}

/** What each failure regex of a filter matched in a log: hits per regex, from fail2ban-regex's summary. */
export function hitsPerRegex(configDir: string, filter: string, lines: string[]): number[] {
    return withLog(lines, (log) => {
        const out = execFileSync("fail2ban-regex", ["-c", configDir, "--raw", "--print-no-missed", "--print-no-ignored", log, filter], {
            encoding: "utf8",
            maxBuffer: 64 * 1024 * 1024,
        });
        const summary = out.slice(out.indexOf("Failregex:"), out.indexOf("Ignoreregex:"));
        return [...summary.matchAll(/^\|-?\s+(\d+)\) \[(\d+)\]/gm)].map((match) => Number(match[2]));
    });
}

/** The hosts a jail bans from these failures: `maxretry` of them within `findtime` seconds. */
export function bannedHosts(failures: Failure[], maxretry: number, findtime: number, ignored: string[] = []): string[] {
    const times = new Map<string, number[]>();
    for (const failure of failures) times.set(failure.host, [...(times.get(failure.host) ?? []), failure.time]);
    const banned: string[] = [];
    for (const [host, seen] of times) {
        if (ignored.includes(host)) continue;
        const sorted = seen.sort((a, b) => a - b);
        if (sorted.some((time, i) => i + maxretry - 1 < sorted.length && sorted[i + maxretry - 1] - time <= findtime)) banned.push(host);
    }
    return banned.sort();
}

export interface LineVerdict {
    line: SampleLine;
    failures: Failure[];
    problem?: string;
}

/** Each annotated line against what fail2ban-regex found on it; problems name the line. */
export function judge(lines: SampleLine[], failures: Failure[], applies: (line: SampleLine) => boolean = () => true): LineVerdict[] {
    return lines.flatMap((line, index) => {
        if (!applies(line)) return [];
        const found = failures.filter((failure) => failure.index === index);
        const expected = line.expect.match === true;
        let problem: string | undefined;
        if (expected && found.length === 0) problem = "not matched, should be";
        else if (!expected && found.length > 0) problem = `matched (${found.map((f) => f.host).join(", ")}), should not be`;
        else if (expected && found.length > 1) problem = `matched ${found.length} times`;
        else if (expected && line.expect.host !== undefined && found[0].host !== line.expect.host)
            problem = `matched host ${found[0].host}, expected ${line.expect.host}`;
        return [{ line, failures: found, problem }];
    });
}

export function describeProblems(source: string, verdicts: LineVerdict[]): string {
    return verdicts
        .filter((verdict) => verdict.problem)
        .map(
            (verdict) =>
                `${source}:${verdict.line.lineNo}: ${verdict.problem}${verdict.line.expect.desc ? ` (${verdict.line.expect.desc})` : ""}\n    ${verdict.line.text}`,
        )
        .join("\n");
}
