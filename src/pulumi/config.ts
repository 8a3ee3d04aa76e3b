// The stack config as the Pulumi engine hands it over: every `mor-harden:*` key, with secret
// keys decrypted. Secret values leave here only as secret Outputs; the config model keeps a
// reference in their place.
import { dirname } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { HOSTS_KEY, isSecretPath, parseEnvironment, type Environment, type EnvironmentHost } from "../config/environment";
import { ConfigError, PROJECT, secretKeys, type SecretKey } from "../config/schema";
import { secretsFromFiles, type SecretValues } from "../config/secrets";
import { inlineFiles, stackFilePath } from "../config/stack-file";

export interface PulumiEnvironment {
    environment: Environment;
    /** Every secret a host's artifacts or connection need (the environment's, then its own), as one secret Output. */
    secretsOf(host: EnvironmentHost): pulumi.Output<SecretValues>;
}

// Exported by the SDK's runtime at run time, left out of its typings; the pinned SDK version
// (3.248) is tested with it. It is how Config itself decides which keys are secret.
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret: (key: string) => boolean };

function parseValue(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

const isMap = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Pulumi marks a whole top-level key secret when any value under it is (`pulumi config set
 * --secret --path hosts.mor-2.tlsKey` makes `hosts` secret). Under `hosts`, the secret keys of
 * each host are taken as its secrets; the rest of `hosts` is plain settings.
 */
function hostSecrets(hosts: unknown): { hosts: unknown; plain: Record<string, SecretValues> } {
    if (!isMap(hosts)) return { hosts, plain: {} };
    const plain: Record<string, SecretValues> = {};
    const withReferences = Object.fromEntries(
        Object.entries(hosts).map(([name, entry]) => {
            if (!isMap(entry)) return [name, entry];
            const own: SecretValues = {};
            const values = Object.fromEntries(
                Object.entries(entry).map(([key, value]) => {
                    if (!isSecretPath([HOSTS_KEY, name, key]) || typeof value !== "string") return [key, value];
                    own[key as SecretKey] = value;
                    return [key, { secretRef: key }];
                }),
            );
            plain[name] = own;
            return [name, values];
        }),
    );
    return { hosts: withReferences, plain };
}

export function readPulumiConfig(stack = pulumi.getStack(), source = `stack ${stack}`): PulumiEnvironment {
    const raw: Record<string, unknown> = {};
    const plain: SecretValues = {};
    let plainOfHosts: Record<string, SecretValues> = {};
    const problems: string[] = [];
    for (const [fullKey, text] of Object.entries(pulumi.runtime.allConfig())) {
        const [namespace, key] = fullKey.split(":", 2);
        if (namespace !== PROJECT) continue;
        const secret = isConfigSecret(fullKey);
        if (secret && key === HOSTS_KEY) {
            const split = hostSecrets(parseValue(text));
            raw[key] = split.hosts;
            plainOfHosts = split.plain;
        } else if (secret && !isSecretPath([key])) {
            problems.push(
                `${key}: holds a secret, but only ${secretKeys.join(", ")} (at the top or in a host's entry) are read as secrets (keep the rest in plain config)`,
            );
        } else if (secret) {
            raw[key] = { secretRef: key };
            plain[key as SecretKey] = text;
        } else {
            // A secret key set in plain text stays a string here, and the schema refuses it.
            raw[key] = parseValue(text);
        }
    }
    if (problems.length > 0) throw new ConfigError(source, problems);
    // Relative paths in the stack (blocklist files) are relative to the stack file, as without Pulumi.
    const environment = parseEnvironment(raw, stack, source, { inlineFiles, baseDir: dirname(stackFilePath(stack)) });
    return {
        environment,
        secretsOf: (host) => pulumi.secret({ ...secretsFromFiles(host.config, host.source), ...plain, ...(plainOfHosts[host.name] ?? {}) }),
    };
}
