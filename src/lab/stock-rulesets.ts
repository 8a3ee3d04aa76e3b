// Firewalls as distributions ship them, in iptables-restore format, one text per family: what lab
// hosts of the rhel-like MOR profile boot with, and what the tests start from.

import type { Family } from "../config/family";

/** iptables-restore input of one family each. */
export type Tables = Record<Family, string>;

export const tools: Record<Family, { cli: string; save: string; restore: string }> = {
    v4: { cli: "iptables", save: "iptables-save", restore: "iptables-restore" },
    v6: { cli: "ip6tables", save: "ip6tables-save", restore: "ip6tables-restore" },
};

/** The built-in chains of the filter table, empty, policy ACCEPT. */
export const emptyFilter = ":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]";

/** One filter table per family, from the lines between `*filter` and `COMMIT`. */
export const filterTables = (body: (family: Family) => string): Tables => ({ v4: `*filter\n${body("v4")}\nCOMMIT\n`, v6: `*filter\n${body("v6")}\nCOMMIT\n` });

/** /etc/sysconfig/iptables and ip6tables as iptables-services ships them (CentOS, Rocky). */
export const iptablesServicesStock = filterTables((family) => {
    const rules = (chain: string) => [
        `-A ${chain} -m state --state RELATED,ESTABLISHED -j ACCEPT`,
        family === "v4" ? `-A ${chain} -p icmp -j ACCEPT` : `-A ${chain} -p ipv6-icmp -j ACCEPT`,
        `-A ${chain} -i lo -j ACCEPT`,
        ...(chain === "INPUT" ? ["-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT"] : []),
        ...(chain === "INPUT" && family === "v6" ? ["-A INPUT -d fe80::/64 -p udp -m udp --dport 546 -m state --state NEW -j ACCEPT"] : []),
        `-A ${chain} -j REJECT --reject-with ${family === "v4" ? "icmp-host-prohibited" : "icmp6-adm-prohibited"}`,
    ];
    return [emptyFilter, ...rules("INPUT"), ...rules("FORWARD")].join("\n");
});
