// gzippedScript: what drift sends instead of its script, run by the host's own sh (dash) and gzip;
// waitUntil: a transaction's wait for a daemon, run by sh.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzippedScript, waitUntil, wholeScript } from "../../src/render/shell";

const sh = (input: string) => spawnSync("sh", ["-s"], { input, encoding: "utf8" });

describe("gzippedScript", () => {
    const script = wholeScript([
        "morh_x='a b'",
        `printf '%s\\n' "$morh_x" "$(printf 'x%.0s' $(seq 1 50))"`,
        ...Array.from({ length: 400 }, (_, i) => `: line ${i} of a long read script with repeated text`),
        "echo done; exit 3",
    ]);

    it("runs the script as it is, with its exit status, and is a fraction of its size", () => {
        const plain = sh(script);
        const packed = sh(gzippedScript(script));
        assert.equal(plain.stdout, "a b\n" + "x".repeat(50) + "\ndone\n");
        assert.equal(packed.stdout, plain.stdout);
        assert.equal(packed.status, 3);
        assert.equal(packed.stderr, "");
        assert.ok(gzippedScript(script).length < script.length / 3, `${gzippedScript(script).length} bytes for ${script.length}`);
    });

    it("never runs a part of it when the copy is cut short on its way", () => {
        const whole = sh(script).stdout;
        const packed = gzippedScript(script);
        for (let cut = 1; cut < packed.length; cut += 97) {
            // Cut before the deflate stream's end: nothing runs. Cut only in gzip's trailer (its
            // CRC) or the heredoc's end: the whole script is there and runs whole.
            const run = sh(packed.slice(0, cut));
            assert.ok(run.stdout === "" || run.stdout === whole, `cut at ${cut} of ${packed.length}: ${JSON.stringify(run.stdout.slice(0, 80))}`);
        }
        assert.equal(sh(packed.slice(0, packed.length / 2)).stdout, "");
    });
});

describe("waitUntil", () => {
    /** Runs the wait in a subshell (as a transaction's step) over a condition that counts its tries in a file. */
    const waitWith = (succeedOnTry: number, seconds: number) => {
        const dir = mkdtempSync(join(tmpdir(), "morh-wait-"));
        try {
            const tries = join(dir, "tries");
            const condition = `echo x >> '${tries}'; [ "$(wc -l < '${tries}')" -ge ${succeedOnTry} ]`;
            const result = sh(`( ${waitUntil(condition, "the daemon's not up", seconds)} ); echo "exit $?"`);
            return { stdout: result.stdout, tries: readFileSync(tries, "utf8").split("\n").filter(Boolean).length };
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    };

    it("ends as soon as the condition holds", () => {
        assert.deepEqual(waitWith(3, 2), { stdout: "exit 0\n", tries: 3 });
        assert.deepEqual(waitWith(1, 2), { stdout: "exit 0\n", tries: 1 });
    });

    it("gives up after its tries with the failure, quoted as it is", () => {
        // 0.1 s at a try every 20 ms: the first look and five more.
        assert.deepEqual(waitWith(1000, 0.1), { stdout: "the daemon's not up\nexit 1\n", tries: 6 });
    });
});
