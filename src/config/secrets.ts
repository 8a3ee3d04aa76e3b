// Where secret values come from when they are files on the operator's machine instead of Pulumi
// secrets. Read here, on the operator's side, and only ever handed on as secrets.
import { readFileSync } from "node:fs";
import { ConfigError, type HostConfig, type SecretKey } from "./schema";

export type SecretValues = Partial<Record<SecretKey, string>>;

/** The secrets a config takes from files (`connection.privateKeyFile`, `apache.keyFile`). */
export function secretsFromFiles(config: HostConfig, source: string): SecretValues {
    const read = (key: string, path: string) => {
        try {
            return readFileSync(path, "utf8");
        } catch (error) {
            throw new ConfigError(source, [`${key}: cannot read ${JSON.stringify(path)} (${(error as NodeJS.ErrnoException).code})`]);
        }
    };
    const values: SecretValues = {};
    if (config.connection.privateKeyFile) values.privateKey = read("connection.privateKeyFile", config.connection.privateKeyFile);
    if (config.apache.enabled && config.apache.keyFile) values.tlsKey = read("apache.keyFile", config.apache.keyFile);
    if (config.knocking.mode === "spa" && config.knocking.spa.keyFile) {
        const keys = parseFwknopKeys(read("knocking.spa.keyFile", config.knocking.spa.keyFile));
        if (!keys)
            throw new ConfigError(source, [
                "knocking.spa.keyFile: holds no KEY_BASE64 and HMAC_KEY_BASE64 lines (as `fwknop --key-gen` or `mor-harden knock --key-gen` print them)",
            ]);
        values.knockKey = keys.key;
        values.knockHmacKey = keys.hmacKey;
    }
    return values;
}

/** `KEY_BASE64: ...` and `HMAC_KEY_BASE64: ...` lines, as `fwknop --key-gen` prints them. */
export function parseFwknopKeys(text: string): { key: string; hmacKey: string } | undefined {
    const key = /^KEY_BASE64:?\s+([A-Za-z0-9+/=]+)\s*$/m.exec(text)?.[1];
    const hmacKey = /^HMAC_KEY_BASE64:?\s+([A-Za-z0-9+/=]+)\s*$/m.exec(text)?.[1];
    return key && hmacKey ? { key, hmacKey } : undefined;
}

/** For commands run without Pulumi (apply, drift): secrets from files named in the config, or the environment. */
export const secretEnvironment: Record<SecretKey, string> = {
    privateKey: "MOR_HARDEN_PRIVATE_KEY",
    privateKeyPassphrase: "MOR_HARDEN_PRIVATE_KEY_PASSPHRASE",
    tlsKey: "MOR_HARDEN_TLS_KEY",
    knockKey: "MOR_HARDEN_KNOCK_KEY",
    knockHmacKey: "MOR_HARDEN_KNOCK_HMAC_KEY",
};

/**
 * The variable for one host: the name upper-cased, every other character `_`, after two
 * underscores (MOR_HARDEN_TLS_KEY__MOR_2 for host mor-2). Host names are lower-case DNS labels,
 * so no two hosts of an environment share a variable.
 */
export function hostSecretVariable(key: SecretKey, host: string): string {
    return `${secretEnvironment[key]}__${host.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/** Files the config names first, then the host's own variable, then the one for every host. */
export function secretsWithoutPulumi(config: HostConfig, source: string, env: NodeJS.ProcessEnv = process.env, host?: string): SecretValues {
    const values: SecretValues = {};
    for (const key of Object.keys(secretEnvironment) as SecretKey[]) {
        const value = (host ? env[hostSecretVariable(key, host)] : undefined) || env[secretEnvironment[key]];
        if (value) values[key] = value;
    }
    return { ...values, ...secretsFromFiles(config, source) };
}
