// An sshd drop-in that wins over the distribution's and cloud-init's drop-ins.
//
// sshd keeps the FIRST value it reads for most keywords and reads sshd_config.d/*.conf in
// lexical order where sshd_config includes them (at its top on Debian 12 and RHEL 9), so
// 00-mor-harden.conf beats 50-cloud-init.conf's `PasswordAuthentication yes`. The effective
// configuration (`sshd -T`) is what is judged, before the reload and after it.
import { addressesOf } from "../config/resolve";
import { atLeast } from "../config/os";
import { trustedSources } from "../firewall/schema";
import { sshdPorts } from "./ports";
import { file, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { waitUntil } from "../render/shell";
import { supportAccess, type Directive } from "./support";

export const DROP_IN = "/etc/ssh/sshd_config.d/00-mor-harden.conf";

const yesNo = (value: boolean) => (value ? "yes" : "no");

/** Modern algorithms, chosen by the server's version (Mozilla/ssh-audit guidance). */
function algorithms(openssh: [number, number]) {
    return {
        kex: [
            ...(atLeast(openssh, 9, 9) ? ["mlkem768x25519-sha256"] : []),
            ...(atLeast(openssh, 8, 5) ? ["sntrup761x25519-sha512@openssh.com"] : []),
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
        ],
        ciphers: ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr"],
        macs: ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"],
        hostKeys: ["ssh-ed25519", "sk-ssh-ed25519@openssh.com", "rsa-sha2-512", "rsa-sha2-256"],
    };
}

/** The directives of the drop-in, in order, each with why. Pure, tested directly. */
export function sshdDirectives(input: RenderInput): Directive[] {
    const { sshd, os, firewall } = input.config;
    const openssh = input.facts.openssh;
    if (!atLeast(openssh, 8, 2)) {
        throw new Error(`sshd: OpenSSH ${openssh.join(".")} cannot include sshd_config.d drop-ins (8.2+ needed); upgrade the host first`);
    }
    const d = (keyword: string, value: string, why: string, effective?: string): Directive => ({ keyword, value, why, effective });
    const directives: Directive[] = [
        ...sshdPorts(input.config).map((port, index) =>
            d(
                "Port",
                String(port),
                index === 0 ? "the port the firewall opens for SSH" : "connection.port, where mor-harden logs in, until it follows sshd.port (SSH is moving)",
            ),
        ),
        d("PasswordAuthentication", "no", "keys only: passwords are what brute force guesses"),
        d("KbdInteractiveAuthentication", "no", "PAM's keyboard-interactive would ask for a password anyway"),
        d("PubkeyAuthentication", "yes", "the one way in"),
        d("AuthenticationMethods", "publickey", "nothing else counts, whatever PAM says"),
        d("PermitEmptyPasswords", "no", "never"),
        d(
            "PermitRootLogin",
            sshd.permitRootLogin,
            "root by key only (or not at all)",
            sshd.permitRootLogin === "prohibit-password" ? "without-password" : undefined,
        ),
        d("MaxAuthTries", String(sshd.maxAuthTries), "each key an agent offers is one try: too low locks out agents with several keys"),
        d("LoginGraceTime", String(sshd.loginGraceTime), "unauthenticated connections do not linger"),
        d("MaxStartups", sshd.maxStartups, "caps unauthenticated connections in all"),
    ];
    if (atLeast(openssh, 8, 5)) {
        directives.push(d("PerSourceMaxStartups", String(sshd.perSourceMaxStartups), "caps unauthenticated connections per source (8.5+)"));
        directives.push(d("PerSourceNetBlockSize", "32:128", "counts sources per address"));
    }
    if (atLeast(openssh, 9, 8)) {
        directives.push(d("PerSourcePenalties", yesNo(sshd.perSourcePenalties), "sshd's own penalties for misbehaving sources (9.8+)"));
        const exempt = ["v4", "v6"].flatMap((family) => addressesOf(trustedSources(firewall), input.sources, family as "v4" | "v6"));
        if (sshd.perSourcePenalties && exempt.length > 0) {
            directives.push(d("PerSourcePenaltyExemptList", exempt.join(","), "trusted sources are never penalised"));
        }
    }
    directives.push(
        d("ClientAliveInterval", String(sshd.clientAliveInterval), "dead sessions are noticed"),
        d("ClientAliveCountMax", String(sshd.clientAliveCountMax), "and closed after this many unanswered probes"),
        d("TCPKeepAlive", "no", "the encrypted ClientAlive probes find dead peers; TCP keepalives can be spoofed (sshd_config(5))"),
        d("MaxSessions", String(sshd.maxSessions), "sessions per connection: mor-harden itself uses one"),
        d("Compression", "no", "no compression before authentication or after: nothing for a compression attack to work on"),
        d("X11Forwarding", yesNo(sshd.x11Forwarding), "a MOR server has no desktop"),
        d("AllowAgentForwarding", yesNo(sshd.allowAgentForwarding), "an agent forwarded to a compromised host is lent to the attacker"),
        d("AllowTcpForwarding", yesNo(sshd.allowTcpForwarding), "no tunnels through the switch"),
        d("PermitTunnel", "no", "no tunnel devices"),
        d("UseDNS", "no", "logs and fail2ban see addresses, not names an attacker controls"),
        d("LogLevel", "VERBOSE", "logs the key fingerprint of each login"),
    );
    if (input.config.system.enabled && input.config.system.banner.enabled && input.config.system.banner.ssh) {
        directives.push(d("Banner", "/etc/issue.net", "the legal banner (system.banner) before every login"));
    }
    if (sshd.allowUsers) directives.push(d("AllowUsers", sshd.allowUsers.join(" "), "only these users"));
    directives.push(...supportAccess(input).directives);
    if (os === "debian" || sshd.rhelCryptoPolicy === "override") {
        const modern = algorithms(openssh);
        directives.push(
            d("KexAlgorithms", (sshd.kexAlgorithms ?? modern.kex).join(","), "no SHA-1 or small groups"),
            d("Ciphers", (sshd.ciphers ?? modern.ciphers).join(","), "AEAD and CTR only"),
            d("MACs", (sshd.macs ?? modern.macs).join(","), "encrypt-then-MAC only"),
            d("HostKeyAlgorithms", (sshd.hostKeyAlgorithms ?? modern.hostKeys).join(","), "no SHA-1 signatures, no NIST curves"),
        );
    }
    return directives;
}

/** `sshd -T` lines (lower-case keyword, value) the effective configuration must show. */
export function effectiveExpectations(directives: Directive[]): string[] {
    return directives.map((directive) => `${directive.keyword.toLowerCase()} ${directive.effective ?? directive.value}`);
}

/** The expected `sshd -T` lines of each keyword (several for Port), sorted as the check sorts what it sees. */
function expectationsByKeyword(lines: string[]): { keyword: string; lines: string }[] {
    const byKeyword = new Map<string, string[]>();
    for (const line of lines) byKeyword.set(line.split(" ")[0], [...(byKeyword.get(line.split(" ")[0]) ?? []), line]);
    return [...byKeyword].map(([keyword, all]) => ({ keyword, lines: [...all].sort().join("\n") }));
}

export function renderSshd(input: RenderInput): ConcernPlan {
    const directives = sshdDirectives(input);
    const rhelPolicy = input.config.os === "rhel" && input.config.sshd.rhelCryptoPolicy === "respect";
    const support = supportAccess(input);
    const content = renderTemplate("sshd/hardening.conf.hbs", { stack: input.stack, directives, rhelPolicy, supportMatch: support.match });
    const check = renderTemplate("sshd/check-effective.sh.hbs", { expectations: expectationsByKeyword(effectiveExpectations(directives)) }).trim();
    // The Match block holds for support's connections only: judged with sshd -T -C for one of them and one other.
    const matchChecks = (support.match?.checks ?? []).map(
        ({ spec, expect }) =>
            `seen=$(sshd -T -C ${spec} | grep -E '^(${expect.map((line) => line.split(" ")[0]).join("|")}) ' | LC_ALL=C sort); [ "$seen" = '${[...expect].sort().join("\n")}' ] || { echo "sshd -T -C ${spec}: got $seen"; exit 1; }`,
    );
    const service = input.config.os === "debian" ? "ssh" : "sshd";
    const reload = `systemctl reload ${service} 2>/dev/null || kill -HUP "$(cat /run/sshd.pid)"`;
    // (read, not cat: no process at each look, in every drift's check too.)
    const running = (failure: string, seconds?: number) =>
        waitUntil(`{ morh_sshd=''; read -r morh_sshd 2>/dev/null </run/sshd.pid; kill -0 "$morh_sshd" 2>/dev/null; }`, failure, seconds);
    return {
        concern: "sshd",
        summary: [
            `${DROP_IN}: ${directives.length} directives for OpenSSH ${input.facts.openssh.join(".")}`,
            ...(rhelPolicy ? ["algorithms left to the system crypto policy"] : []),
            ...(input.config.sshd.support.mode !== "off"
                ? [`Kolmisoft support logs in by ${input.config.sshd.support.mode} as ${input.config.sshd.support.user}`]
                : []),
        ],
        packages: ["openssh-server"],
        artifacts: [file(DROP_IN, content, { mode: "0600" }), ...support.artifacts],
        prepare: ["mkdir -p /run/sshd"],
        validate: ["sshd -t", check, ...matchChecks],
        activate: [reload],
        // The daemon survived the reload (a broken config makes it exit); logins are proven by the confirm step.
        // (sshd rewrites its pid file as it re-executes itself on reload: give it a moment.)
        verify: [running("sshd is not running after the reload")],
        snapshot: [],
        // Not the activation again: a reload cannot revive an sshd the change killed.
        rollback: [renderTemplate("sshd/rollback.sh.hbs", { running: running("sshd is not running", 1), reload, service }).trim()],
        rollbackCheck: [running("sshd is not running after the rollback")],
        deactivate: [],
        liveViews: [
            {
                name: "sshd effective settings (sshd -T)",
                live: `sshd -T | grep -iE '^(${directives.map((directive) => directive.keyword.toLowerCase()).join("|")}) ' | LC_ALL=C sort`,
                expected: { text: [...effectiveExpectations(directives)].sort().join("\n") + "\n" },
            },
        ],
        needsConfirm: true,
    };
}
