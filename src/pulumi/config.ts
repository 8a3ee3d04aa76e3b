// The stack config as the Pulumi engine hands it over: every `mor-harden:*` key, with secret
// keys decrypted. Secret values leave here only as secret Outputs; the config model keeps a
// reference in their place.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseHostConfig, PROJECT, secretKeys, type HostConfig, type SecretKey } from "../config/schema";
import { secretsFromFiles } from "../config/secrets";
import { inlineFiles } from "../config/stack-file";

export interface PulumiHostConfig {
    config: HostConfig;
    /** Every secret the host's artifacts or connection need, as one secret Output. */
    secrets: pulumi.Output<Partial<Record<SecretKey, string>>>;
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

export function readPulumiConfig(source = `stack ${pulumi.getStack()}`): PulumiHostConfig {
    const raw: Record<string, unknown> = {};
    const plain: Partial<Record<SecretKey, string>> = {};
    const problems: string[] = [];
    for (const [fullKey, text] of Object.entries(pulumi.runtime.allConfig())) {
        const [namespace, key] = fullKey.split(":", 2);
        if (namespace !== PROJECT) continue;
        const secret = isConfigSecret(fullKey);
        const isSecretKey = (secretKeys as readonly string[]).includes(key);
        if (secret && !isSecretKey) {
            problems.push(`${key}: holds a secret, but only ${secretKeys.join(", ")} are read as secrets (keep the rest in plain config)`);
        } else if (secret) {
            raw[key] = { secretRef: key };
            plain[key as SecretKey] = text;
        } else {
            // A secret key set in plain text stays a string here, and the schema refuses it.
            raw[key] = parseValue(text);
        }
    }
    if (problems.length > 0) throw new ConfigError(source, problems);
    const config = parseHostConfig(inlineFiles(raw, source), source);
    return { config, secrets: pulumi.secret({ ...secretsFromFiles(config, source), ...plain }) };
}
