// iptables and ip6tables rulesets in iptables-restore format.
//
// The firewall owns only its MORH-* chains, one jump from INPUT and INPUT's policy. It is loaded
// with `iptables-restore --noflush`, so fail2ban's f2b-* chains (and their jumps, which fail2ban
// inserts first in INPUT), MOR's "Blocked IPs" rules and docker's chains survive every apply.
import { addressesOf } from "../config/resolve";
import { formatRange } from "../config/values";
import { file, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { isGuarded, knockRules, type Family } from "../knocking/render";
import { effectiveServices, trustedSources, type EffectiveService, type FirewallConfig } from "./schema";

export const INPUT_CHAIN = "MORH-INPUT";
const TRUSTED_CHAIN = "MORH-TRUSTED";
const SSH_CHAIN = "MORH-SSH";
const SIP_AGENT_CHAIN = "MORH-SIPUA";
const SIPSCAN_CHAIN = "MORH-SIPSCAN";
/** The log prefix of scanner packets; the ast-cli-attck jail bans the source it names. */
export const SIPSCAN_LOG_PREFIX = "MORH-SIPSCAN ";
/** Debian's ulogd2 logs NFLOG group 0 to /var/log/ulog/syslogemu.log (its default stack). */
const ULOGD_GROUP = 0;

function scannerLogRule(scannerLog: FirewallConfig["scannerLog"]): string {
    const limit = "-m limit --limit 20/second";
    return scannerLog === "nflog"
        ? `${limit} -j NFLOG --nflog-group ${ULOGD_GROUP} --nflog-prefix "${SIPSCAN_LOG_PREFIX.trim()}"`
        : `${limit} -j LOG --log-prefix "${SIPSCAN_LOG_PREFIX}"`;
}

/** User-Agents of the SIP scanners the guide lists (ast-cli-attck). */
export const sipScannerAgents = [
    "sipcli", "sipvicious", "sip-scan", "sipsak", "sundayddr", "friendly-scanner", "iWar", "CSipSimple", "SIVuS",
    "Gulp", "sipv", "smap", "friendly-request", "VaxIPUserAgent", "VaxSIPUserAgent", "siparmyknife", "Test Agent",
];

interface Chain {
    name: string;
    rules: string[];
}

export interface Ruleset {
    family: Family;
    chains: Chain[];
}

const persistPaths = {
    debian: { v4: "/etc/iptables/rules.v4", v6: "/etc/iptables/rules.v6" },
    rhel: { v4: "/etc/sysconfig/iptables", v6: "/etc/sysconfig/ip6tables" },
};
const tools = { v4: { save: "iptables-save", restore: "iptables-restore", cli: "iptables" }, v6: { save: "ip6tables-save", restore: "ip6tables-restore", cli: "ip6tables" } };

function portMatch(service: Pick<EffectiveService, "protocol" | "ports">): string {
    return `-p ${service.protocol} -m ${service.protocol} --dport ${formatRange(service.ports)}`;
}

const mldTypes = [130, 131, 132, 143];
const mldSources = ["fe80::/10", "::/128"];

/** ICMP a host needs to work: path MTU discovery, errors, and on IPv6 neighbour discovery. */
function icmpRules(family: Family, allowPing: boolean): string[] {
    const ping = "-m limit --limit 10/second --limit-burst 20 -j ACCEPT";
    if (family === "v4") {
        return [
            "-p icmp -m icmp --icmp-type destination-unreachable -j ACCEPT",
            "-p icmp -m icmp --icmp-type time-exceeded -j ACCEPT",
            "-p icmp -m icmp --icmp-type parameter-problem -j ACCEPT",
            ...(allowPing ? [`-p icmp -m icmp --icmp-type echo-request ${ping}`] : []),
        ];
    }
    const types = ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"];
    // Neighbour discovery only from the link itself (hop limit 255), as RFC 4890 recommends.
    const discovery = ["router-advertisement", "neighbour-solicitation", "neighbour-advertisement"];
    return [
        ...types.map((type) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${type} -j ACCEPT`),
        ...discovery.map((type) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${type} -m hl --hl-eq 255 -j ACCEPT`),
        // Multicast listener discovery (queries, reports, done, MLDv2 reports): link-local sources
        // (or none yet, ::) and hop limit 1 only, as RFC 4890 recommends.
        ...mldTypes.flatMap((type) => mldSources.map((source) => `-s ${source} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -m hl --hl-eq 1 -j ACCEPT`)),
        ...(allowPing ? [`-p ipv6-icmp -m icmp6 --icmpv6-type echo-request ${ping}`] : []),
    ];
}

/** The rules of one family, as chains of rule bodies (without `-A CHAIN`). Pure, tested directly. */
export function buildRuleset(input: RenderInput, family: Family): Ruleset {
    const { firewall, knocking, sshd } = input.config;
    // Without IPv6 the host still gets a default-drop IPv6 policy, with no service open.
    const services = family === "v6" && !firewall.ipv6 ? [] : effectiveServices(firewall, sshd.port);
    const trusted = addressesOf(trustedSources(firewall), input.sources, family);
    const knock = knockRules(knocking, family);
    const accept = (service: EffectiveService) => (service.name === "ssh" ? `-j ${SSH_CHAIN}` : "-j ACCEPT");
    // A guarded service is reached only after a complete knock (trusted sources too, unless they bypass).
    const gate = (service: EffectiveService, viaTrusted: boolean) =>
        knock && isGuarded(knocking, service.name) && !(viaTrusted && knocking.trustedBypass) ? ` ${knock.openMatch}` : "";

    const input_: string[] = ["-i lo -j ACCEPT"];
    const chains: Chain[] = [];
    const sip = sipServices(services);
    if (sip.length > 0) {
        // The scanners' User-Agent in clear-text SIP, whatever Asterisk logs: logged for the
        // ast-cli-attck jail, then dropped. Before the ESTABLISHED rule: over TCP the request
        // comes after the handshake, and a UDP scanner may have had an answer already. (SIP
        // over TLS cannot be seen this way.)
        input_.push(...sip.map((service) => `${portMatch(service)} -j ${SIP_AGENT_CHAIN}`));
        chains.push({ name: SIP_AGENT_CHAIN, rules: sipScannerAgents.map((agent) => `-m string --string "${agent}" --algo bm -j ${SIPSCAN_CHAIN}`) });
        chains.push({ name: SIPSCAN_CHAIN, rules: [scannerLogRule(firewall.scannerLog), "-j DROP"] });
    }
    input_.push("-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", "-m conntrack --ctstate INVALID -j DROP", ...icmpRules(family, firewall.allowPing));
    if (knock) {
        input_.push(knock.entry);
        chains.push(knock.chain);
    }

    // In spa mode a guarded service has no accept rule at all: fwknopd's own chain (jumped to
    // from INPUT, kept by --noflush) accepts each authorized source for its open window.
    const byFwknopOnly = (service: EffectiveService, viaTrusted: boolean) =>
        knocking.mode === "spa" && isGuarded(knocking, service.name) && !(viaTrusted && knocking.trustedBypass);
    const trustedRules = services
        .filter((service) => service.exposure === "trusted" && !service.sources && !byFwknopOnly(service, true))
        .map((service) => `${portMatch(service)}${gate(service, true)} ${accept(service)}`);
    if (trustedRules.length > 0) {
        input_.push(...trusted.map((address) => `-s ${address} -j ${TRUSTED_CHAIN}`));
        chains.push({ name: TRUSTED_CHAIN, rules: trustedRules });
    }
    for (const service of services) {
        if (service.sources) {
            for (const address of addressesOf(service.sources, input.sources, family)) input_.push(`-s ${address} ${portMatch(service)} ${accept(service)}`);
        } else if (service.exposure === "public" && !byFwknopOnly(service, false)) {
            input_.push(`${portMatch(service)}${gate(service, false)} ${accept(service)}`);
        }
    }
    const limit = firewall.sshRateLimit;
    chains.push({
        name: SSH_CHAIN,
        rules: [
            `-m conntrack --ctstate NEW -m hashlimit --hashlimit-above ${limit.perMinute}/minute --hashlimit-burst ${limit.burst} --hashlimit-mode srcip --hashlimit-name morh-ssh${family === "v4" ? 4 : 6} -j DROP`,
            "-j ACCEPT",
        ],
    });
    return { family, chains: [{ name: INPUT_CHAIN, rules: input_ }, ...chains] };
}

const sipServices = (services: EffectiveService[]) => services.filter((service) => (service.name === "sip-udp" || service.name === "sip-tcp") && service.exposure !== "closed");
const hasSip = (input: RenderInput) => sipServices(effectiveServices(input.config.firewall, input.config.sshd.port)).length > 0;
// ulogd keeps no state worth a reload: started when it is not running (systemd where there is one).
const ULOGD_START = "pgrep -x ulogd >/dev/null || { systemctl enable --now ulogd2 2>/dev/null || ulogd -d; }";
const ULOGD_CHECK = `pgrep -x ulogd >/dev/null || { echo 'ulogd is not running: scanner packets are not logged for ast-cli-attck' >&2; exit 1; }`;

export function renderRuleset(input: RenderInput, family: Family): string {
    const ruleset = buildRuleset(input, family);
    return renderTemplate("firewall/ruleset.hbs", {
        stack: input.stack,
        family,
        chains: ruleset.chains,
        inputChain: INPUT_CHAIN,
        trusted: addressesOf(trustedSources(input.config.firewall), input.sources, family),
    });
}

export function renderFirewall(input: RenderInput): ConcernPlan {
    const { os, firewall } = input.config;
    const families: Family[] = ["v4", "v6"];
    const usesUlogd = firewall.scannerLog === "nflog" && hasSip(input);
    const artifacts = families.map((family) => file(persistPaths[os][family], renderRuleset(input, family), { mode: "0600" }));
    const commands = (family: Family) => ({ ...tools[family], path: persistPaths[os][family], inputChain: INPUT_CHAIN });
    const trusted = trustedSources(firewall).map((source) => `${source} -> ${[...input.sources[source]?.v4 ?? [], ...input.sources[source]?.v6 ?? []].join(", ") || "(unresolved)"}`);
    const services = effectiveServices(firewall, input.config.sshd.port).map((service) => `${service.name} ${formatRange(service.ports, "-")}/${service.protocol}: ${service.exposure}`);
    return {
        concern: "firewall",
        summary: [`trusted: ${trusted.join("; ") || "(none)"}`, ...services],
        packages: [...(os === "debian" ? ["iptables", "iptables-persistent"] : ["iptables-services"]), ...(usesUlogd ? ["ulogd2"] : [])],
        artifacts,
        prepare: os === "rhel" ? ["systemctl disable --now firewalld 2>/dev/null; systemctl mask firewalld; systemctl enable iptables ip6tables"] : [],
        validate: [
            // Rules in both backends (nft and legacy) would each see only half: refuse to add a third half.
            renderTemplate("firewall/one-backend.sh.hbs", {}).trim(),
            ...families.map((family) => `${tools[family].restore} --test --noflush ${persistPaths[os][family]}`),
        ],
        activate: [
            ...families.map((family) => renderTemplate("firewall/activate.sh.hbs", commands(family)).trim()),
            ...(usesUlogd ? [ULOGD_START] : []),
        ],
        // Whether the rules are live is judged by the live views below (the whole ruleset mor-harden
        // owns, jump and policy included), not by a separate check.
        verify: usesUlogd ? [ULOGD_CHECK] : [],
        // The live rules as they were, fail2ban's chains and bans included, restored whole on rollback.
        snapshot: families.map((family) => `${tools[family].save} > "$MORH_STATE/live.${family}"`),
        rollback: families.map((family) => `[ ! -s "$MORH_STATE/live.${family}" ] || ${tools[family].restore} -w < "$MORH_STATE/live.${family}"`),
        rollbackCheck: [],
        deactivate: families.map((family) => renderTemplate("firewall/deactivate.sh.hbs", commands(family)).trim()),
        // The loaded rules against the file loaded into a scratch network namespace by the same
        // iptables, so both sides are printed alike; see live-view.sh.hbs for what is compared.
        liveViews: families.map((family, index) => {
            const view = renderTemplate("firewall/live-view.sh.hbs", commands(family)).trim();
            return {
                name: `${tools[family].cli} rules`,
                live: `${tools[family].save} -t filter | ${view}`,
                expected: { artifact: index, command: `unshare --net sh -c '${tools[family].restore} && ${tools[family].save} -t filter' | ${view}` },
            };
        }),
        needsConfirm: true,
    };
}
