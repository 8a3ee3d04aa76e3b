// Shared test inputs: a minimal valid stack, certificates made with the real openssl, and a
// resolver that answers from a table instead of DNS.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Resolver } from "../../src/config/resolve";
import { parseHostConfig, type HostConfig } from "../../src/config/schema";
import type { Concern, ConcernPlan } from "../../src/render/artifact";
import type { RenderInput } from "../../src/render/input";
import { prepareRenderInput } from "../../src/render/prepare";

export const HOST_KEY = "SHA256:" + "A".repeat(43);

const workDir = mkdtempSync(join(tmpdir(), "mor-harden-test-"));

export interface TestCertificate {
    certificate: string;
    key: string;
    keyFile: string;
}

const issued = new Map<string, TestCertificate>();

/** A self-signed certificate for `name`, valid from now for `days` (2 unless told), optionally naming an OCSP responder. */
export function certificateFor(name: string, options: { ocsp?: string; days?: number } = {}): TestCertificate {
    const days = options.days ?? 2;
    const id = `${name}-${options.ocsp ? "ocsp" : "plain"}-${days}`;
    const cached = issued.get(id);
    if (cached) return cached;
    const keyFile = join(workDir, `${id}.key`);
    const certFile = join(workDir, `${id}.crt`);
    const extensions = [`-addext`, `subjectAltName=DNS:${name}`, ...(options.ocsp ? ["-addext", `authorityInfoAccess=OCSP;URI:${options.ocsp}`] : [])];
    execFileSync(
        "openssl",
        [
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            keyFile,
            "-out",
            certFile,
            "-days",
            `${days}`,
            "-subj",
            `/CN=${name}`,
            ...extensions,
        ],
        { stdio: "ignore" },
    );
    const result = { certificate: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8"), keyFile };
    issued.set(id, result);
    return result;
}

export function tempFile(name: string, content: string): string {
    const path = join(workDir, name);
    writeFileSync(path, content);
    return path;
}

/** The smallest valid stack: a Debian host, one trusted workstation, Apache off. */
export function minimalRaw(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        connection: { address: "192.0.2.11", hostKey: HOST_KEY },
        os: "debian",
        firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false },
        ...overrides,
    };
}

export function minimalConfig(overrides: Record<string, unknown> = {}): HostConfig {
    return parseHostConfig(minimalRaw(overrides));
}

export const SUPPORT_V4 = "192.0.2.200";
export const SUPPORT_V6 = "2001:db8:200::1";

/** DNS from a table: support.kolmisoft.com and a few lab names. */
export const tableResolver: Resolver = async (name) => {
    const table: Record<string, string[]> = {
        "support.kolmisoft.com": [SUPPORT_V4, SUPPORT_V6],
        "office.example.net": ["198.51.100.20"],
        "workstation.lab.example": ["198.51.100.10", "2001:db8:51::10"],
    };
    if (!table[name]) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: "ENOTFOUND" });
    return table[name];
};

export function renderInputFor(config: HostConfig, facts: Partial<RenderInput["facts"]> = {}): Promise<RenderInput> {
    return prepareRenderInput("test", config, { resolver: tableResolver, facts });
}

/** A concern's plan of nothing but what a test gives it (no file, no step, no view, no confirmation). */
export function planOf(concern: Concern, parts: Partial<ConcernPlan> = {}): ConcernPlan {
    return {
        concern,
        summary: [],
        packages: [],
        artifacts: [],
        prepare: [],
        validate: [],
        activate: [],
        verify: [],
        snapshot: [],
        rollback: [],
        rollbackCheck: [],
        deactivate: [],
        liveViews: [],
        needsConfirm: false,
        ...parts,
    };
}
