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
        if (!keys) throw new ConfigError(source, ["knocking.spa.keyFile: holds no KEY_BASE64 and HMAC_KEY_BASE64 lines (as `fwknop --key-gen` or `mor-harden knock --key-gen` print them)"]);
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

export function secretsWithoutPulumi(config: HostConfig, source: string, env: NodeJS.ProcessEnv = process.env): SecretValues {
    const fromEnv = Object.fromEntries(Object.entries(secretEnvironment).filter(([, name]) => env[name]).map(([key, name]) => [key, env[name]])) as SecretValues;
    return { ...fromEnv, ...secretsFromFiles(config, source) };
}
