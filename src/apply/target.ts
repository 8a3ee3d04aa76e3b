// From a host's config and secrets to how the engine reaches it.
import type { HostConfig } from "../config/schema";
import type { SecretValues } from "../config/secrets";
import type { SessionTarget } from "../ssh/session";
import type { HostTarget } from "./engine";

/** The connection without its secrets (what a Pulumi resource may keep in plain state). */
export function sessionFor(config: HostConfig, env: NodeJS.ProcessEnv = process.env): Omit<SessionTarget, "privateKey" | "passphrase"> {
    const { connection } = config;
    return {
        address: connection.address,
        port: connection.port,
        user: connection.user,
        hostKey: connection.hostKey,
        sudo: connection.sudo,
        agent: connection.agent ? env.SSH_AUTH_SOCK : undefined,
        connectTimeoutSeconds: connection.connectTimeout,
        commandTimeoutSeconds: connection.commandTimeout,
    };
}

export function hostTarget(config: HostConfig, secrets: SecretValues, env: NodeJS.ProcessEnv = process.env): HostTarget {
    const session = sessionFor(config, env);
    if (!secrets.privateKey && !session.agent) {
        throw new Error("no SSH key: set the secret privateKey, connection.privateKeyFile, MOR_HARDEN_PRIVATE_KEY, or run an ssh-agent (connection.agent)");
    }
    return {
        os: config.os,
        confirmSeconds: config.connection.confirmTimeout,
        session: { ...session, agent: secrets.privateKey ? undefined : session.agent, privateKey: secrets.privateKey, passphrase: secrets.privateKeyPassphrase },
    };
}
