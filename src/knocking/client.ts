// The operator's side of knocking: what to send before an SSH connection (or a browser visit)
// so the guarded services open for the sender. Used by every connection mor-harden makes (the
// commit-confirm login included) and by `mor-harden knock`.
import { createSocket } from "node:dgram";
import { isIPv6, Socket } from "node:net";
import type { HostConfig } from "../config/schema";
import { effectiveServices } from "../firewall/schema";
import { sshdPorts } from "../sshd/ports";
import { spaPacket, type SpaKeys } from "./spa";

/** What a knock needs besides secrets: plain data, kept in Pulumi state with the connection. */
export type KnockSpec = { mode: "sequence"; ports: number[]; protocol: "tcp" | "udp" } | { mode: "spa"; port: number; access: string[] };

/** The knock of a stack, or none when knocking is off. */
export function knockSpecOf(config: HostConfig): KnockSpec | undefined {
    const { knocking } = config;
    if (knocking.mode === "sequence") return { mode: "sequence", ports: knocking.sequence, protocol: knocking.protocol };
    if (knocking.mode === "spa") {
        // The guarded services where the firewall has them (sshd's own port for SSH).
        const services = effectiveServices(config.firewall, sshdPorts(config));
        const access = knocking.guards.flatMap((guarded) =>
            services.filter((candidate) => candidate.name === guarded).map((service) => `${service.protocol}/${service.ports.from}`),
        );
        return { mode: "spa", port: knocking.spa.port, access };
    }
    return undefined;
}

/** The SPA keys among a host's secrets, when both are there. */
export function spaKeysOf(secrets: { knockKey?: string; knockHmacKey?: string }): SpaKeys | undefined {
    return secrets.knockKey && secrets.knockHmacKey ? { key: secrets.knockKey, hmacKey: secrets.knockHmacKey } : undefined;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One TCP SYN to `port` (the firewall drops it: nothing answers), then the socket is dropped. */
async function tcpKnock(address: string, port: number): Promise<void> {
    const socket = new Socket();
    socket.on("error", () => undefined);
    socket.connect({ host: address, port });
    await pause(100);
    socket.destroy();
}

function udpSend(address: string, port: number, payload: Buffer): Promise<void> {
    const socket = createSocket(isIPv6(address) ? "udp6" : "udp4");
    return new Promise((resolve, reject) => {
        socket.send(payload, port, address, (error) => {
            socket.close();
            if (error) reject(new Error(`knock to ${address}:${port}/udp: ${error.message}`));
            else resolve();
        });
    });
}

/** The local address this machine uses towards `address`: the source an SPA packet must name. */
export function sourceAddressTowards(address: string): Promise<string> {
    const socket = createSocket(isIPv6(address) ? "udp6" : "udp4");
    return new Promise((resolve, reject) => {
        socket.on("error", (error) => (socket.close(), reject(error)));
        // connect() on UDP sends nothing: it only picks the route and the source address.
        socket.connect(9, address, () => {
            const local = socket.address().address;
            socket.close();
            resolve(local);
        });
    });
}

/** Sends the knock and waits a moment for the host's firewall (or fwknopd) to open. */
export async function sendKnock(spec: KnockSpec, address: string, keys?: SpaKeys): Promise<void> {
    if (spec.mode === "sequence") {
        for (const port of spec.ports) {
            if (spec.protocol === "tcp") await tcpKnock(address, port);
            else await udpSend(address, port, Buffer.alloc(0)).then(() => pause(100));
        }
        await pause(200);
        return;
    }
    if (!keys) throw new Error("knocking.mode spa needs the secrets knockKey and knockHmacKey");
    const source = await sourceAddressTowards(address);
    await udpSend(address, spec.port, Buffer.from(spaPacket({ keys, source, access: spec.access })));
    // fwknopd reads the packet from pcap and runs iptables: give it a moment.
    await pause(700);
}

/** The settings fwknop's own client needs (~/.fwknoprc), for operators who prefer it; keys as placeholders. */
export function fwknoprcStanza(stack: string, address: string, spec: KnockSpec): string {
    if (spec.mode !== "spa") return `# stack ${stack}: sequence knocking; knock ${spec.ports.join(", ")}/${spec.protocol} on ${address}, in order\n`;
    return [
        `[${stack}]`,
        `SPA_SERVER          ${address}`,
        `SPA_SERVER_PORT     ${spec.port}`,
        `SPA_SERVER_PROTO    udp`,
        `ACCESS              ${spec.access.join(",")}`,
        `ALLOW_IP            resolve`,
        `USE_HMAC            Y`,
        `KEY_BASE64          <knockKey>`,
        `HMAC_KEY_BASE64     <knockHmacKey>`,
        "",
    ].join("\n");
}
