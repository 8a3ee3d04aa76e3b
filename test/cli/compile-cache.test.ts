// The CLI's V8 code cache (src/cli/compile-cache.ts), judged from outside: real node processes
// over a module that changes. A cache hit leaves the cache file as it was (it is written only on
// a miss); a changed source of the very same length (which V8's own check would not see) runs
// the new code; a directory others can write is not used.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
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
        `require("./stable");`,
        // require.resolve, __dirname and __filename as the loader gives them.
        `console.log(greet(), require.resolve("./greet") === __dirname + "/greet.js", require("node:path").basename(greet.file));`,
    ].join("\n"),
);
writeFileSync(join(work, "stable.js"), "module.exports = 1;\n");
const greet = (word: string) => writeFileSync(join(work, "greet.js"), `module.exports = () => "${word}";\nmodule.exports.file = __filename;\n`);
const run = (cacheDir: string) => {
    const result = spawnSync("node", [entry], { encoding: "utf8", env: { ...process.env, MORH_COMPILE_CACHE: cacheDir }, timeout: 30_000 });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trim();
};
/** The entries of this Node and this installation: one file a module, in the one directory the cache holds. */
const entryFiles = (dir: string) => {
    const dirs = existsSync(dir) ? readdirSync(dir).filter((name) => name.startsWith("cli-")) : [];
    assert.ok(dirs.length <= 1, `one directory, not ${dirs.join(", ")}`);
    return dirs.length === 0 ? [] : readdirSync(join(dir, dirs[0])).map((name) => join(dir, dirs[0], name));
};
/** When each entry was written, by the module it is for (its file holds that module's source digest after nothing else). */
const written = (dir: string) => entryFiles(dir).map((file) => `${statSync(file).ino} ${statSync(file).mtimeMs}`);

describe("compile cache", () => {
    it("is written on a miss, read as it is on a hit, and never runs the code of an older source", () => {
        const dir = join(work, "cache");
        greet("hello");
        assert.equal(run(dir), "hello true greet.js");
        assert.equal(entryFiles(dir).length, 2, "the first run writes an entry for each module it compiled after the cache was on (greet.js, stable.js)");
        assert.equal(statSync(dir).mode & 0o777, 0o700);
        const first = written(dir);
        assert.equal(run(dir), "hello true greet.js");
        assert.deepEqual(written(dir), first, "a run whose modules all hit the cache writes nothing");
        greet("howdy"); // as long as "hello": V8's own check of the cached data is the length only
        assert.equal(run(dir), "howdy true greet.js");
        const second = written(dir);
        assert.equal(second.filter((entry) => first.includes(entry)).length, 1, "the changed module's entry alone was written anew (stable.js's is as it was)");
        assert.equal(run(dir), "howdy true greet.js");
        assert.deepEqual(written(dir), second);
    });

    it("removes the single cache file of the former layout when it writes", () => {
        const dir = join(work, "former");
        mkdirSync(dir, { mode: 0o700 });
        const former = join(
            dir,
            `cli-${process.version}-${process.arch}-${createHash("sha1").update(join(compileCache, "..")).digest("hex").slice(0, 12)}.bin`,
        );
        writeFileSync(former, "old");
        greet("hello");
        assert.equal(run(dir), "hello true greet.js");
        assert.equal(existsSync(former), false);
    });

    it("is not used in a directory others can write, nor with MORH_COMPILE_CACHE=0", () => {
        const shared = join(work, "shared");
        mkdirSync(shared);
        chmodSync(shared, 0o777);
        greet("hello");
        assert.equal(run(shared), "hello true greet.js");
        assert.deepEqual(readdirSync(shared), []);
        assert.equal(run("0"), "hello true greet.js");
        assert.equal(existsSync(join(work, "0")), false);
    });
});
