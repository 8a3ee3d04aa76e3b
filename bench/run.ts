// npm run bench: every benchmark against the lab, printed as a table and written as JSON.
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { benchFleet } from "./fleet";
import { benchLabStart } from "./lab-start";
import { printTable, type Figure } from "./stats";

async function main(): Promise<void> {
    const only = process.argv[2];
    const figures: Figure[] = [...(!only || only === "lab" ? await benchLabStart() : []), ...(!only || only === "fleet" ? await benchFleet() : [])];
    printTable(figures);
    const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, node ${process.version}`;
    const out = join(__dirname, "..", "..", "bench", "results.json");
    writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, figures }, null, 2) + "\n");
    console.log(`written to ${out} (${machine})`);
}

main().catch((error: Error) => {
    console.error(`bench: ${error.message}`);
    process.exit(1);
});
