// Networks as Asterisk's ACLs (`192.0.2.0/255.255.255.0`, `/24`, an address) and the stack's
// trusted sources write them, and who an ACL lets in. Pure.
import { isIP } from "node:net";

export interface Network {
    family: 4 | 6;
    base: bigint;
    prefix: number;
}

function addressBits(address: string): { family: 4 | 6; bits: bigint } | undefined {
    const family = isIP(address);
    if (family === 4) return { family, bits: address.split(".").reduce((sum, part) => (sum << 8n) | BigInt(Number(part)), 0n) };
    if (family !== 6) return undefined;
    const [head, tail = ""] = address.includes("::") ? address.split("::") : [address, undefined as unknown as string];
    const groups = (text: string) => (text ? text.split(":") : []);
    const expand = (parts: string[]) =>
        parts.flatMap((part) => (part.includes(".") ? ((b) => [(b >> 16n).toString(16), (b & 0xffffn).toString(16)])(addressBits(part)!.bits) : [part]));
    const left = expand(groups(head));
    const right = address.includes("::") ? expand(groups(tail)) : [];
    const all = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
    return { family, bits: all.reduce((sum, part) => (sum << 16n) | BigInt(parseInt(part, 16)), 0n) };
}

const WIDTH = { 4: 32, 6: 128 } as const;

/** A network from `address[/prefix|/mask]`, or undefined (a host name, a typo). */
export function parseNetwork(text: string): Network | undefined {
    const [address, mask] = text.trim().split("/", 2);
    const parsed = addressBits(address);
    if (!parsed) return undefined;
    const width = WIDTH[parsed.family];
    let prefix: number = width;
    if (mask !== undefined) {
        if (/^\d+$/.test(mask)) prefix = Number(mask);
        else {
            const bits = addressBits(mask);
            if (!bits || bits.family !== parsed.family) return undefined;
            prefix = bits.bits.toString(2).padStart(width, "0").indexOf("0");
            if (prefix < 0) prefix = width;
        }
    }
    if (prefix > width) return undefined;
    const hostBits = BigInt(width - prefix);
    return { family: parsed.family, base: (parsed.bits >> hostBits) << hostBits, prefix };
}

/** Whether `inner` lies inside `outer`. */
export function contains(outer: Network, inner: Network): boolean {
    if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
    const hostBits = BigInt(WIDTH[outer.family] - outer.prefix);
    return inner.base >> hostBits === outer.base >> hostBits;
}

export const isLoopback = (network: Network) => contains(parseNetwork(network.family === 4 ? "127.0.0.0/8" : "::1/128")!, network);

export interface AclRule {
    kind: "permit" | "deny";
    value: string;
}

/**
 * The networks an Asterisk ACL lets in beyond `within` (the trusted sources and loopback), as
 * the rules wrote them; "anywhere" when no deny covers everything first (an ACL allows by
 * default, and the last matching rule wins).
 */
export function aclWiderThan(rules: AclRule[], within: Network[]): string[] {
    const everything = (network: Network | undefined) => network !== undefined && network.prefix === 0;
    const firstDenyAll = rules.findIndex((rule) => rule.kind === "deny" && everything(parseNetwork(rule.value)));
    if (firstDenyAll < 0) return ["anywhere (no deny of all addresses)"];
    return rules
        .slice(firstDenyAll + 1)
        .filter((rule) => rule.kind === "permit")
        .filter((rule) => {
            const network = parseNetwork(rule.value);
            return network === undefined || !(isLoopback(network) || within.some((trusted) => contains(trusted, network)));
        })
        .map((rule) => rule.value);
}
