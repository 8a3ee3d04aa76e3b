// From a host's config and secrets to how the engine reaches it.
import type { HostConfig } from "../config/schema";
import type { SecretValues } from "../config/secrets";
import type { HostTarget } from "./engine";

export function hostTarget(config: HostConfig, secrets: SecretValues, env: NodeJS.ProcessEnv = process.env): HostTarget {
    const { connection } = config;
    if (!secrets.privateKey && !(connection.agent && env.SSH_AUTH_SOCK)) {
        throw new Error("no SSH key: set the secret privateKey, connection.privateKeyFile, MOR_HARDEN_PRIVATE_KEY, or run an ssh-agent (connection.agent)");
    }
    return {
        os: config.os,
        confirmSeconds: connection.confirmTimeout,
        session: {
            address: connection.address,
            port: connection.port,
            user: connection.user,
            hostKey: connection.hostKey,
            sudo: connection.sudo,
            privateKey: secrets.privateKey,
            passphrase: secrets.privateKeyPassphrase,
            agent: secrets.privateKey ? undefined : env.SSH_AUTH_SOCK,
            connectTimeoutSeconds: connection.connectTimeout,
            commandTimeoutSeconds: connection.commandTimeout,
        },
    };
}
