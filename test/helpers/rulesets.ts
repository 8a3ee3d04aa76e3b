// Firewalls found on hosts before mor-harden's first apply, in iptables-restore format, one text
// per family: what the transaction tests (scratch namespaces) and the lab tests start from.
import { labExec, type LabHost } from "../../src/lab/lab";
import { sh } from "./lab";

export { families, type Family } from "../../src/config/family";
export { emptyFilter, filterTables, iptablesServicesStock, tools, type Tables } from "../../src/lab/stock-rulesets";
import { families, type Family } from "../../src/config/family";
import { filterTables, tools, type Tables } from "../../src/lab/stock-rulesets";

/** The INPUT rules of a table text, as iptables-save prints them back (the texts here are written that way). */
export const inputRulesIn = (table: string): string[] => table.split("\n").filter((line) => line.startsWith("-A INPUT "));

/** ufw's chains, jumped to from INPUT (policy DROP); SSH accepted inside ufw-user-input. */
export const ufwChains = filterTables(() =>
    [
        ":INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]",
        ":ufw-before-input - [0:0]\n:ufw-user-input - [0:0]\n:ufw-after-input - [0:0]\n:ufw-reject-input - [0:0]",
        "-A INPUT -j ufw-before-input\n-A INPUT -j ufw-after-input\n-A INPUT -j ufw-reject-input",
        "-A ufw-before-input -i lo -j ACCEPT\n-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A ufw-before-input -j ufw-user-input",
        "-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT\n-A ufw-reject-input -j REJECT",
    ].join("\n"),
);

/** docker's chains in the filter table (FORWARD DROP, jumps from FORWARD), without the table's header and COMMIT. */
export const dockerFilterBody = [
    ":INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-USER - [0:0]",
    "-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n-A FORWARD -o docker0 -j DOCKER\n-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
    "-A DOCKER-ISOLATION-STAGE-1 -j RETURN\n-A DOCKER-USER -j RETURN",
].join("\n");
export const dockerChains = filterTables(() => dockerFilterBody);

/** docker's nat table: its DOCKER chain jumped to for local destinations, masquerading its bridge. */
export const dockerNat: Tables = Object.fromEntries(
    families.map((family) => [
        family,
        [
            "*nat",
            ":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]",
            "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
            `-A OUTPUT ! -d ${family === "v4" ? "127.0.0.0/8" : "::1/128"} -m addrtype --dst-type LOCAL -j DOCKER`,
            `-A POSTROUTING -s ${family === "v4" ? "172.17.0.0/16" : "fd00:d0c::/64"} ! -o docker0 -j MASQUERADE`,
            "-A DOCKER -i docker0 -j RETURN",
            "COMMIT\n",
        ].join("\n"),
    ]),
) as Tables;

/** Loads `tables` into a lab host's live tables (each table named in them replaced whole). */
export function loadTables(host: LabHost, tables: Tables): void {
    for (const family of families) {
        const result = labExec(host, [tools[family].restore, "-w"], { input: tables[family] });
        if (result.code !== 0) throw new Error(`${tools[family].restore} on ${host.name}: ${result.stderr}`);
    }
}

/** A table as `iptables-save` prints it, without its comments and counters: what stays byte-identical. */
export function savedTable(host: LabHost, family: Family, table: string): string {
    return sh(host, `${tools[family].save} -t ${table} | grep -v '^#' | sed 's/ \\[[0-9]*:[0-9]*\\]$//'`).stdout;
}

/** INPUT's policy and rules in the filter table of a family, as iptables-save prints them (counters stripped). */
export function inputChain(host: LabHost, family: Family): { policy: string; rules: string[] } {
    const lines = savedTable(host, family, "filter").split("\n");
    return { policy: lines.find((line) => line.startsWith(":INPUT "))?.split(" ")[1] ?? "", rules: lines.filter((line) => line.startsWith("-A INPUT ")) };
}
