// iptables and ip6tables rulesets in iptables-restore format.
//
// The firewall owns its MORH-* chains, INPUT's policy and INPUT's rules: in INPUT it keeps only
// fail2ban's jumps (fail2ban inserts them first), fwknopd's jump and bans (MOR's "Blocked IPs"),
// with its own jump after them. Every change is one `iptables-restore --noflush` transaction, so
// fail2ban's f2b-* chains, docker's chains, FORWARD and OUTPUT survive every apply and rollback.
import { addressesOf } from "../config/resolve";
import { formatRange } from "../config/values";
import { file, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { families, type Family } from "../config/family";
import { isGuarded, knockRules } from "../knocking/render";
import { effectiveServices, trustedSources, type EffectiveService, type FirewallConfig } from "./schema";
import { sshdPorts } from "../sshd/ports";
import { scannerAgents } from "../fail2ban/schema";
import { BLOCKLIST_CHAIN, blocklistRules, createSetsCommand, hasSets, managedSets, OWNED_SETS } from "../blocklists/render";
import { ADMITTING_SET_PREFIX, countryBlockSet, countryMatch } from "../countries/render";

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

/**
 * How a SIP message names its User-Agent: at the start of a header line, so after CR LF (the
 * header is never a message's first line), then the header name and colon, then the value.
 * SIP allows blanks around the colon; scanners write "User-Agent: x", some "User-Agent:x".
 * Other spacings (tabs, a blank before the colon, folded lines) pass the packet rule, and only
 * Asterisk's own log line, where it writes one, catches them.
 */
const USER_AGENT_HEADERS = ["\r\nUser-Agent: ", "\r\nUser-Agent:"];

/**
 * iptables' string match cannot anchor at a line start, nor match case-insensitively only in
 * part: the pattern carries the CR LF before the header, and --icase makes both the header name
 * (case-insensitive in SIP) and the tool's name case-insensitive. Boyer-Moore, because each
 * pattern is a fixed string searched once per packet. Written the way iptables-save prints it
 * back (all hex) so drift checks compare like with like; the comment names the tool.
 */
const stringMatch = (text: string, negate = false) =>
    `-m string ${negate ? "! " : ""}--hex-string "|${Buffer.from(text, "latin1").toString("hex")}|" --algo bm --icase`;

/** MORH-SIPUA: packets without a User-Agent header return at once; each scanner's header start drops. */
export function scannerAgentRules(agents: string[]): string[] {
    return [
        `${stringMatch("\r\nUser-Agent:", true)} -j RETURN`,
        ...agents.flatMap((agent) =>
            USER_AGENT_HEADERS.map((header) => `${stringMatch(header + agent)} -m comment --comment "User-Agent ${agent}" -j ${SIPSCAN_CHAIN}`),
        ),
    ];
}

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
const tools = {
    v4: { save: "iptables-save", restore: "iptables-restore", cli: "iptables" },
    v6: { save: "ip6tables-save", restore: "ip6tables-restore", cli: "ip6tables" },
};

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
    const { firewall, knocking } = input.config;
    // Without IPv6 the host still gets a default-drop IPv6 policy, with no service open.
    const services = family === "v6" && !firewall.ipv6 ? [] : effectiveServices(firewall, sshdPorts(input.config));
    const trusted = addressesOf(trustedSources(firewall), input.sources, family);
    const knock = knockRules(knocking, family);
    const accept = (service: EffectiveService) => (service.name === "ssh" ? `-j ${SSH_CHAIN}` : "-j ACCEPT");
    // A guarded service is reached only after a complete knock (trusted sources too, unless they bypass).
    const gate = (service: EffectiveService, viaTrusted: boolean) =>
        knock && isGuarded(knocking, service.name) && !(viaTrusted && knocking.trustedBypass) ? ` ${knock.openMatch}` : "";

    const input_: string[] = ["-i lo -j ACCEPT"];
    const chains: Chain[] = [];
    const blocksCountries = (firewall.countries?.block.length ?? 0) > 0;
    if (firewall.blocklists.length > 0 || blocksCountries) {
        // Before everything else a source can reach, established flows included: a listed
        // address (or a blocked country's) is cut off at once, not only for new connections.
        input_.push(`-j ${BLOCKLIST_CHAIN}`);
        chains.push({
            name: BLOCKLIST_CHAIN,
            rules: blocklistRules(firewall.blocklists, trusted, family, blocksCountries ? countryBlockSet(family) : undefined),
        });
    }
    // Packets conntrack cannot place (a TCP segment out of any window, a stray reply) go first:
    // nothing after this sees them, the scanner rule included.
    input_.push("-m conntrack --ctstate INVALID -j DROP");
    const sip = sipServices(services);
    const agents = scannerAgents(input.config.fail2ban);
    // Without the ast-cli-attck jail (or its scanners) there is nothing to log and drop for.
    if (sip.length > 0 && agents.length > 0) {
        // The scanners' User-Agent in clear-text SIP, whatever Asterisk logs: logged for the
        // ast-cli-attck jail, then dropped. Before the ESTABLISHED rule: over TCP the request
        // comes after the handshake, and a UDP scanner may have had an answer already. (SIP
        // over TLS cannot be seen this way.)
        // Over TCP only ESTABLISHED packets: conntrack saw the host answer the flow, which a
        // forged source cannot complete (it never sees the SYN-ACK, and a blind ACK is out of
        // window: INVALID, dropped above). A segment outside any connection is NEW, even when
        // conntrack picks it up mid-stream (nf_conntrack_tcp_loose, on by default), and the
        // host's RST, its only answer, deletes that entry (Linux nf_conntrack_proto_tcp.c: "If
        // only reply is a RST ... delete the conntrack immediately"): it never bans its source.
        // Over UDP nothing tells a forged datagram from a real one: the jail bans those sources
        // for a bounded time only (fail2ban.forgeableBantime).
        input_.push(
            ...sip.map((service) => `${portMatch(service)}${service.protocol === "tcp" ? " -m conntrack --ctstate ESTABLISHED" : ""} -j ${SIP_AGENT_CHAIN}`),
        );
        chains.push({ name: SIP_AGENT_CHAIN, rules: scannerAgentRules(agents) });
        chains.push({ name: SIPSCAN_CHAIN, rules: [scannerLogRule(firewall.scannerLog), "-j DROP"] });
    }
    input_.push("-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", ...icmpRules(family, firewall.allowPing));
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
        } else if (service.exposure === "public") {
            const countries = countryMatch(firewall.countries, service.name, family);
            // A service open to some countries only: trusted sources always, then the countries' addresses.
            if (countries && !byFwknopOnly(service, true)) {
                for (const address of trusted) input_.push(`-s ${address} ${portMatch(service)}${gate(service, true)} ${accept(service)}`);
            }
            if (!byFwknopOnly(service, false)) input_.push(`${portMatch(service)}${countries}${gate(service, false)} ${accept(service)}`);
        }
    }
    const limit = firewall.sshRateLimit;
    chains.push({
        name: SSH_CHAIN,
        rules: [
            `-m conntrack --ctstate NEW -m hashlimit --hashlimit-above ${limit.perMinute}/minute --hashlimit-burst ${limit.burst} --hashlimit-mode srcip --hashlimit-name ${sshRateTable(family, limit)} -j DROP`,
            "-j ACCEPT",
        ],
    });
    return { family, chains: [{ name: INPUT_CHAIN, rules: input_ }, ...chains] };
}

/**
 * The kernel's table of the SSH rate limit, named after its settings. The kernel keeps a hashlimit
 * table for as long as a rule names it, with the settings it was made with: a rule of the same
 * name with new settings (a transaction adds the new rule before the old one goes) would share the
 * old table, and the old limit would go on dropping. (At most 15 characters: "morh-s4-600-600".)
 */
export function sshRateTable(family: Family, limit: { perMinute: number; burst: number }): string {
    return `morh-s${family === "v4" ? 4 : 6}-${limit.perMinute}-${limit.burst}`;
}

const sipServices = (services: EffectiveService[]) =>
    services.filter((service) => (service.name === "sip-udp" || service.name === "sip-tcp") && service.exposure !== "closed");
const hasSip = (input: RenderInput) =>
    sipServices(effectiveServices(input.config.firewall, sshdPorts(input.config))).length > 0 && scannerAgents(input.config.fail2ban).length > 0;
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

const familyNames: Record<Family, string> = { v4: "ipv4", v6: "ipv6" };

/**
 * The shell snippets of one family. The firewall owns INPUT's policy, INPUT's rules and the MORH-*
 * chains, nothing else; every snippet that reads rules classifies them with the same awk parser.
 */
function familyCommands(os: RenderInput["config"]["os"], family: Family) {
    const data = {
        ...tools[family],
        path: persistPaths[os][family],
        inputChain: INPUT_CHAIN,
        familyName: familyNames[family],
        snapshot: `"$MORH_STATE/live.${family}"`,
    };
    const parser = renderTemplate("firewall/parse-rule.awk.hbs", {}).trim();
    const ownedView = renderTemplate("firewall/live-view.sh.hbs", { parser }).trim();
    const restore = renderTemplate("firewall/restore.sh.hbs", { ...data, parser }).trim();
    return {
        ownedView,
        snapshot: renderTemplate("firewall/snapshot.sh.hbs", data).trim(),
        activate: renderTemplate("firewall/activate.sh.hbs", { ...data, parser }).trim(),
        rollback: renderTemplate("firewall/rollback.sh.hbs", { ...data, restore }).trim(),
        rollbackCheck: renderTemplate("firewall/rollback-check.sh.hbs", { ...data, ownedView }).trim(),
        deactivate: renderTemplate("firewall/deactivate.sh.hbs", { ...data, restore }).trim(),
    };
}

/**
 * rhel: firewalld would filter beside these rules. It is stopped and masked at activation (after
 * validation and the snapshot), and put back as it was (with iptables' and ip6tables' boot-time
 * enablement) on rollback and delete.
 */
function unitCommands() {
    const unitStates = renderTemplate("firewall/unit-states.sh.hbs", {}).trim();
    return {
        snapshot: renderTemplate("firewall/units-snapshot.sh.hbs", { unitStates }).trim(),
        activate: renderTemplate("firewall/units-activate.sh.hbs", {}).trim(),
        restore: renderTemplate("firewall/units-restore.sh.hbs", {}).trim(),
        check: renderTemplate("firewall/units-check.sh.hbs", { unitStates }).trim(),
    };
}

/**
 * The sets of lists no longer configured hold no rule's match now: emptied (not destroyed, so a
 * rollback to rules that name them still loads).
 */
function flushRemovedBlocklists(firewall: FirewallConfig): string {
    const kept = managedSets(firewall).map(({ set }) => set);
    // A service's countries are not emptied: the rule naming them is gone by now, and on a rollback
    // to it, an empty set would close that service (the next load of the sets destroys them).
    return `command -v ipset >/dev/null || exit 0; morh_kept=' ${kept.join(" ")} '; for set in $(ipset list -n | grep '${OWNED_SETS}'); do case "$morh_kept" in *" $set "*|${ADMITTING_SET_PREFIX}*) ;; *) ipset flush "$set";; esac; done`;
}

export function renderFirewall(input: RenderInput): ConcernPlan {
    const { os, firewall } = input.config;
    const usesUlogd = firewall.scannerLog === "nflog" && hasSip(input);
    const artifacts = families.map((family) => file(persistPaths[os][family], renderRuleset(input, family), { mode: "0600" }));
    const commands = families.map((family) => familyCommands(os, family));
    const units = os === "rhel" ? [unitCommands()] : [];
    const trusted = trustedSources(firewall).map(
        (source) => `${source} -> ${[...(input.sources[source]?.v4 ?? []), ...(input.sources[source]?.v6 ?? [])].join(", ") || "(unresolved)"}`,
    );
    const services = effectiveServices(firewall, sshdPorts(input.config)).map(
        (service) => `${service.name} ${formatRange(service.ports, "-")}/${service.protocol}: ${service.exposure}`,
    );
    // The scratch namespace that formats the rendered rules needs the sets they name (empty).
    const scratchSets = hasSets(firewall) ? `${createSetsCommand(managedSets(firewall))} && ` : "";
    return {
        concern: "firewall",
        summary: [`trusted: ${trusted.join("; ") || "(none)"}`, ...services],
        packages: [...(os === "debian" ? ["iptables", "iptables-persistent"] : ["iptables-services"]), ...(usesUlogd ? ["ulogd2"] : [])],
        artifacts,
        // The blocklists' sets exist before the rules naming them are tested and loaded (the
        // blocklists concern, applied first, fills them; empty ones here change nothing).
        prepare: hasSets(firewall) ? [createSetsCommand(managedSets(firewall))] : [],
        validate: [
            // Rules in both backends (nft and legacy) would each see only half: refuse to add a third half.
            renderTemplate("firewall/one-backend.sh.hbs", {}).trim(),
            // -w 30: the legacy backend takes the xtables lock even to test, shared by both families
            // (tested at once) and by fail2ban's bans meanwhile. Without -w an older iptables fails
            // at once on a held lock, a newer one waits without a limit: 30 s at most, either way.
            ...families.map((family) => `${tools[family].restore} -w 30 --test --noflush ${persistPaths[os][family]}`),
        ],
        // The live filter table of each family (an absent table as the empty default it means),
        // and on rhel the state of firewalld.
        snapshot: [...commands.map((family) => family.snapshot), ...units.map((unit) => unit.snapshot)],
        // One atomic iptables-restore per family: our chains and policy, the jump, and every rule
        // in INPUT that would decide before or beside our chains removed (each named on a MORH-NOTE line).
        activate: [
            ...units.map((unit) => unit.activate),
            ...commands.map((family) => family.activate),
            ...(usesUlogd ? [ULOGD_START] : []),
            flushRemovedBlocklists(firewall),
        ],
        // Whether the rules are live is judged by the live views below (the whole ruleset mor-harden
        // owns, jump and policy included), not by a separate check.
        verify: usesUlogd ? [ULOGD_CHECK] : [],
        // The part of each table mor-harden owns back from the snapshot, in one atomic transaction;
        // fail2ban's jumps and bans added meanwhile stay, other chains are not touched.
        rollback: [...commands.map((family) => family.rollback), ...units.map((unit) => unit.restore)],
        rollbackCheck: [...commands.map((family) => family.rollbackCheck), ...units.map((unit) => unit.check)],
        // With the first transaction's snapshot, the firewall the host had before mor-harden; without
        // one (hosts applied by older versions), INPUT open and our chains gone.
        deactivate: [...commands.map((family) => family.deactivate), ...units.map((unit) => unit.restore)],
        // The loaded rules against the file loaded into a scratch network namespace by the same
        // iptables, so both sides are printed alike; see live-view.sh.hbs for what is compared.
        liveViews: families.map((family, index) => ({
            name: `${tools[family].cli} rules`,
            live: `${tools[family].save} -t filter | ${commands[index].ownedView}`,
            expected: {
                artifact: index,
                command: `unshare --net sh -c '${scratchSets}${tools[family].restore} && ${tools[family].save} -t filter' | ${commands[index].ownedView}`,
            },
        })),
        needsConfirm: true,
    };
}
