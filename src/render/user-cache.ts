// The operator's own cache directories: mor-harden keeps what it can compute again (V8's code for
// the CLI's modules, contents it sent for deltas, parsed blocklists, compiled country sets) in
// $XDG_CACHE_HOME/mor-harden/<kind> (by default ~/.cache/mor-harden/<kind>), never in a shared
// /tmp. What is read back from there is trusted as the operator's own (compiled code runs, a
// parsed list is sent to hosts), so a directory is used only when it is the user's and nobody
// else can write it; it is made 0700. Anything else, or no directory at all, only costs the
// computation again.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export type CacheKind = "compile" | "contents" | "lists" | "countries";

/** The default place of a kind of cache. */
export const defaultCacheDir = (kind: CacheKind) => join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "mor-harden", kind);

/** `dir` (default: the kind's own place), made 0700, when it is the user's and nobody else can write it; otherwise undefined. */
export function privateCacheDir(kind: CacheKind, dir = defaultCacheDir(kind)): string | undefined {
    try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const stat = statSync(dir);
        if ((process.getuid && stat.uid !== process.getuid()) || (stat.mode & 0o022) !== 0) return undefined;
        return dir;
    } catch {
        return undefined;
    }
}

/** Removes all but the `count` most recently written (or touched) files of a cache directory whose names `keep` accepts. */
export function keepNewest(dir: string, count: number, keep: (name: string) => boolean = () => true): void {
    const files = readdirSync(dir)
        .filter(keep)
        .map((name) => ({ name, mtime: statSync(join(dir, name)).mtimeMs }))
        .sort((a, b) => b.mtime - a.mtime);
    for (const old of files.slice(count)) rmSync(join(dir, old.name), { force: true });
}

/** A cache directory's JSON entry `NAME.json`, or undefined (none, not JSON); its shape is the caller's to check. */
export function readCacheEntry(dir: string | undefined, name: string): unknown {
    if (dir === undefined) return undefined;
    try {
        return JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
    } catch {
        return undefined;
    }
}

/**
 * Writes `NAME.json` into a cache directory, private to the user, and keeps the `count` newest
 * entries. Written aside and renamed: a concurrent process reads the old entry or the new one,
 * whole. A cache that cannot be written only costs the next run its work again.
 */
export function writeCacheEntry(dir: string | undefined, name: string, value: unknown, count: number): void {
    if (dir === undefined) return;
    try {
        const path = join(dir, `${name}.json`);
        writeFileSync(`${path}.${process.pid}`, JSON.stringify(value), { mode: 0o600 });
        renameSync(`${path}.${process.pid}`, path);
        keepNewest(dir, count, (entry) => entry.endsWith(".json"));
    } catch {
        // See above: only the work again.
    }
}
