// Certificates signed by the lab CA (ca.crt and ca.key of a lab directory): each host's GUI
// certificate and the lab ACME CA's directory certificate.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

function run(command: string, args: string[]): string {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

/** A certificate for `<name>.lab.example` and `address`, signed by the lab CA (made once per lab directory). */
export function issueCertificate(dir: string, name: string, address: string): { certificate: string; key: string } {
    const certificate = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    if (!existsSync(certificate)) {
        const request = join(dir, `${name}.csr`);
        run("openssl", [
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            request,
            "-subj",
            `/CN=${name}.lab.example`,
        ]);
        const extensions = join(dir, `${name}.ext`);
        writeFileSync(extensions, `subjectAltName=DNS:${name}.lab.example,IP:${address}\n`);
        run("openssl", [
            "x509",
            "-req",
            "-in",
            request,
            "-CA",
            join(dir, "ca.crt"),
            "-CAkey",
            join(dir, "ca.key"),
            "-CAcreateserial",
            "-out",
            certificate,
            "-days",
            "30",
            "-extfile",
            extensions,
        ]);
        chmodSync(key, 0o600);
    }
    return { certificate, key };
}
