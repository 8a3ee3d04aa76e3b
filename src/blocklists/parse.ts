// Blocklist files: one IPv4 or IPv6 address or CIDR a line, `#` comments and blank lines allowed.
// Entries are written as ipset prints them (network address, no /32 or /128, IPv6 compressed as
// inet_ntop does), so the digest of a list equals the digest of the live set holding it.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { privateCacheDir, readCacheEntry, writeCacheEntry } from "../render/user-cache";

export interface BlocklistEntries {
    v4: string[];
    v6: string[];
}

export interface LineProblem {
    line: number;
    message: string;
}

export const v4ToNumber = (address: string) => address.split(".").reduce((value, octet) => value * 256 + Number(octet), 0);
const numberToV4 = (value: number) => [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");

function normalizeV4(address: string, prefix: number): string {
    const size = 2 ** (32 - prefix);
    const network = numberToV4(Math.floor(v4ToNumber(address) / size) * size);
    return prefix === 32 ? network : `${network}/${prefix}`;
}

export function v6Groups(address: string): number[] {
    // An embedded IPv4 tail (::ffff:1.2.3.4) as its two groups.
    const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
    let text = address;
    if (dotted) {
        const value = v4ToNumber(dotted[1]);
        text = `${address.slice(0, -dotted[1].length)}${Math.floor(value / 65536).toString(16)}:${(value % 65536).toString(16)}`;
    }
    const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
    const parse = (part: string) => (part === "" ? [] : part.split(":").map((group) => parseInt(group, 16)));
    const left = parse(head);
    if (tail === undefined) return left;
    const right = parse(tail);
    return [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
}

/** As glibc's inet_ntop prints it: the longest run of two or more zero groups (the first of equals) as "::". */
export function formatV6(groups: number[]): string {
    let best = { start: -1, length: 0 };
    for (let i = 0; i < 8;) {
        if (groups[i] !== 0) {
            i++;
            continue;
        }
        let j = i;
        while (j < 8 && groups[j] === 0) j++;
        if (j - i > best.length) best = { start: i, length: j - i };
        i = j;
    }
    const hex = groups.map((group) => group.toString(16));
    if (best.length < 2) return hex.join(":");
    return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.length).join(":")}`;
}

function normalizeV6(address: string, prefix: number): string {
    const groups = v6Groups(address).map((group, index) => {
        const bits = Math.max(0, Math.min(16, prefix - index * 16));
        return bits === 16 ? group : group & (0xffff << (16 - bits)) & 0xffff;
    });
    const network = formatV6(groups);
    return prefix === 128 ? network : `${network}/${prefix}`;
}

/** A plain IPv4 address already as ipset prints it (no leading zero, no prefix): most lines of a large list. */
const CANONICAL_V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** One entry, normalized with its family, or a problem. */
export function parseEntry(text: string): { family: "v4" | "v6"; entry: string } | { problem: string } {
    if (CANONICAL_V4.test(text)) return { family: "v4", entry: text };
    const [address, prefixText, extra] = text.split("/");
    if (extra !== undefined) return { problem: `${JSON.stringify(text)} is not an address or CIDR` };
    // node's isIPv6 takes a zone index (fe80::1%eth0), which no set entry has.
    const family = isIPv4(address) ? "v4" : isIPv6(address) && !address.includes("%") ? "v6" : undefined;
    if (!family) return { problem: `${JSON.stringify(text)} is not an IPv4 or IPv6 address or CIDR` };
    const max = family === "v4" ? 32 : 128;
    if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return { problem: `${JSON.stringify(text)} has a bad prefix length` };
    const prefix = prefixText === undefined ? max : Number(prefixText);
    // /0 would drop everyone of the family: surely a mistake in a blocklist.
    if (prefix < 1 || prefix > max) return { problem: `${JSON.stringify(text)}: the prefix length must be 1 to ${max}` };
    const mapped = family === "v6" && v6Groups(address).join(":").startsWith("0:0:0:0:0:65535:");
    if (mapped) return { problem: `${JSON.stringify(text)} is an IPv4-mapped address: write the IPv4 form` };
    // ::/96 less :: and ::1 (IPv4-compatible, deprecated): ipset prints them as ::1.2.3.4, which would never match the digest.
    const groups = family === "v6" ? v6Groups(address) : [];
    if (family === "v6" && groups.slice(0, 6).every((group) => group === 0) && (groups[6] !== 0 || groups[7] > 1))
        return { problem: `${JSON.stringify(text)} is an IPv4-compatible address (::/96, deprecated): write the IPv4 form` };
    return { family, entry: family === "v4" ? normalizeV4(address, prefix) : normalizeV6(address, prefix) };
}

/** Most entries a family of one list may hold (the sets' maxelem). */
export const MAX_ENTRIES = 1048576;

/** Parses a list; entries sorted (byte order) and unique. */
export function parseBlocklist(text: string): { entries: BlocklistEntries; problems: LineProblem[] } {
    const v4 = new Set<string>();
    const v6 = new Set<string>();
    const problems: LineProblem[] = [];
    text.split(/\r?\n/).forEach((raw, index) => {
        const content = raw.replace(/#.*$/, "").trim();
        if (content === "") return;
        const parsed = parseEntry(content);
        if ("problem" in parsed) problems.push({ line: index + 1, message: parsed.problem });
        else (parsed.family === "v4" ? v4 : v6).add(parsed.entry);
    });
    const sorted = (entries: Set<string>) => [...entries].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [family, entries] of [
        ["IPv4", v4],
        ["IPv6", v6],
    ] as const) {
        if (entries.size > MAX_ENTRIES) problems.push({ line: 0, message: `more than ${MAX_ENTRIES} ${family} entries` });
    }
    return { entries: { v4: sorted(v4), v6: sorted(v6) }, problems };
}

const cache = new Map<string, { entries?: BlocklistEntries; problems: string[] }>();

/** Parsed lists kept in the user's cache; the oldest go first. */
const KEPT_PARSED = 32;

/** What an entry is made of: an address and a prefix length, nothing a sets file could read as more. */
const ENTRY_SHAPE = /^[0-9a-f.:]+(\/[0-9]{1,3})?$/;

/**
 * Whether a value (read back from a cache) has the shape of a list's entries: each an address
 * (or CIDR) alone, so no entry can carry a second line into the sets file the host loads as root.
 */
export function isEntries(value: unknown): value is BlocklistEntries {
    const strings = (list: unknown) => Array.isArray(list) && list.every((entry) => typeof entry === "string" && ENTRY_SHAPE.test(entry));
    return typeof value === "object" && value !== null && strings((value as BlocklistEntries).v4) && strings((value as BlocklistEntries).v6);
}

/**
 * A list parsed before, by the sha256 of its file's bytes (parsing 100,000 lines takes 100-150 ms
 * of every drift and apply; reading back the JSON of the result 10-20 ms). Only lists without
 * problems are kept. The entry is the operator's own file (see render/user-cache.ts); its shape is
 * checked, and anything else parses the file again.
 */
function parsedBefore(dir: string | undefined, digest: string): BlocklistEntries | undefined {
    const kept = readCacheEntry(dir, digest);
    return isEntries(kept) ? { v4: kept.v4, v6: kept.v6 } : undefined;
}

/**
 * Reads and parses a list file (once per process: every host of an environment shares it; across
 * processes from the user's cache, by the file's digest). Problems name the file and the line.
 */
export function readBlocklistFile(path: string): { entries?: BlocklistEntries; problems: string[] } {
    const cached = cache.get(path);
    if (cached) return cached;
    let result: { entries?: BlocklistEntries; problems: string[] };
    try {
        const bytes = readFileSync(path);
        const digest = createHash("sha256").update(bytes).digest("hex");
        const dir = privateCacheDir("lists");
        const kept = parsedBefore(dir, digest);
        if (kept) {
            result = { entries: kept, problems: [] };
        } else {
            const parsed = parseBlocklist(bytes.toString("utf8"));
            const problems = parsed.problems.slice(0, 20).map((problem) => `${path}${problem.line ? `:${problem.line}` : ""}: ${problem.message}`);
            if (parsed.problems.length > 20) problems.push(`${path}: ${parsed.problems.length - 20} more bad lines`);
            result = problems.length > 0 ? { problems } : { entries: parsed.entries, problems };
            if (result.entries) writeCacheEntry(dir, digest, result.entries, KEPT_PARSED);
        }
    } catch (error) {
        result = { problems: [`cannot read ${JSON.stringify(path)} (${(error as NodeJS.ErrnoException).code})`] };
    }
    cache.set(path, result);
    return result;
}
