// Which country database a stack's `firewall.countries` reads, and its sets compiled from it when
// the stack is loaded (before any host is touched): the one shipped with mor-harden (an npm
// dependency pinned by version, updated with the package) or the operator's `database: FILE`.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Family } from "../config/family";
import { isEntries, type BlocklistEntries } from "../blocklists/parse";
import { privateCacheDir, readCacheEntry, writeCacheEntry } from "../render/user-cache";
import { cidrRange, countryEntries, parseCountryCsv, type CountryRanges, type Range } from "./source";

/** The shipped database: ip-location-db's "GeoFeed + Whois + ASN" country CSVs. */
const SHIPPED_PACKAGE = "@ip-location-db/geo-whois-asn-country";
const SHIPPED_FILES: Record<Family, string> = { v4: "geo-whois-asn-country-ipv4.csv", v6: "geo-whois-asn-country-ipv6.csv" };
/**
 * Its package.json says CC0-1.0, but the data is the RIRs' (through the NRO), and the package's
 * README and NRO_LICENSE say CC BY 4.0 with attribution to nro.net: the stricter one is named.
 */
const SHIPPED_LICENCE = "CC BY 4.0, data by the NRO (nro.net), as the package's NRO_LICENSE says (its package.json says CC0-1.0)";

/**
 * Ranges the shipped database must never give a country (IANA's special-purpose registries, RFC
 * 6890 and later): its data has known errors there (192.168.0.0/16 and the documentation ranges
 * given to AU, 2001:db8::/32 to JP), and a country set must never catch private, lab or
 * link-local addresses. The operator's own database is taken as it is.
 */
export const SPECIAL_PURPOSE: Record<Family, string[]> = {
    v4: [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    ],
    v6: [
        "::/127",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "3fff::/20",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ],
};

/** What the preview names: the database a stack's country sets come from. */
export interface CountryDatabase {
    name: string;
    version: string;
    date: string;
    licence: string;
}

/** The sets of a stack's `firewall.countries`: the blocked countries', and each restricted service's. */
export interface CompiledCountries {
    database: CountryDatabase;
    block: BlocklistEntries;
    services: Record<string, BlocklistEntries>;
}

export interface CountryRules {
    database?: string;
    block: string[];
    services: Record<string, string[]>;
}

interface DatabaseFiles {
    describe: CountryDatabase;
    /** Each file's path and bytes; the shipped database has one a family. */
    /** Each file's path and how to read it (read only when the sets are not in a cache). */
    files: { path: string; read: () => Buffer }[];
    /** What identifies the content: the shipped package's name and version, an own file's sha256. */
    digest: string;
    excluded: Record<Family, Range[]>;
    shipped: boolean;
}

/** The shipped database's files, one a family. */
export function shippedDatabasePaths(): string[] {
    const dir = dirname(require.resolve(`${SHIPPED_PACKAGE}/package.json`));
    return Object.values(SHIPPED_FILES).map((name) => join(dir, name));
}

function shippedDatabase(): DatabaseFiles {
    const packageJson = require.resolve(`${SHIPPED_PACKAGE}/package.json`);
    const { version } = JSON.parse(readFileSync(packageJson, "utf8")) as { version: string };
    // The version's last part is the data's date and hour: 2.3.2026061719 is 2026-06-17, 19h.
    const stamp = /\.(\d{4})(\d{2})(\d{2})\d{2}$/.exec(version);
    // Read only to compile: the package's version names its content (23 MB hashed at every load otherwise).
    const files = shippedDatabasePaths().map((path) => ({ path, read: () => readFileSync(path) }));
    const excluded = { v4: SPECIAL_PURPOSE.v4.map((cidr) => cidrRange("v4", cidr)), v6: SPECIAL_PURPOSE.v6.map((cidr) => cidrRange("v6", cidr)) };
    return {
        describe: { name: SHIPPED_PACKAGE, version, date: stamp ? `${stamp[1]}-${stamp[2]}-${stamp[3]}` : "unknown", licence: SHIPPED_LICENCE },
        files,
        digest: createHash("sha256").update(`${SHIPPED_PACKAGE}@${version}`).digest("hex"),
        excluded,
        shipped: true,
    };
}

/**
 * The operator's database, named as the stack names it and by its content (never by where this
 * checkout is or when the file was touched: the preview and Pulumi's outputs are the same on
 * every workstation for the same file).
 */
function ownDatabase(path: string, asWritten: string): DatabaseFiles {
    const bytes = readFileSync(path);
    const digest = createHash("sha256").update(bytes).digest("hex");
    return {
        describe: {
            name: asWritten,
            version: `sha256 ${digest.slice(0, 12)}`,
            date: "",
            licence: "the operator's own",
        },
        files: [{ path, read: () => bytes }],
        digest,
        excluded: { v4: [], v6: [] },
        shipped: false,
    };
}

/** Changed whenever compiling gives other sets for the same database and rules (the cache's key holds it). */
const COMPILE_VERSION = 2;

/** Compiled sets kept in the user's cache; the oldest go first. */
const KEPT_COMPILED = 16;

/** Compiled sets read back from the cache; an entry of another shape compiles again (it is the operator's own file: render/user-cache.ts). */
function compiledBefore(dir: string | undefined, key: string): Omit<CompiledCountries, "database"> | undefined {
    const kept = readCacheEntry(dir, key) as Partial<Omit<CompiledCountries, "database">> | undefined;
    if (!kept || !isEntries(kept.block) || typeof kept.services !== "object" || kept.services === null || !Object.values(kept.services).every(isEntries))
        return undefined;
    return { block: kept.block, services: kept.services };
}

const compiledInProcess = new Map<string, { compiled?: CompiledCountries; problems: string[] }>();
const parsedInProcess = new Map<string, { ranges: CountryRanges; problems: string[] }>();

function parseFiles(database: DatabaseFiles, digest: string, wanted: string[]): { ranges: CountryRanges; problems: string[] } {
    // The shipped database keeps only the wanted countries' ranges; the operator's is checked whole.
    const only = database.shipped ? new Set(wanted) : undefined;
    const key = only ? `${digest} ${[...only].sort().join(" ")}` : digest;
    const kept = parsedInProcess.get(key);
    if (kept) return kept;
    const ranges: CountryRanges = { v4: new Map(), v6: new Map() };
    const problems: string[] = [];
    for (const file of database.files) {
        const parsed = parseCountryCsv(file.read().toString("utf8"), only);
        problems.push(...parsed.problems.slice(0, 20).map((problem) => `${file.path}:${problem.line}: ${problem.message}`));
        if (parsed.problems.length > 20) problems.push(`${file.path}: ${parsed.problems.length - 20} more bad lines`);
        for (const family of ["v4", "v6"] as const) {
            for (const [country, list] of parsed.ranges[family]) ranges[family].set(country, [...(ranges[family].get(country) ?? []), ...list]);
        }
    }
    const result = { ranges, problems };
    parsedInProcess.set(key, result);
    return result;
}

/**
 * The sets of `rules` from their database (relative paths from `baseDir`): once per process, and
 * across processes from the user's cache by the database's digest and the rules. Problems name
 * the file and line (a bad database) or the file (one that cannot be read).
 */
export function compileCountries(rules: CountryRules, baseDir: string): { compiled?: CompiledCountries; problems: string[] } {
    let database: DatabaseFiles;
    const path = rules.database === undefined ? undefined : resolve(baseDir, rules.database);
    try {
        database = path === undefined ? shippedDatabase() : ownDatabase(path, rules.database!);
    } catch (error) {
        const where = path ?? SHIPPED_PACKAGE;
        return {
            problems: [`cannot read the country database ${JSON.stringify(where)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`],
        };
    }
    const digest = database.digest;
    const sortedServices = Object.keys(rules.services).sort();
    const wanted = { block: [...rules.block].sort(), services: sortedServices.map((name) => [name, [...rules.services[name]].sort()]) };
    // What else decides the sets: which ranges are left out, and how sets are compiled.
    const key = createHash("sha256")
        .update(
            `${COMPILE_VERSION}\n${digest}\n${JSON.stringify(database.excluded, (_, value) => (typeof value === "bigint" ? value.toString(16) : value))}\n${JSON.stringify(wanted)}`,
        )
        .digest("hex");
    const known = compiledInProcess.get(key);
    if (known) return known;
    const dir = privateCacheDir("countries");
    const kept = compiledBefore(dir, key);
    let result: { compiled?: CompiledCountries; problems: string[] };
    if (kept) {
        result = { compiled: { database: database.describe, ...kept }, problems: [] };
    } else {
        const parsed = parseFiles(database, digest, [...rules.block, ...Object.values(rules.services).flat()]);
        if (parsed.problems.length > 0) {
            result = { problems: parsed.problems };
        } else {
            const sets = {
                block: countryEntries(parsed.ranges, rules.block, database.excluded),
                services: Object.fromEntries(sortedServices.map((name) => [name, countryEntries(parsed.ranges, rules.services[name], database.excluded)])),
            };
            writeCacheEntry(dir, key, sets, KEPT_COMPILED);
            result = { compiled: { database: database.describe, ...sets }, problems: [] };
        }
    }
    compiledInProcess.set(key, result);
    return result;
}
