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
    return values;
}

/** For commands run without Pulumi (apply, drift): secrets from files named in the config, or the environment. */
export const secretEnvironment: Record<SecretKey, string> = {
    privateKey: "MOR_HARDEN_PRIVATE_KEY",
    privateKeyPassphrase: "MOR_HARDEN_PRIVATE_KEY_PASSPHRASE",
    tlsKey: "MOR_HARDEN_TLS_KEY",
};

export function secretsWithoutPulumi(config: HostConfig, source: string, env: NodeJS.ProcessEnv = process.env): SecretValues {
    const fromEnv = Object.fromEntries(Object.entries(secretEnvironment).filter(([, name]) => env[name]).map(([key, name]) => [key, env[name]])) as SecretValues;
    return { ...fromEnv, ...secretsFromFiles(config, source) };
}
