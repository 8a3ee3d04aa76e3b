// The two address families every firewall concern renders for: iptables (v4) and ip6tables (v6).
export type Family = "v4" | "v6";
export const families: Family[] = ["v4", "v6"];
/** How a set's name ends for its family (ipset names are short: one character). */
export const familySuffix: Record<Family, string> = { v4: "4", v6: "6" };
