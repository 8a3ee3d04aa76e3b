// From a host's config and secrets to how the engine reaches it.
import type { HostConfig } from "../config/schema";
import type { SecretValues } from "../config/secrets";
import { knockSpecOf, sendKnock, spaKeysOf, type KnockSpec } from "../knocking/client";
import type { SessionTarget } from "../ssh/session";
import type { HostTarget } from "./engine";

/** The connection without its secrets or code (what a Pulumi resource may keep in plain state). */
export type PlainSession = Omit<SessionTarget, "privateKey" | "passphrase" | "preConnect"> & { knock?: KnockSpec };

export function sessionFor(config: HostConfig, env: NodeJS.ProcessEnv = process.env): PlainSession {
    const { connection } = config;
    const knock = knockSpecOf(config);
    return {
        ...(knock ? { knock } : {}),
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

/**
 * A connectable session: the secrets in, and the knock (when the host hides SSH behind one) sent
 * before every connection, the commit-confirm login included, with a fresh SPA packet each time.
 * `previous` is the connection as the host was last set up (Pulumi's olds): while a change of
 * knocking settings is on its way, the host still wants the old knock, so both are sent.
 */
export function connectable(plain: PlainSession, secrets: SecretValues, previous?: { session: PlainSession; secrets: SecretValues }): SessionTarget {
    const { knock, ...session } = plain;
    const knocks = [
        ...(previous?.session.knock && JSON.stringify(previous.session.knock) !== JSON.stringify(knock)
            ? [{ spec: previous.session.knock, keys: spaKeysOf(previous.secrets) }]
            : []),
        ...(knock ? [{ spec: knock, keys: spaKeysOf(secrets) }] : []),
    ];
    return {
        ...session,
        agent: secrets.privateKey ? undefined : session.agent,
        privateKey: secrets.privateKey,
        passphrase: secrets.privateKeyPassphrase,
        ...(knocks.length > 0
            ? {
                  preConnect: async () => {
                      for (const { spec, keys } of knocks) await sendKnock(spec, session.address, keys);
                  },
              }
            : {}),
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
        session: connectable(session, secrets),
    };
}
