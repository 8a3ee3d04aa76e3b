// Large files (blocklists) sent as their changes: the workstation keeps the contents it sent,
// by digest; when a host's file has the digest of a kept content, only the lines removed and
// added travel, and the host rebuilds the file with the artifact's merge command, checking the
// result's digest (a mismatch aborts with the host unchanged). Without a kept content (another
// workstation, a cleared cache) the whole file is sent, as for any file.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface LineDelta {
    /** sha256 of the host's current file, which the changes apply to. */
    base: string;
    removed: string[];
    added: string[];
}

/** Contents kept; the oldest go first. */
const KEPT = 16;
/** Beyond this share of the new file's lines, the whole file is sent instead. */
const MAX_CHANGED_SHARE = 0.5;

function cacheDir(): string {
    return process.env.MOR_HARDEN_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "mor-harden", "contents");
}

const sha256 = (content: string) => createHash("sha256").update(content).digest("hex");

/** Keeps `content` for later deltas (best effort: a cache that cannot be written only costs whole sends). */
export function rememberContent(content: string): void {
    try {
        const dir = cacheDir();
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileSync(join(dir, sha256(content)), content, { mode: 0o600 });
        const kept = readdirSync(dir).map((name) => ({ name, mtime: statSync(join(dir, name)).mtimeMs })).sort((a, b) => b.mtime - a.mtime);
        for (const old of kept.slice(KEPT)) rmSync(join(dir, old.name), { force: true });
    } catch {
        // no cache: whole files
    }
}

function keptContent(digest: string): string | undefined {
    try {
        const content = readFileSync(join(cacheDir(), digest), "utf8");
        return sha256(content) === digest ? content : undefined;
    } catch {
        return undefined;
    }
}

/** The changes from the host's file (digest `liveSha256`) to `content`, when worth sending instead of it. */
export function lineDelta(content: string, liveSha256: string | undefined): LineDelta | undefined {
    if (!liveSha256) return undefined;
    const base = keptContent(liveSha256);
    if (base === undefined) return undefined;
    const before = new Set(base.split("\n").filter(Boolean));
    const after = new Set(content.split("\n").filter(Boolean));
    const removed = [...before].filter((line) => !after.has(line));
    const added = [...after].filter((line) => !before.has(line));
    if (removed.length + added.length > after.size * MAX_CHANGED_SHARE) return undefined;
    return { base: liveSha256, removed, added };
}
