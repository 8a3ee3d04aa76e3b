// npm run bench -- countries: a block of the ten countries with the most ranges in the shipped
// database, on one lab host.
//   render       `mor-harden render` of the lab's stack with the block: cold (the database read
//                and compiled, an empty user cache) and warm (the compiled sets from the cache).
//   apply        the first apply of the block (every concern checked; the sets and the rules
//                change), then a no-change apply.
//   sets         each country set's entries.
//   packet path  RTP-sized UDP from the attacker (in no country: the shipped database leaves the
//                documentation ranges out) to the host's RTP port, with the sets in its path and
//                without them (the jump to MORH-BLOCKLISTS taken out, then put back), run by run
//                (BENCH_PAIRS pairs, 7 by default); the target is on the median of each pair's ratio.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { compileCountries, shippedDatabasePaths } from "../src/countries/database";
import { labExec, labUp, type LabNode, type LabState } from "../src/lab/lab";
import { LAB_STACK } from "../src/lab/stacks";
import { measureThroughput } from "./bans";
import { benchEnvironment, ratio, runner } from "./fleet";
import { withBenchLab } from "./lab-dir";
import { higherIsBetter, summarize, type Figure } from "./stats";
import { CLI_FILE as CLI } from "../src/cli/bin";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Pairs of packet-path runs, with the sets and without (the path's spread is wider than a render's). */
const PACKET_PAIRS = Number(process.env.BENCH_PAIRS ?? 7);

/** The ten countries with the most ranges (lines) in the shipped database, both families. */
export function countriesWithMostRanges(count = 10): string[] {
    const ranges = new Map<string, number>();
    for (const path of shippedDatabasePaths()) {
        for (const line of readFileSync(path, "utf8").split("\n")) {
            const country = line.slice(line.lastIndexOf(",") + 1).trim();
            if (country) ranges.set(country, (ranges.get(country) ?? 0) + 1);
        }
    }
    return [...ranges.entries()]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, count)
        .map(([country]) => country);
}

function sh(node: LabNode, script: string): string {
    const result = labExec(node, ["sh", "-c", script], { timeoutMs: 120_000 });
    if (result.code !== 0) throw new Error(`${node.name}: ${script.slice(0, 120)}: ${result.stderr || result.stdout}`);
    return result.stdout;
}

function stackFile(state: LabState, dir: string, block?: string[]): string {
    const path = join(dir, block ? "countries" : "base", `Pulumi.${LAB_STACK}.yaml`);
    mkdirSync(join(path, ".."), { recursive: true });
    const document = benchEnvironment(state);
    if (block) document.config["mor-harden:firewall"] = { ...document.config["mor-harden:firewall"], countries: { block } };
    writeFileSync(path, stringify(document));
    return path;
}

/** Seconds of one `mor-harden render` with this user cache. */
function renderSeconds(stack: string, cacheHome: string, out: string): number {
    const started = process.hrtime.bigint();
    const result = spawnSync("node", [CLI, "render", "--config", stack, "--out", out], {
        encoding: "utf8",
        env: { ...process.env, XDG_CACHE_HOME: cacheHome },
    });
    if (result.status !== 0) throw new Error(`render: ${result.stderr}`);
    return Number(process.hrtime.bigint() - started) / 1e9;
}

function benchRender(dir: string, stack: string): Figure[] {
    const cold: number[] = [];
    const warm: number[] = [];
    for (let run = 0; run < RUNS; run++) {
        const cacheHome = mkdtempSync(join(dir, "cache-"));
        cold.push(renderSeconds(stack, cacheHome, join(dir, "out")));
        warm.push(renderSeconds(stack, cacheHome, join(dir, "out")));
        rmSync(cacheHome, { recursive: true, force: true });
    }
    return [
        summarize("countries: render, cold (database read and compiled)", "s", cold),
        summarize("countries: render, warm (compiled sets from the user's cache)", "s", warm),
    ];
}

export async function benchCountries(): Promise<Figure[]> {
    const block = countriesWithMostRanges();
    return withBenchLab("mhc", async (dir, prefix) => {
        process.env.MOR_HARDEN_CACHE = join(dir, "cache");
        // The compiled sets too: the bench's own, never the user's.
        process.env.XDG_CACHE_HOME = join(dir, "xdg-cache");
        const state = await labUp(dir, 1, prefix);
        const host = state.hosts[0];
        const setup = runner(state, "setup", 1, stackFile(state, dir));
        if (setup.some((sample) => sample.failures > 0)) throw new Error("the first apply failed");
        const stack = stackFile(state, dir, block);
        const figures = benchRender(dir, stack);
        const seconds = (samples: { seconds: number }[]) => samples.map((sample) => sample.seconds);
        figures.push(summarize(`countries: first apply of a block of ${block.join(" ")}`, "s", seconds(runner(state, "apply", 1, stack))));
        figures.push(summarize("countries: no-change apply of the block", "s", seconds(runner(state, "apply", RUNS, stack))));
        const compiled = compileCountries({ block, services: {} }, dir).compiled!;
        figures.push(
            summarize("countries: morh-cc-block-4 entries", "entries", [compiled.block.v4.length]),
            summarize("countries: morh-cc-block-6 entries", "entries", [compiled.block.v6.length]),
        );
        const live = sh(host, "ipset list -t morh-cc-block-4 | sed -n 's/Number of entries: //p'").trim();
        if (Number(live) !== compiled.block.v4.length) throw new Error(`the host's set holds ${live} entries, not ${compiled.block.v4.length}`);
        const withSets: number[] = [];
        const withoutSets: number[] = [];
        for (let run = 0; run < PACKET_PAIRS; run++) {
            withSets.push(...measureThroughput(state, host, 1));
            sh(host, "iptables -w -D MORH-INPUT -j MORH-BLOCKLISTS");
            try {
                withoutSets.push(...measureThroughput(state, host, 1));
            } finally {
                sh(host, "iptables -w -I MORH-INPUT 2 -j MORH-BLOCKLISTS");
            }
        }
        const withFigure = higherIsBetter(summarize("RTP datagrams through the firewall, the ten countries' sets in the path", "datagrams/s", withSets));
        const withoutFigure = higherIsBetter(summarize("RTP datagrams through the firewall, without the country sets", "datagrams/s", withoutSets));
        // The ratio of each pair of runs, their median: the shared machine's load moves both runs of a pair alike.
        const pairs = summarize(
            "country sets in the path / without (median of each run's pair)",
            "x",
            withSets.map((rate, run) => rate / withoutSets[run]),
        );
        const pairRatio: Figure = { ...pairs, target: 0.9, meetsTarget: pairs.median >= 0.9, better: "higher" };
        figures.push(
            withoutFigure,
            withFigure,
            { ...ratio("country sets in the path / without (medians)", withFigure, withoutFigure, undefined, true), better: "higher" },
            pairRatio,
        );
        return figures;
    });
}
