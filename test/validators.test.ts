// Every rendered artifact is judged by the real tool on a real (lab) host: iptables-restore
// --test, ip6tables-restore --test, sshd -t and sshd -T, apache2ctl -t, fail2ban-client -t.
import assert from "node:assert/strict";
import { needs } from "./helpers/needs";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadStackConfig } from "../src/config/stack-file";
import { parseHostConfig, type HostConfig } from "../src/config/schema";
import type { ConcernPlan } from "../src/render/artifact";
import { renderHost } from "../src/compose/host";
import { certificateFor, minimalRaw, renderInputFor } from "./helpers/fixtures";
import { sh, startTestLab, writeArtifacts, type TestLab } from "./helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
before(async () => {
    lab = await startTestLab(1);
});
after(() => lab?.stop());

const exampleKey = certificateFor("mor.example.com").key;
const projectDir = join(__dirname, "..", "..");

/** Writes a plan's files, runs its prepare and validate commands; returns the first failure. */
function validate(plan: ConcernPlan, secrets: Record<string, string>, os: "debian" | "rhel" = "debian"): string | undefined {
    writeArtifacts(lab.host(), plan.artifacts, secrets);
    // The lab hosts are Debian without systemd: rhel's systemctl steps (masking firewalld) cannot run there.
    const prepare = os === "rhel" ? plan.prepare.filter((command) => !command.includes("systemctl")) : plan.prepare;
    for (const command of [...prepare, ...plan.validate]) {
        const result = sh(lab.host(), command);
        if (result.code !== 0) return `${command}\n${result.stdout}${result.stderr}`;
    }
    return undefined;
}

function cleanUp(plans: ConcernPlan[]): void {
    const paths = plans.flatMap((plan) => plan.artifacts.map((artifact) => `'${artifact.path}'`));
    sh(lab.host(), `rm -f ${paths.join(" ")}; a2dissite -q 00-mor-harden >/dev/null 2>&1; true`);
}

function exampleStack(os: "debian" | "rhel"): HostConfig {
    const { config } = loadStackConfig({ stack: "example" }, projectDir);
    // The example's certificate, with its key swapped for one we hold (the example's key is not in the repo).
    const { certificate } = certificateFor("mor.example.com");
    return {
        ...config,
        os,
        apache: { ...config.apache, certificate },
        fail2ban: { ...config.fail2ban, jails: { ...config.fail2ban.jails, mor_api: { ...config.fail2ban.jails.mor_api, logpath: undefined } } },
    };
}

const ocspCertificate = () => certificateFor("mor.example.com", { ocsp: "http://ocsp.example.net" });

const spread: [string, () => HostConfig, [number, number], string?][] = [
    ["the example stack (debian)", () => exampleStack("debian"), [9, 2]],
    ["the example stack (rhel)", () => exampleStack("rhel"), [9, 2]],
    ["a minimal stack", () => parseHostConfig(minimalRaw()), [9, 2]],
    ["an OpenSSH 8.4 host", () => parseHostConfig(minimalRaw()), [8, 4]],
    [
        "sequence knocking on SSH and HTTPS, udp",
        () => parseHostConfig(minimalRaw({ knocking: { mode: "sequence", sequence: [7001, 8002, 9003, 6004], protocol: "udp", guards: ["ssh", "https"] } })),
        [9, 2],
    ],
    [
        "no IPv6, SSH public, AMI trusted, sip-tls open, extra rules",
        () =>
            parseHostConfig(
                minimalRaw({
                    firewall: {
                        trusted: ["198.51.100.0/24", "2001:db8:51::/64"],
                        trustKolmisoftSupport: false,
                        ipv6: false,
                        services: { ssh: "public", ami: "trusted", "sip-tls": "public", https: "trusted", rtp: { ports: "16384-32767" } },
                        extraRules: [{ name: "snmp", protocol: "udp", ports: 161, exposure: "trusted", sources: ["198.51.100.20"] }],
                    },
                }),
            ),
        [9, 2],
    ],
    [
        "every jail overridden, recidive off",
        () =>
            parseHostConfig(
                minimalRaw({
                    fail2ban: {
                        ignoreip: ["203.0.113.0/24"],
                        recidive: { enabled: false },
                        jails: {
                            "ssh-iptables": { maxretry: 5, findtime: "1h", bantime: "1d" },
                            "asterisk-iptables": { logpath: ["/var/log/asterisk/full"] },
                            "ast-hgc-200": { maxretry: 20, findtime: 60 },
                            mor_api: {
                                failregex: ['^<HOST> \\S+ \\S+ \\[[^\\]]+\\] "GET /billing/api/\\S+ HTTP/1\\.[01]" 200 .*'],
                                logpath: ["/var/log/apache2/other_vhosts_access.log"],
                            },
                            mor_ddos: { enabled: false },
                        },
                    },
                }),
            ),
        [9, 2],
    ],
    [
        "apache with OCSP stapling, HSTS preload, aliases",
        () =>
            parseHostConfig(
                minimalRaw({
                    apache: {
                        enabled: true,
                        serverName: "mor.example.com",
                        certificate: ocspCertificate().certificate,
                        hsts: { includeSubDomains: true, preload: true },
                    },
                    tlsKey: { secretRef: "tlsKey" },
                }),
            ),
        [9, 2],
        ocspCertificate().key,
    ],
];

describe("the real tools accept every rendered artifact", () => {
    for (const [what, makeConfig, openssh, key = exampleKey] of spread) {
        it(`accepts ${what}`, async () => {
            // A lab host shares this machine's kernel: kernel-wide sysctls are rendered, never
            // applied there, and a few (net.core.bpf_jit_harden) exist only in the initial network
            // namespace, so the host checks only its own keys (as the lab's stacks say).
            const made = makeConfig();
            const config: HostConfig = { ...made, system: { ...made.system, sysctl: { ...made.system.sysctl, kernelWide: "render-only" } } };
            const plans = renderHost(await renderInputFor(config, { openssh }));
            try {
                for (const plan of plans) {
                    // The rhel vhost lives in /etc/httpd, which the Debian lab host's Apache does not read.
                    if (config.os === "rhel" && plan.concern === "apache") continue;
                    assert.equal(validate(plan, { tlsKey: key }, config.os), undefined, `${plan.concern} was refused`);
                }
            } finally {
                cleanUp(plans);
            }
        });
    }
});

describe("the validators catch what is wrong (so the tests above can fail)", () => {
    it("iptables-restore --test refuses a broken rule", async () => {
        const firewall = renderHost(await renderInputFor(parseHostConfig(minimalRaw()))).find((plan) => plan.concern === "firewall")!;
        const broken = {
            ...firewall,
            artifacts: [
                { ...firewall.artifacts[0], content: firewall.artifacts[0].content.replace("COMMIT", "-A MORH-INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT") },
            ],
        };
        assert.match(validate(broken, {}) ?? "", /iptables-restore/);
        cleanUp([firewall]);
    });

    it("sshd -T sees a drop-in read before ours that re-enables passwords", async () => {
        const sshd = renderHost(await renderInputFor(parseHostConfig(minimalRaw()))).find((plan) => plan.concern === "sshd")!;
        sh(lab.host(), "printf 'PasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/00-aaa.conf");
        try {
            assert.match(validate(sshd, {}) ?? "", /expected 'passwordauthentication no', got 'passwordauthentication yes'/);
        } finally {
            sh(lab.host(), "rm -f /etc/ssh/sshd_config.d/00-aaa.conf");
            cleanUp([sshd]);
        }
    });

    it("fail2ban-client -t refuses a jail whose filter does not exist", async () => {
        const fail2ban = renderHost(await renderInputFor(parseHostConfig(minimalRaw()))).find((plan) => plan.concern === "fail2ban")!;
        const jailFile = fail2ban.artifacts[0];
        const broken = {
            ...fail2ban,
            artifacts: [
                { ...jailFile, content: jailFile.content.replace("filter = mor-harden-mor-ddos", "filter = no-such-filter") },
                ...fail2ban.artifacts.slice(1),
            ],
        };
        assert.match(validate(broken, {}) ?? "", /fail2ban-client -t/);
        cleanUp([fail2ban]);
    });

    it("a certificate that does not match its key is refused before Apache reloads", async () => {
        const config = parseHostConfig(
            minimalRaw({
                apache: { enabled: true, serverName: "mor.example.com", certificate: certificateFor("mor.example.com").certificate },
                tlsKey: { secretRef: "tlsKey" },
            }),
        );
        const apache = renderHost(await renderInputFor(config)).find((plan) => plan.concern === "apache")!;
        const otherKey = certificateFor("other.example.com").key;
        assert.match(validate(apache, { tlsKey: otherKey }) ?? "", /does not match its private key/);
        cleanUp([apache]);
        assert.ok(readFileSync(certificateFor("other.example.com").keyFile, "utf8").includes("PRIVATE KEY"));
    });
});
