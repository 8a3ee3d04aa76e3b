// A benchmark's own lab directory and namespace prefix, gone when the work ends or the run is
// interrupted (Ctrl-C, a CI timeout).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { labDown } from "../src/lab/lab";

export async function withBenchLab<T>(tag: string, work: (dir: string, prefix: string) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-bench-"));
    const prefix = `${tag}${process.pid % 100000}-`;
    const stop = () => {
        labDown(dir, prefix);
        rmSync(dir, { recursive: true, force: true });
    };
    const onSignal = () => (stop(), process.exit(130));
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
        return await work(dir, prefix);
    } finally {
        stop();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
    }
}
