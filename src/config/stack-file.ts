// Reading stack files without Pulumi (for `render`, the direct apply and the drift check).
// Encrypted (`secure:`) values cannot be read without Pulumi: they become references, and
// the commands that need them take them from files, the ssh-agent or the environment.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { readBlocklistFile } from "../blocklists/parse";
import { COUNTRY_CODES } from "../countries/codes";
import { compileCountries } from "../countries/database";
import { isSecretPath, parseEnvironment, type Environment, type FileInliner } from "./environment";
import { ConfigError, formatIssue, PROJECT, secretKeys, type HostConfig, type Issue } from "./schema";

export const STACKS_DIR = "stacks";

const STACK_NAME = /^[A-Za-z0-9_.-]+$/;

export function stackFilePath(stack: string, projectDir = process.cwd()): string {
    if (!STACK_NAME.test(stack)) throw new ConfigError(stack, [`"${stack}" is not a stack name (letters, digits, '.', '_', '-')`]);
    return join(projectDir, STACKS_DIR, `Pulumi.${stack}.yaml`);
}

const isSecure = (value: unknown): boolean => typeof value === "object" && value !== null && !Array.isArray(value) && "secure" in value;

/** A value with its `secure:` leaves replaced by references to their key; one elsewhere is a problem. */
function secureAsReferences(value: unknown, path: (string | number)[], issues: Issue[]): unknown {
    if (isSecure(value)) {
        if (isSecretPath(path)) return { secretRef: path.at(-1) };
        issues.push({ path, message: `is a secret, but only ${secretKeys.join(", ")} are read as secrets (keep the rest in plain config)` });
        return undefined;
    }
    if (Array.isArray(value)) return value.map((item, index) => secureAsReferences(item, [...path, index], issues));
    if (typeof value === "object" && value !== null)
        return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, secureAsReferences(child, [...path, key], issues)]));
    return value;
}

/** The `mor-harden:*` keys of a parsed stack file, secure values replaced by references. */
export function projectValues(document: unknown, source: string): Record<string, unknown> {
    const config = (document as { config?: unknown } | null)?.config ?? {};
    if (typeof config !== "object" || config === null || Array.isArray(config)) throw new ConfigError(source, ["config: is not a map of keys"]);
    const issues: Issue[] = [];
    const raw: Record<string, unknown> = {};
    for (const [fullKey, value] of Object.entries(config)) {
        const [namespace, key] = fullKey.includes(":") ? fullKey.split(":", 2) : [PROJECT, fullKey];
        if (namespace !== PROJECT) continue;
        raw[key] = secureAsReferences(value, [key], issues);
    }
    if (issues.length > 0) throw new ConfigError(source, issues.map(formatIssue));
    return raw;
}

/** `apache.certificateFile` read into `apache.certificate` (the file is the operator's, not the host's). */
const inlineCertificate: FileInliner = (raw) => {
    const apache = raw.apache as Record<string, unknown> | undefined;
    if (!apache || typeof apache.certificateFile !== "string" || apache.certificate !== undefined) return { raw, issues: [] };
    try {
        return { raw: { ...raw, apache: { ...apache, certificate: readFileSync(apache.certificateFile, "utf8") } }, issues: [] };
    } catch (error) {
        return {
            raw,
            issues: [
                {
                    path: ["apache", "certificateFile"],
                    message: `cannot read ${JSON.stringify(apache.certificateFile)} (${(error as NodeJS.ErrnoException).code})`,
                },
            ],
        };
    }
};

/** Each `firewall.blocklists[i].file` read and parsed into its `entries`; bad lines name the file and line. */
const inlineBlocklists: FileInliner = (raw, baseDir) => {
    const firewall = raw.firewall as Record<string, unknown> | undefined;
    if (!firewall || !Array.isArray(firewall.blocklists)) return { raw, issues: [] };
    const issues: Issue[] = [];
    const blocklists = firewall.blocklists.map((list: unknown, index) => {
        if (typeof list !== "object" || list === null || typeof (list as { file?: unknown }).file !== "string") return list;
        const file = (list as { file: string }).file;
        const read = readBlocklistFile(resolve(baseDir, file));
        for (const problem of read.problems) issues.push({ path: ["firewall", "blocklists", index, "file"], message: problem });
        return read.entries ? { ...list, entries: read.entries } : list;
    });
    return { raw: { ...raw, firewall: { ...firewall, blocklists } }, issues };
};

/**
 * `firewall.countries`' sets compiled from its database into `compiled`. Only rules the schema
 * will accept are compiled: a bad code is the schema's error, named before the database is read.
 */
const inlineCountries: FileInliner = (raw, baseDir) => {
    const firewall = raw.firewall as Record<string, unknown> | undefined;
    const countries = firewall?.countries as Record<string, unknown> | undefined;
    if (!firewall || typeof countries !== "object" || countries === null) return { raw, issues: [] };
    // The sets come from the database only: a stack's own `compiled` would bypass it (and its checks).
    if (countries.compiled !== undefined)
        return { raw, issues: [{ path: ["firewall", "countries", "compiled"], message: "is not a setting: the sets are compiled from the country database" }] };
    const codes = (value: unknown): value is string[] => Array.isArray(value) && value.every((code) => typeof code === "string" && COUNTRY_CODES.has(code));
    const block = countries.block ?? [];
    const services = countries.services ?? {};
    if (!codes(block) || typeof services !== "object" || services === null || !Object.values(services).every((list) => codes(list) && list.length > 0))
        return { raw, issues: [] };
    if (countries.database !== undefined && typeof countries.database !== "string") return { raw, issues: [] };
    if (block.length === 0 && Object.keys(services).length === 0) return { raw, issues: [] };
    const read = compileCountries({ database: countries.database, block, services: services as Record<string, string[]> }, baseDir);
    const issues = read.problems.map((message) => ({ path: ["firewall", "countries", "database"], message }));
    return { raw: read.compiled ? { ...raw, firewall: { ...firewall, countries: { ...countries, compiled: read.compiled } } } : raw, issues };
};

export const inlineFiles: FileInliner = (raw, baseDir) => {
    const certificate = inlineCertificate(raw, baseDir);
    const blocklists = inlineBlocklists(certificate.raw, baseDir);
    const countries = inlineCountries(blocklists.raw, baseDir);
    return { raw: countries.raw, issues: [...certificate.issues, ...blocklists.issues, ...countries.issues] };
};

export function parseStackDocument(text: string, source: string, stack: string): Environment {
    let document: unknown;
    try {
        document = parse(text);
    } catch (error) {
        throw new ConfigError(source, [`is not YAML: ${(error as Error).message.split("\n")[0]}`]);
    }
    return parseEnvironment(projectValues(document, source), stack, source, { inlineFiles });
}

/** A stack by name (stacks/Pulumi.NAME.yaml) or a stack file by path, as an environment. */
export function loadEnvironment(target: { stack?: string; file?: string }, projectDir = process.cwd()): Environment {
    const path = target.file ? resolve(target.file) : stackFilePath(target.stack!, projectDir);
    let text: string;
    try {
        text = readFileSync(path, "utf8");
    } catch (error) {
        throw new ConfigError(path, [`cannot read the stack file (${(error as NodeJS.ErrnoException).code})`]);
    }
    const name = target.stack ?? path.replace(/^.*Pulumi\.([^/]+)\.yaml$/, "$1").replace(/^.*\//, "");
    // The name goes into managed files' headers and host scripts: the same rule as a stack's name.
    if (!STACK_NAME.test(name))
        throw new ConfigError(path, [
            `the stack name "${name}" taken from the file's name is not a stack name (letters, digits, '.', '_', '-'): rename the file`,
        ]);
    return parseStackDocument(text, path, name);
}

/** The one host of a single-host stack (tests and tools that work on one host). */
export function loadStackConfig(target: { stack?: string; file?: string }, projectDir = process.cwd()): { source: string; name: string; config: HostConfig } {
    const environment = loadEnvironment(target, projectDir);
    if (environment.hosts.length !== 1) throw new ConfigError(environment.source, [`hosts: has ${environment.hosts.length} hosts; one was expected here`]);
    const [host] = environment.hosts;
    return { source: host.source, name: host.label, config: host.config };
}
