// Country databases in the `first,last,country` CSV form (ip-location-db's, and the operator's own
// `firewall.countries.database`): one range of addresses a line, IPv4 or IPv6, both ends included.
// A set's ranges become the fewest CIDRs that cover exactly them, written as ipset prints them
// (blocklists/parse.ts), so the digest of a rendered set equals the digest of the live one.
import { isIPv4, isIPv6 } from "node:net";
import type { Family } from "../config/family";
import { formatV6, v4ToNumber, v6Groups } from "../blocklists/parse";
import type { BlocklistEntries, LineProblem } from "../blocklists/parse";

/** A range of addresses as numbers, both ends included. */
export interface Range {
    first: bigint;
    last: bigint;
}

/** Each country's ranges, per family, in the file's order. */
export type CountryRanges = Record<Family, Map<string, Range[]>>;

const bits: Record<Family, number> = { v4: 32, v6: 128 };

const v4Number = (address: string) => BigInt(v4ToNumber(address));

function v6Number(address: string): bigint {
    // Two 64-bit halves: one BigInt conversion each instead of one per group.
    const groups = v6Groups(address);
    const half = (from: number) =>
        BigInt(
            `0x${groups
                .slice(from, from + 4)
                .map((group) => group.toString(16).padStart(4, "0"))
                .join("")}`,
        );
    return (half(0) << 64n) | half(4);
}

/** An address of the family as a number (no check: the caller has checked it). */
export const addressNumber = (family: Family, address: string) => (family === "v4" ? v4Number(address) : v6Number(address));

function formatAddress(family: Family, value: bigint): string {
    if (family === "v4") return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join(".");
    return formatV6([112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => Number((value >> shift) & 0xffffn)));
}

/** IPv4-compatible IPv6 addresses (RFC 4291's deprecated form), ::/96 less :: and ::1. */
const COMPATIBLE = { first: 2n, last: 0xffffffffn };
/** IPv4-mapped IPv6 addresses, ::ffff:0:0/96. */
const MAPPED = { first: 0xffffn << 32n, last: (0xffffn << 32n) | 0xffffffffn };

/**
 * Parses a database's text; problems carry the line (1-based). With `only`, the ranges of other
 * countries are checked as text but not kept (the shipped database's 550,000 lines: 3 s whole).
 */
export function parseCountryCsv(text: string, only?: ReadonlySet<string>): { ranges: CountryRanges; problems: LineProblem[] } {
    const ranges: CountryRanges = { v4: new Map(), v6: new Map() };
    const problems: LineProblem[] = [];
    const lines = text.split("\n");
    for (let index = 0; index < lines.length; index++) {
        const line = lines[index].trim();
        if (line === "" || line.startsWith("#")) continue;
        const problem = (message: string) => problems.push({ line: index + 1, message });
        const fields = line.split(",");
        if (fields.length !== 3) {
            problem(`${JSON.stringify(line)} is not first,last,country`);
            continue;
        }
        const [firstText, lastText, country] = fields.map((field) => field.trim());
        // node's isIPv6 takes a zone index (fe80::1%eth0): no address of a set has one.
        if (firstText.includes("%") || lastText.includes("%")) {
            problem(`${JSON.stringify(firstText.includes("%") ? firstText : lastText)} has a zone index (%...): a range has none`);
            continue;
        }
        const family: Family | undefined = isIPv4(firstText) ? "v4" : isIPv6(firstText) ? "v6" : undefined;
        if (!family) {
            problem(`${JSON.stringify(firstText)} is not an IPv4 or IPv6 address`);
            continue;
        }
        if (!(family === "v4" ? isIPv4(lastText) : isIPv6(lastText))) {
            problem(`${JSON.stringify(lastText)} is not an ${family === "v4" ? "IPv4" : "IPv6"} address like the range's first one`);
            continue;
        }
        if (!/^[A-Z]{2}$/.test(country)) {
            problem(`${JSON.stringify(country)} is not a country code (two capital letters)`);
            continue;
        }
        if (only && !only.has(country)) continue;
        const first = addressNumber(family, firstText);
        const last = addressNumber(family, lastText);
        if (first > last) {
            problem(`${firstText} comes after ${lastText}: the range is empty`);
            continue;
        }
        // ipset prints these in the IPv4 form (::ffff:1.2.3.4): a set holding them would never match its digest.
        if (family === "v6" && first <= MAPPED.last && last >= MAPPED.first) {
            problem(`${firstText}-${lastText} holds IPv4-mapped addresses (::ffff:0:0/96): write the IPv4 range`);
            continue;
        }
        // A CIDR starting in ::2-::ffff:ffff (IPv4-compatible, deprecated) is printed by ipset as
        // ::1.2.3.4, so its set would never match its digest: a range that starts or ends there.
        const compatible = (address: bigint) => address >= COMPATIBLE.first && address <= COMPATIBLE.last;
        if (family === "v6" && (compatible(first) || (compatible(last) && last !== COMPATIBLE.last))) {
            problem(`${firstText}-${lastText} holds IPv4-compatible addresses (::/96, deprecated): write the IPv4 range`);
            continue;
        }
        const byCountry = ranges[family];
        let list = byCountry.get(country);
        if (!list) byCountry.set(country, (list = []));
        list.push({ first, last });
    }
    return { ranges, problems };
}

/** The ranges sorted and joined where they touch or overlap. */
export function mergeRanges(ranges: Range[]): Range[] {
    const sorted = [...ranges].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
    const merged: Range[] = [];
    for (const range of sorted) {
        const previous = merged.at(-1);
        if (previous && range.first <= previous.last + 1n) {
            if (range.last > previous.last) previous.last = range.last;
        } else merged.push({ ...range });
    }
    return merged;
}

/** Merged ranges without the addresses of `excluded` (merged ranges too): one sweep over both, in order. */
export function subtractRanges(ranges: Range[], excluded: Range[]): Range[] {
    const result: Range[] = [];
    let next = 0;
    for (const range of ranges) {
        while (next < excluded.length && excluded[next].last < range.first) next++;
        let first = range.first;
        for (let cut = next; cut < excluded.length && excluded[cut].first <= range.last && first <= range.last; cut++) {
            if (excluded[cut].first > first) result.push({ first, last: excluded[cut].first - 1n });
            if (excluded[cut].last >= first) first = excluded[cut].last + 1n;
        }
        if (first <= range.last) result.push({ first, last: range.last });
    }
    return result;
}

/**
 * The fewest CIDRs (of /1 or longer) covering exactly a range: from its start, the largest aligned block that does
 * not pass its end, again and again (a block's size is bounded by the start's lowest set bit).
 */
export function rangeToCidrs(family: Family, range: Range): string[] {
    const width = bits[family];
    const cidrs: string[] = [];
    let start = range.first;
    while (start <= range.last) {
        // The block's size as a power of two: the start's trailing zero bits, fewer while it passes the end.
        // At most half the family a block: ipset's hash:net takes no /0 (a range of every address is two /1s).
        let hostBits = start === 0n ? width - 1 : Math.min(width - 1, (start & -start).toString(2).length - 1);
        while (start + (1n << BigInt(hostBits)) - 1n > range.last) hostBits--;
        const address = formatAddress(family, start);
        cidrs.push(hostBits === 0 ? address : `${address}/${width - hostBits}`);
        start += 1n << BigInt(hostBits);
    }
    return cidrs;
}

/** A CIDR as its range (for the ranges a shipped database must not give a country). */
export function cidrRange(family: Family, cidr: string): Range {
    const [address, prefix] = cidr.split("/");
    const hostBits = BigInt(bits[family] - Number(prefix));
    const first = (addressNumber(family, address) >> hostBits) << hostBits;
    return { first, last: first + (1n << hostBits) - 1n };
}

/** The entries of a set holding `countries`' addresses, `excluded` left out: sorted (byte order), as ipset prints them. */
export function countryEntries(ranges: CountryRanges, countries: string[], excluded: Record<Family, Range[]> = { v4: [], v6: [] }): BlocklistEntries {
    const entries = (family: Family) => {
        const merged = mergeRanges(countries.flatMap((country) => ranges[family].get(country) ?? []));
        const kept = subtractRanges(merged, mergeRanges(excluded[family]));
        return kept.flatMap((range) => rangeToCidrs(family, range)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    };
    return { v4: entries("v4"), v6: entries("v6") };
}
