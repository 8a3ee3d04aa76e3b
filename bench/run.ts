// npm run bench: every benchmark against the lab, printed as a table and written as JSON.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { benchAudit } from "./audit";
import { benchBans } from "./bans";
import { benchCli } from "./cli";
import { benchCountries } from "./countries";
import { benchCraftedLines, benchFail2banFilters } from "./fail2ban-filters";
import { benchFleet } from "./fleet";
import { benchLabStart } from "./lab-start";
import { figureKey, printTable, type Figure } from "./stats";

const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, node ${process.version}`;
const out = join(__dirname, "..", "..", "bench", "results.json");

/** Writes these figures into results.json, replacing earlier ones of the same measure and keeping the rest. */
function persist(figures: Figure[]): void {
    const previous: Figure[] = existsSync(out) ? (JSON.parse(readFileSync(out, "utf8")).figures ?? []) : [];
    const keys = new Set(figures.map((figure) => figureKey(figure.name)));
    const merged = [...previous.filter((figure) => !keys.has(figureKey(figure.name))), ...figures];
    writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, figures: merged }, null, 2) + "\n");
}

async function main(): Promise<void> {
    // The fleet reports each size as soon as it is measured (a full run takes long).
    const eachSize = (figures: Figure[]) => (printTable(figures), persist(figures));
    const parts: Record<string, () => Promise<Figure[]>> = {
        lab: benchLabStart,
        fleet: () => benchFleet(undefined, undefined, undefined, eachSize),
        // The filters: crafted lines against normal ones, then the mixed log (fail2ban: its old name).
        filters: async () => [...(await benchCraftedLines()), ...(await benchFail2banFilters())],
        audit: () => benchAudit(),
        bans: benchBans,
        countries: benchCountries,
        cli: () => benchCli(eachSize),
    };
    const aliases: Record<string, string> = { fail2ban: "filters" };
    const only = aliases[process.argv[2]] ?? process.argv[2];
    if (only && !parts[only]) throw new Error(`unknown part "${only}" (${Object.keys(parts).join(", ")})`);
    const figures: Figure[] = [];
    for (const [name, part] of Object.entries(parts)) if (!only || only === name) figures.push(...(await part()));
    printTable(figures);
    persist(figures);
    console.log(`written to ${out} (${machine})`);
}

main().catch((error: Error) => {
    console.error(`bench: ${error.message}`);
    process.exit(1);
});
