// Where the lab's hosts and clients live on its bridge: documentation ranges only.
/** Lab host addresses: documentation ranges only (RFC 5737 and RFC 3849). */
export function hostAddress(index: number): { v4: string; v6: string } {
    if (index < 1 || index > 80) throw new Error(`lab host index ${index} is out of range (1-80)`);
    return { v4: `192.0.2.${10 + index}`, v6: `2001:db8:2::${10 + index}` };
}
export const clientAddresses = {
    workstation: { v4: "198.51.100.10", v6: "2001:db8:51::10" },
    attacker: { v4: "203.0.113.66", v6: "2001:db8:113::66" },
    /** Plays Kolmisoft support (sshd.support); trusted only where a test's stack says so. */
    support: { v4: "198.51.100.20", v6: "2001:db8:51::20" },
};
