// Each jail's filter over one generated log of a million lines, with fail2ban-regex, next to
// fail2ban's stock asterisk and sshd filters on the same log. The log mixes every line of the
// filters' own samples and of upstream's asterisk and sshd samples (matching and not), in a
// seeded random order, so every filter spends most of its time rejecting lines, as on a host.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filterName, renderFail2ban } from "../src/fail2ban/render";
import { jailNames } from "../src/fail2ban/schema";
import { findTemplatesDir } from "../src/render/templates";
import { fail2banConfigWith, parseSamples, UPSTREAM_SAMPLES } from "../test/helpers/fail2ban-regex";
import { minimalConfig, renderInputFor } from "../test/helpers/fixtures";
import { higherIsBetter, summarize, type Figure } from "./stats";

/** fail2ban's stock filters, as Debian ships them; sshd also in the mode ssh-iptables runs it in. */
const STOCK = ["sshd", "sshd[mode=aggressive]", "asterisk"] as const;
type Stock = (typeof STOCK)[number];
/**
 * The stock filter each of ours is held against: ssh-iptables is the stock sshd filter in
 * aggressive mode reading sshd-session too, the Asterisk jails read what the stock asterisk
 * filter reads; the rest have no stock counterpart and face the faster stock filter.
 */
function counterpart(jail: string): Stock | "fastest" {
    if (jail === "ssh-iptables") return "sshd[mode=aggressive]";
    if (jail === "asterisk-iptables" || jail === "asterisk-manager" || jail === "ast-hgc-200") return "asterisk";
    return "fastest";
}
/** Our filter may be this much slower than the stock filter it is compared with. */
const TARGET_RATIO = 1 / 0.8;

function sampleLines(): string[] {
    const ours = readdirSync(join(findTemplatesDir(), "fail2ban", "filter.d")).filter((name) => name.endsWith(".sample.log"));
    const files = [...ours.map((name) => join(findTemplatesDir(), "fail2ban", "filter.d", name)), ...["sshd", "asterisk"].map((name) => join(UPSTREAM_SAMPLES, name))];
    return files.flatMap((path) => parseSamples(readFileSync(path, "utf8")).sections.flatMap((section) => section.lines.map((line) => line.text)));
}

/** A small seeded generator (mulberry32): the same log on every run and machine. */
function seeded(seed: number): () => number {
    return () => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

function generateLog(path: string, count: number): void {
    const lines = sampleLines();
    const random = seeded(20261125);
    const chunk: string[] = [];
    writeFileSync(path, "");
    for (let i = 0; i < count; i++) {
        chunk.push(lines[Math.floor(random() * lines.length)]);
        if (chunk.length === 50_000 || i === count - 1) {
            writeFileSync(path, chunk.join("\n") + "\n", { flag: "a" });
            chunk.length = 0;
        }
    }
}

/**
 * The CPU seconds (user + system) fail2ban-regex spends on the log: a filter is single-threaded
 * work, and CPU time, unlike wall time, does not grow when something else runs on the machine.
 */
function timeFilter(configDir: string, log: string, filter: string): number {
    const run = spawnSync("/usr/bin/time", ["-f", "MORH-CPU %U %S", "fail2ban-regex", "-c", configDir, "--raw", "--print-no-missed", "--print-no-ignored", log, filter], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
    const match = /MORH-CPU ([\d.]+) ([\d.]+)/.exec(run.stderr);
    if (run.status !== 0 || !match) throw new Error(`fail2ban-regex ${filter} (exit ${run.status}): ${run.stderr}`);
    return Number(match[1]) + Number(match[2]);
}

export async function benchFail2banFilters(lineCount = Number(process.env.BENCH_F2B_LINES ?? 1_000_000), runs = Number(process.env.BENCH_F2B_RUNS ?? 3)): Promise<Figure[]> {
    const work = mkdtempSync(join(tmpdir(), "mor-harden-bench-f2b-"));
    const config = fail2banConfigWith(renderFail2ban(await renderInputFor(minimalConfig())).artifacts);
    try {
        const log = join(work, "mixed.log");
        generateLog(log, lineCount);
        const filters = [...STOCK.map((name) => ({ label: `stock ${name}`, filter: name })), ...jailNames.map((jail) => ({ label: jail, filter: filterName(jail) }))];
        const sampleCount = sampleLines().length;
        console.error(`${lineCount} lines drawn from ${sampleCount} sample lines; ${runs} interleaved runs of ${filters.length} filters`);
        const seconds = new Map<string, number[]>();
        // Interleaved runs, so a slow moment of the machine hits every filter alike.
        for (let run = 0; run < runs; run++) {
            for (const { label, filter } of filters) {
                seconds.set(label, [...(seconds.get(label) ?? []), timeFilter(config.dir, log, filter)]);
                console.error(`fail2ban-regex ${label}: run ${run + 1}/${runs} ${seconds.get(label)!.at(-1)!.toFixed(1)} s`);
            }
        }
        const figures: Figure[] = [];
        const median = (label: string) => summarize(label, "s", seconds.get(label)!).median;
        for (const { label } of filters) {
            const rates = seconds.get(label)!.map((s) => lineCount / s);
            figures.push(higherIsBetter(summarize(`fail2ban-regex ${label}, ${lineCount} lines`, "lines/CPU-s", rates)));
        }
        const fastest = STOCK.reduce((best, name) => (median(`stock ${name}`) < median(`stock ${best}`) ? name : best));
        for (const jail of jailNames) {
            const stock = counterpart(jail) === "fastest" ? fastest : (counterpart(jail) as Stock);
            const ratios = seconds.get(jail)!.map((s) => s / median(`stock ${stock}`));
            figures.push(summarize(`${jail} CPU time / stock ${stock}`, "x", ratios, TARGET_RATIO));
        }
        return figures;
    } finally {
        config.cleanup();
        rmSync(work, { recursive: true, force: true });
    }
}
