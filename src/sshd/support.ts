// Kolmisoft support's way in under key-only sshd (sshd.support): their keys in a file sshd also
// reads, or passwords from their addresses only. See the schema for the risk of passwords.
import { addressesOf } from "../config/resolve";
import { file, type Artifact } from "../render/artifact";
import type { RenderInput } from "../render/input";

/** Where support's keys live: one file per user, root's own, beside sshd's config, not in a home directory. */
export const SUPPORT_KEYS_DIR = "/etc/ssh/mor-harden-support";
const DEFAULT_KEYS_FILES = ".ssh/authorized_keys .ssh/authorized_keys2";

/** One sshd_config line and why it is there (the drop-in's, and support's). */
export interface Directive {
    keyword: string;
    value: string;
    /** How `sshd -T` prints the value when it differs from what is written. */
    effective?: string;
    why: string;
}

export interface SupportMatch {
    criteria: string;
    why: string;
    directives: { keyword: string; value: string }[];
    /** `sshd -T -C` connection specs and the lines each must show. */
    checks: { spec: string; expect: string[] }[];
}

export interface SupportAccessPlan {
    directives: Directive[];
    match?: SupportMatch;
    artifacts: Artifact[];
}

function supportAddresses(input: RenderInput): string[] {
    const { sources } = input.config.sshd.support;
    const addresses = [...addressesOf(sources, input.sources, "v4"), ...addressesOf(sources, input.sources, "v6")];
    if (addresses.length === 0) throw new Error(`sshd.support: ${sources.join(", ")} resolved to no address`);
    return addresses;
}

export function supportAccess(input: RenderInput): SupportAccessPlan {
    const support = input.config.sshd.support;
    if (support.mode === "off") return { directives: [], artifacts: [] };
    const addresses = supportAddresses(input);
    if (support.mode === "keys") {
        // from=: a copied key is still useless from anywhere else.
        const keys = support.keys.map((key) => `from="${addresses.join(",")}",no-agent-forwarding,no-X11-forwarding ${key}`).join("\n") + "\n";
        return {
            directives: [
                {
                    keyword: "AuthorizedKeysFile",
                    value: `${DEFAULT_KEYS_FILES} ${SUPPORT_KEYS_DIR}/%u.keys`,
                    why: "Kolmisoft support's keys (sshd.support), managed apart from the users' own files",
                },
            ],
            artifacts: [file(`${SUPPORT_KEYS_DIR}/${support.user}.keys`, keys, { mode: "0644" })],
        };
    }
    const root = support.user === "root";
    return {
        directives: [],
        artifacts: [],
        match: {
            criteria: `User ${support.user} Address ${addresses.join(",")}`,
            why: "Kolmisoft support may use a password, from its addresses only (sshd.support: password; see the README for the risk)",
            directives: [
                { keyword: "PasswordAuthentication", value: "yes" },
                { keyword: "AuthenticationMethods", value: "publickey password" },
                ...(root ? [{ keyword: "PermitRootLogin", value: "yes" }] : []),
            ],
            checks: [
                {
                    spec: `user=${support.user},host=support,addr=${addresses[0]}`,
                    expect: ["passwordauthentication yes", "authenticationmethods publickey password"],
                },
                {
                    spec: `user=${support.user},host=other,addr=${addresses[0].includes(":") ? "2001:db8:ffff::1" : "192.0.2.254"}`,
                    expect: ["passwordauthentication no", "authenticationmethods publickey"],
                },
            ],
        },
    };
}
