// The lab's ACME CA (`lab up --acme`): Debian's pebble, with pebble-challtestsrv as the DNS it
// resolves names by, in a lab node of its own on 198.51.100.30. Its directory's TLS certificate is
// signed by the lab CA, which the lab stack hands to the hosts as apache.acme.caBundle.
import { execFileSync, spawn } from "node:child_process";
import { openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { issueCertificate } from "./certificates";

export const ACME_CA_ADDRESS = { v4: "198.51.100.30", v6: "2001:db8:51::30" };
export const ACME_DIRECTORY_PORT = 14000;
const DNS_PORT = 8053;
const CHALLTESTSRV_MANAGEMENT_PORT = 8055;

export const acmeDirectoryUrl = () => `https://${ACME_CA_ADDRESS.v4}:${ACME_DIRECTORY_PORT}/dir`;

export interface LabAcme {
    netns: string;
    /** PIDs (on this machine) of pebble and pebble-challtestsrv. */
    pebblePid: number;
    challtestsrvPid: number;
    directory: string;
}

function run(command: string, args: string[]): string {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** How long the lab's CA's certificates are valid. */
export const ACME_LAB_VALIDITY_SECONDS = 6 * 86400;

/**
 * Starts pebble-challtestsrv (DNS only, every name unknown until `addAcmeName`) and pebble in
 * `netns`. PEBBLE_VA_NOSLEEP: validate at once; PEBBLE_WFE_NONCEREJECT=0: no nonce rejected at
 * random (certbot would retry); PEBBLE_AUTHZREUSE=0: no authorization reused, so a validation
 * that must fail (port 80 closed) is really made again.
 */
export function startAcme(dir: string, netns: string): LabAcme {
    // pebble's TLS certificate for its directory, for acme.lab.example and its address.
    const { certificate, key } = issueCertificate(dir, "acme", ACME_CA_ADDRESS.v4);
    const config = join(dir, "pebble-config.json");
    writeFileSync(
        config,
        JSON.stringify({
            pebble: {
                listenAddress: `${ACME_CA_ADDRESS.v4}:${ACME_DIRECTORY_PORT}`,
                managementListenAddress: `${ACME_CA_ADDRESS.v4}:15000`,
                certificate,
                privateKey: key,
                httpPort: 80,
                tlsPort: 443,
                ocspResponderURL: "",
                externalAccountBindingRequired: false,
                // Six days, as Let's Encrypt's short-lived profile: under certbot 2.1's 30 days
                // before expiry, so the lab's ACME tests show that a fresh short-lived certificate
                // is neither drift, nor issued again, nor renewed at every run of certbot
                // (acmeRenewalMargin, acme_set_renew_before).
                certificateValidityPeriod: ACME_LAB_VALIDITY_SECONDS,
            },
        }),
    );
    const log = openSync(join(dir, "acme.log"), "a");
    const start = (argv: string[], env: Record<string, string> = {}) => {
        const child = spawn("ip", ["netns", "exec", netns, ...argv], { detached: true, stdio: ["ignore", log, log], env: { ...process.env, ...env } });
        child.unref();
        return child.pid!;
    };
    const challtestsrvPid = start([
        "pebble-challtestsrv",
        "-defaultIPv4",
        "",
        "-defaultIPv6",
        "",
        "-dns01",
        `${ACME_CA_ADDRESS.v4}:${DNS_PORT}`,
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-management",
        `${ACME_CA_ADDRESS.v4}:${CHALLTESTSRV_MANAGEMENT_PORT}`,
    ]);
    const pebblePid = start(["pebble", "-config", config, "-dnsserver", `${ACME_CA_ADDRESS.v4}:${DNS_PORT}`], {
        PEBBLE_VA_NOSLEEP: "1",
        PEBBLE_WFE_NONCEREJECT: "0",
        PEBBLE_AUTHZREUSE: "0",
    });
    const acme = { netns, pebblePid, challtestsrvPid, directory: acmeDirectoryUrl() };
    waitForAcme(acme);
    return acme;
}

/** Waits (at most 10 s) until the directory and the DNS management interface answer. */
function waitForAcme(acme: LabAcme): void {
    const probe = `for i in $(seq 50); do curl -sk --max-time 1 -o /dev/null ${acme.directory} && curl -s --max-time 1 -o /dev/null -X POST -d '{"host":"probe.lab.example.","addresses":["192.0.2.1"]}' http://${ACME_CA_ADDRESS.v4}:${CHALLTESTSRV_MANAGEMENT_PORT}/add-a && exit 0; sleep 0.2; done; exit 1`;
    try {
        run("ip", ["netns", "exec", acme.netns, "sh", "-c", probe]);
    } catch {
        throw new Error(`the lab's ACME CA (pebble at ${acme.directory}) did not start within 10 s: see acme.log in the lab directory`);
    }
}

/** Makes `name` resolve to `v4` for the CA (pebble-challtestsrv's mock DNS). */
export function addAcmeName(acme: LabAcme, name: string, v4: string): void {
    const body = JSON.stringify({ host: `${name}.`, addresses: [v4] });
    run("ip", [
        "netns",
        "exec",
        acme.netns,
        "curl",
        "-sf",
        "--max-time",
        "5",
        "-X",
        "POST",
        "-d",
        body,
        `http://${ACME_CA_ADDRESS.v4}:${CHALLTESTSRV_MANAGEMENT_PORT}/add-a`,
    ]);
}
