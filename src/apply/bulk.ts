// Large files (blocklists) sent as their changes: the workstation keeps the contents it sent,
// by digest; when a host's file has the digest of a kept content, only the lines removed and
// added travel, and the host rebuilds the file with the artifact's merge command, checking the
// result's digest (a mismatch aborts with the host unchanged). Without a kept content (another
// workstation, a cleared cache) the whole file is sent, as for any file.
import { existsSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { keepNewest, privateCacheDir } from "../render/user-cache";
import { sha256Hex } from "../render/artifact";

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

/** Contents are checked by digest when read back: the directory only has to be private to keep others from learning them. */
function cacheDir(): string | undefined {
    return privateCacheDir("contents", process.env.MOR_HARDEN_CACHE);
}

/** Keeps `content` for later deltas (best effort: a cache that cannot be written only costs whole sends). */
export function rememberContent(content: string): void {
    const dir = cacheDir();
    if (dir === undefined) return;
    try {
        const path = join(dir, sha256Hex(content));
        // Kept already: only marked as recently used.
        if (existsSync(path)) utimesSync(path, new Date(), new Date());
        else writeFileSync(path, content, { mode: 0o600 });
        keepNewest(dir, KEPT);
    } catch {
        // no cache: whole files
    }
}

function keptContent(digest: string): string | undefined {
    try {
        const dir = cacheDir();
        if (dir === undefined) return undefined;
        const content = readFileSync(join(dir, digest), "utf8");
        return sha256Hex(content) === digest ? content : undefined;
    } catch {
        return undefined;
    }
}

/** The changes from the host's file (digest `liveSha256`) to `content`, when worth sending instead of it. */
export function lineDelta(content: string, liveSha256: string | undefined): LineDelta | undefined {
    if (!liveSha256) return undefined;
    const base = keptContent(liveSha256);
    if (base === undefined) return undefined;
    const old = base.split("\n").filter(Boolean);
    const now = content.split("\n").filter(Boolean);
    // A change of a few lines leaves long runs alike at both ends: only the middle is compared.
    let head = 0;
    while (head < old.length && head < now.length && old[head] === now[head]) head++;
    let tail = 0;
    while (tail < old.length - head && tail < now.length - head && old[old.length - 1 - tail] === now[now.length - 1 - tail]) tail++;
    const before = new Set(old.slice(head, old.length - tail));
    const after = new Set(now.slice(head, now.length - tail));
    const removed = [...before].filter((line) => !after.has(line));
    const added = [...after].filter((line) => !before.has(line));
    // No line removed or added, yet the content differs: the same lines in another order, which
    // only the whole file says.
    if (removed.length + added.length === 0) return undefined;
    if (removed.length + added.length > now.length * MAX_CHANGED_SHARE) return undefined;
    return { base: liveSha256, removed, added };
}
