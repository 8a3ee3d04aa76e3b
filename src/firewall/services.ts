// The ports a MOR server may listen on, and who should reach them by default.
//
// Kolmisoft publishes no ports page in the public copies we could read: these are Asterisk's
// and MOR's documented defaults (see ../shared/facts and the README's config reference).
import type { PortRange } from "../config/values";

export type Exposure = "public" | "trusted" | "closed";
export type Protocol = "tcp" | "udp";

export interface ServiceDefinition {
    description: string;
    protocol: Protocol;
    ports: PortRange;
    exposure: Exposure;
    /** Exposures a stack may not choose: an open AMI or MySQL is a known route to a lost server. */
    never?: Exposure[];
}

const range = (from: number, to = from): PortRange => ({ from, to });

export const serviceCatalogue = {
    ssh: { description: "OpenSSH", protocol: "tcp", ports: range(22), exposure: "trusted", never: ["closed"] },
    http: { description: "MOR web GUI and API over HTTP (redirects to HTTPS)", protocol: "tcp", ports: range(80), exposure: "public" },
    https: { description: "MOR web GUI and API over HTTPS", protocol: "tcp", ports: range(443), exposure: "public" },
    "sip-udp": { description: "SIP signalling over UDP", protocol: "udp", ports: range(5060), exposure: "public" },
    "sip-tcp": { description: "SIP signalling over TCP", protocol: "tcp", ports: range(5060), exposure: "public" },
    "sip-tls": { description: "SIP signalling over TLS", protocol: "tcp", ports: range(5061), exposure: "closed" },
    iax2: { description: "IAX2 trunks", protocol: "udp", ports: range(4569), exposure: "public" },
    rtp: { description: "RTP media (Asterisk rtp.conf rtpstart-rtpend)", protocol: "udp", ports: range(10000, 20000), exposure: "public" },
    ami: { description: "Asterisk Manager Interface", protocol: "tcp", ports: range(5038), exposure: "closed", never: ["public"] },
    "ami-tls": { description: "Asterisk Manager Interface over TLS", protocol: "tcp", ports: range(5039), exposure: "closed", never: ["public"] },
    mysql: { description: "MySQL, only between the servers of one MOR cluster", protocol: "tcp", ports: range(3306), exposure: "closed", never: ["public"] },
    radius: { description: "RADIUS authentication and accounting", protocol: "udp", ports: range(1812, 1813), exposure: "closed", never: ["public"] },
    elasticsearch: { description: "Elasticsearch used by MOR's statistics", protocol: "tcp", ports: range(9200), exposure: "closed", never: ["public"] },
} as const satisfies Record<string, ServiceDefinition>;

export type ServiceName = keyof typeof serviceCatalogue;
export const serviceNames = Object.keys(serviceCatalogue) as ServiceName[];
