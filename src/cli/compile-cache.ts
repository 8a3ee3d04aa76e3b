// V8's code cache for the CLI's modules, ours and node_modules' (issue 23: about 60 ms of a drift
// process went to compiling ~250 modules' source, every run). Node 22.1 has this built in
// (module.enableCompileCache, used when present); Node 20 has not, so here the CommonJS loader's
// compile step is replaced by the same steps with a cache, as the v8-compile-cache package does:
// each module's source wrapped as Node wraps it, compiled by vm.Script with the cached data V8
// made last time (https://nodejs.org/docs/latest-v20.x/api/vm.html#scriptcreatecacheddata), and
// the data made anew, after the run (so it holds the functions the run compiled lazily too), when
// a module had none or V8 rejected it.
//
// The cache is code that runs: it lives in the user's own cache directory (created 0700; not used
// when it is anyone else's or writable by others), never in a shared /tmp. Each entry holds the
// sha1 of the source it was made from and is used only for that very source (V8 itself checks
// only the source's length). MORH_COMPILE_CACHE=0 turns it off; MORH_COMPILE_CACHE=DIR moves it.
// Not the v8-compile-cache package itself: it keeps its cache in $TMP/v8-compile-cache/<V8
// version> (its README, "Internals"), a directory any local user can make first, and checks no
// owner.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import Module = require("node:module");
import { dirname, join } from "node:path";
import { Script } from "node:vm";
import { privateCacheDir } from "../render/user-cache";

interface Entry {
    sha1: Buffer;
    data: Buffer;
}

/** Module's internals that the loader's compile step uses (stable since Node 12; v8-compile-cache relies on them too). */
interface ModuleInternals {
    prototype: { _compile(content: string, filename: string): unknown };
    _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
    _extensions: unknown;
    _cache: unknown;
    wrap(source: string): string;
    enableCompileCache?: (dir?: string) => unknown;
}

function cacheDirectory(): string | undefined {
    const setting = process.env.MORH_COMPILE_CACHE;
    if (setting === "0") return undefined;
    return privateCacheDir("compile", setting || undefined);
}

/**
 * One directory per Node version and architecture (V8's data is for one V8 build only) and per
 * installation of mor-harden (installations in other places, each with its own modules, keep
 * apart), holding one file per module: a process reads only the entries of the modules it loads
 * (`--help` none, a drift the entry's and drift.js's), not every command's.
 */
const cacheDirName = () => `cli-${process.version}-${process.arch}-${createHash("sha1").update(__dirname).digest("hex").slice(0, 12)}`;

/** The single file that held every module's entry before (removed when this layout writes). */
const formerCacheFile = (dir: string) => join(dir, `${cacheDirName()}.bin`);

/** A module's entry: the sha1 of the source it was made from (20 bytes), then V8's data. */
const entryPath = (dir: string, filename: string) => join(dir, `${createHash("sha1").update(filename).digest("hex")}.bin`);
const SHA1_BYTES = 20;

function readEntry(path: string): Entry | undefined {
    try {
        const file = readFileSync(path);
        if (file.length <= SHA1_BYTES) return undefined;
        return { sha1: file.subarray(0, SHA1_BYTES), data: file.subarray(SHA1_BYTES) };
    } catch {
        // No entry yet, or an unreadable one: it is made anew.
        return undefined;
    }
}

function writeEntry(path: string, entry: Entry): void {
    // Written aside and renamed: a concurrent process reads the old entry or the new one, whole.
    const temporary = `${path}.${process.pid}`;
    writeFileSync(temporary, Buffer.concat([entry.sha1, entry.data]), { mode: 0o600 });
    renameSync(temporary, path);
}

export function enableCompileCache(): void {
    const ModuleClass = Module as unknown as ModuleInternals;
    const dir = cacheDirectory();
    if (dir === undefined) return;
    if (ModuleClass.enableCompileCache) {
        ModuleClass.enableCompileCache(dir);
        return;
    }
    const entriesDir = join(dir, cacheDirName());
    const missed = new Map<string, { sha1: Buffer; script: Script }>();
    ModuleClass.prototype._compile = function (this: NodeJS.Module, content: string, filename: string) {
        // A hashbang is only valid at the very start of a script, which the wrapper is not.
        const source = content.startsWith("#!") ? "//" + content.slice(2) : content;
        const sha1 = createHash("sha1").update(source).digest();
        const cached = readEntry(entryPath(entriesDir, filename));
        const hit = cached !== undefined && cached.sha1.equals(sha1);
        const script = new Script(ModuleClass.wrap(source), { filename, cachedData: hit ? cached.data : undefined });
        if (!hit || script.cachedDataRejected) missed.set(filename, { sha1, script });
        const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
        const mod = this;
        const moduleRequire = Object.assign((id: string) => mod.require(id), {
            resolve: Object.assign((request: string, options?: unknown) => ModuleClass._resolveFilename(request, mod, false, options), {
                paths: (request: string) =>
                    (Module as unknown as { _resolveLookupPaths(r: string, m: unknown): string[] | null })._resolveLookupPaths(request, mod),
            }),
            main: require.main,
            extensions: ModuleClass._extensions,
            cache: ModuleClass._cache,
        });
        return wrapper.call(mod.exports, mod.exports, moduleRequire, mod, filename, dirname(filename));
    };
    process.once("exit", () => {
        if (missed.size === 0) return;
        try {
            mkdirSync(entriesDir, { recursive: true, mode: 0o700 });
            rmSync(formerCacheFile(dir), { force: true });
            // Made after the run, so the data holds the functions it compiled lazily too.
            for (const [filename, { sha1, script }] of missed) writeEntry(entryPath(entriesDir, filename), { sha1, data: script.createCachedData() });
        } catch {
            // A cache that cannot be written only costs the next run its compile time.
        }
    });
}
