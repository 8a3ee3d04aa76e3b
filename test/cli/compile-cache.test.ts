// The CLI's V8 code cache (src/cli/compile-cache.ts), judged from outside: real node processes
// over a module that changes. A cache hit leaves the cache file as it was (it is written only on
// a miss); a changed source of the very same length (which V8's own check would not see) runs
// the new code; a directory others can write is not used.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const compileCache = join(__dirname, "..", "..", "src", "cli", "compile-cache.js");
const work = mkdtempSync(join(tmpdir(), "mor-harden-compile-cache-"));
after(() => rmSync(work, { recursive: true, force: true }));

const entry = join(work, "entry.js");
writeFileSync(
    entry,
    [
        `require(${JSON.stringify(compileCache)}).enableCompileCache();`,
        `const greet = require("./greet");`,
        // require.resolve, __dirname and __filename as the loader gives them.
        `console.log(greet(), require.resolve("./greet") === __dirname + "/greet.js", require("node:path").basename(greet.file));`,
    ].join("\n"),
);
const greet = (word: string) => writeFileSync(join(work, "greet.js"), `module.exports = () => "${word}";\nmodule.exports.file = __filename;\n`);
const run = (cacheDir: string) => {
    const result = spawnSync("node", [entry], { encoding: "utf8", env: { ...process.env, MORH_COMPILE_CACHE: cacheDir }, timeout: 30_000 });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trim();
};
/** The cache file of this Node and this installation: the one file in the directory. */
const cacheFile = (dir: string) => {
    const files = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".bin")) : [];
    assert.ok(files.length <= 1, `one cache file, not ${files.join(", ")}`);
    return join(dir, files[0] ?? "none.bin");
};
const written = (dir: string) => {
    const stat = statSync(cacheFile(dir));
    return `${stat.ino} ${stat.mtimeMs}`;
};

describe("compile cache", () => {
    it("is written on a miss, read as it is on a hit, and never runs the code of an older source", () => {
        const dir = join(work, "cache");
        greet("hello");
        assert.equal(run(dir), "hello true greet.js");
        assert.ok(existsSync(cacheFile(dir)), "the first run writes the cache");
        assert.equal(statSync(dir).mode & 0o777, 0o700);
        const first = written(dir);
        assert.equal(run(dir), "hello true greet.js");
        assert.equal(written(dir), first, "a run whose modules all hit the cache does not write it");
        greet("howdy"); // as long as "hello": V8's own check of the cached data is the length only
        assert.equal(run(dir), "howdy true greet.js");
        assert.notEqual(written(dir), first, "the changed module missed, and the cache was written anew");
        assert.equal(run(dir), "howdy true greet.js");
    });

    it("is not used in a directory others can write, nor with MORH_COMPILE_CACHE=0", () => {
        const shared = join(work, "shared");
        mkdirSync(shared);
        chmodSync(shared, 0o777);
        greet("hello");
        assert.equal(run(shared), "hello true greet.js");
        assert.equal(existsSync(cacheFile(shared)), false);
        assert.equal(run("0"), "hello true greet.js");
        assert.equal(existsSync(join(work, "0")), false);
    });
});
