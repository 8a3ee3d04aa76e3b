// Reading stack files without Pulumi (for `render`, the direct apply and the drift check).
// Encrypted (`secure:`) values cannot be read without Pulumi: they become references, and
// the commands that need them take them from files, the ssh-agent or the environment.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { ConfigError, parseHostConfig, PROJECT, secretKeys, type HostConfig } from "./schema";

export const STACKS_DIR = "stacks";

export function stackFilePath(stack: string, projectDir = process.cwd()): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new ConfigError(stack, [`"${stack}" is not a stack name (letters, digits, '.', '_', '-')`]);
    return join(projectDir, STACKS_DIR, `Pulumi.${stack}.yaml`);
}

/** The `mor-harden:*` keys of a parsed stack file, secure values replaced by references. */
export function projectValues(document: unknown, source: string): Record<string, unknown> {
    const config = (document as { config?: unknown } | null)?.config ?? {};
    if (typeof config !== "object" || config === null || Array.isArray(config)) throw new ConfigError(source, ["config: is not a map of keys"]);
    const problems: string[] = [];
    const raw: Record<string, unknown> = {};
    for (const [fullKey, value] of Object.entries(config)) {
        const [namespace, key] = fullKey.includes(":") ? fullKey.split(":", 2) : [PROJECT, fullKey];
        if (namespace !== PROJECT) continue;
        const secure = typeof value === "object" && value !== null && "secure" in value;
        if (secure && !(secretKeys as readonly string[]).includes(key)) {
            problems.push(`${key}: is a secret, but only ${secretKeys.join(", ")} are read as secrets (keep the rest in plain config)`);
            continue;
        }
        raw[key] = secure ? { secretRef: key } : value;
    }
    if (problems.length > 0) throw new ConfigError(source, problems);
    return raw;
}

/** `apache.certificateFile` read into `apache.certificate` (the file is the operator's, not the host's). */
export function inlineFiles(raw: Record<string, unknown>, source: string): Record<string, unknown> {
    const apache = raw.apache as Record<string, unknown> | undefined;
    if (!apache || typeof apache.certificateFile !== "string" || apache.certificate !== undefined) return raw;
    try {
        return { ...raw, apache: { ...apache, certificate: readFileSync(apache.certificateFile, "utf8") } };
    } catch (error) {
        throw new ConfigError(source, [`apache.certificateFile: cannot read ${JSON.stringify(apache.certificateFile)} (${(error as NodeJS.ErrnoException).code})`]);
    }
}

export function parseStackDocument(text: string, source: string): HostConfig {
    let document: unknown;
    try {
        document = parse(text);
    } catch (error) {
        throw new ConfigError(source, [`is not YAML: ${(error as Error).message.split("\n")[0]}`]);
    }
    return parseHostConfig(inlineFiles(projectValues(document, source), source), source);
}

/** A stack by name (stacks/Pulumi.NAME.yaml) or a config file path. */
export function loadStackConfig(target: { stack?: string; file?: string }, projectDir = process.cwd()): { source: string; name: string; config: HostConfig } {
    const path = target.file ? resolve(target.file) : stackFilePath(target.stack!, projectDir);
    let text: string;
    try {
        text = readFileSync(path, "utf8");
    } catch (error) {
        throw new ConfigError(path, [`cannot read the stack file (${(error as NodeJS.ErrnoException).code})`]);
    }
    const name = target.stack ?? path.replace(/^.*Pulumi\.([^/]+)\.yaml$/, "$1").replace(/^.*\//, "");
    return { source: path, name, config: parseStackDocument(text, path) };
}
