// fwknop's single packet authorization, built the way fwknop's own client (libfko) builds it,
// so fwknopd on the host accepts it and operators need no other tool:
//
//   random(16 digits):b64(user):timestamp:version:1:b64("<source>,tcp/22,...")    (the access message)
//   + ":" + b64(sha256(that))                                                     (the digest)
//   encrypted with AES-256-CBC, OpenSSL's salted format (key and IV from MD5 over key and salt),
//   base64 without '=',
//   + b64(HMAC-SHA256 of that base64 text with the HMAC key), without '=';
//   sent without the constant "Salted__" prefix ("U2FsdGVkX1") the HMAC still covers.
//
// A packet is fresh each time (random value and timestamp): fwknopd refuses a packet it has seen
// (replay), and one older than its time window.
import { createCipheriv, createHash, createHmac, randomBytes, randomInt } from "node:crypto";

export interface SpaKeys {
    /** fwknop's KEY_BASE64: the Rijndael key. */
    key: string;
    /** fwknop's HMAC_KEY_BASE64. */
    hmacKey: string;
}

export interface SpaRequest {
    keys: SpaKeys;
    /** The address the host will see the packet from (fwknopd opens the ports for it). */
    source: string;
    /** "tcp/22" and the like. How long they stay open is the server's FW_ACCESS_TIMEOUT. */
    access: string[];
    user?: string;
    /** For tests: fixed time, random value and salt. */
    now?: Date;
    random?: string;
    salt?: Buffer;
}

const PROTOCOL_VERSION = "3.0.0";
const ACCESS_MESSAGE = 1;
const SALTED_PREFIX_B64 = "U2FsdGVkX1";

const b64 = (data: Buffer | string) => Buffer.from(data).toString("base64").replace(/=+$/, "");

/** OpenSSL's EVP_BytesToKey with MD5, one round: 32 bytes of key and 16 of IV. */
function keyAndIv(password: Buffer, salt: Buffer): { key: Buffer; iv: Buffer } {
    const blocks: Buffer[] = [];
    let previous = Buffer.alloc(0);
    while (Buffer.concat(blocks).length < 48) {
        previous = createHash("md5")
            .update(Buffer.concat([previous, password, salt]))
            .digest();
        blocks.push(previous);
    }
    const material = Buffer.concat(blocks);
    return { key: material.subarray(0, 32), iv: material.subarray(32, 48) };
}

export function spaPacket(request: SpaRequest): string {
    const random = request.random ?? String(randomInt(0, 10 ** 8)).padStart(8, "0") + String(randomInt(0, 10 ** 8)).padStart(8, "0");
    const timestamp = Math.floor((request.now ?? new Date()).getTime() / 1000);
    const message = `${request.source},${request.access.join(",")}`;
    const encoded = [random, b64(request.user ?? "mor-harden"), String(timestamp), PROTOCOL_VERSION, String(ACCESS_MESSAGE), b64(message)].join(":");
    const plaintext = `${encoded}:${b64(createHash("sha256").update(encoded).digest())}`;

    const salt = request.salt ?? randomBytes(8);
    const { key, iv } = keyAndIv(Buffer.from(request.keys.key, "base64"), salt);
    const cipher = createCipheriv("aes-256-cbc", key, iv);
    const encrypted = Buffer.concat([Buffer.from("Salted__"), salt, cipher.update(plaintext, "utf8"), cipher.final()]);
    const body = b64(encrypted);
    if (!body.startsWith(SALTED_PREFIX_B64)) throw new Error("SPA: unexpected ciphertext prefix");
    // The HMAC covers the whole base64 text; only the packet leaves the constant prefix out.
    const hmac = b64(createHmac("sha256", Buffer.from(request.keys.hmacKey, "base64")).update(body).digest());
    return body.slice(SALTED_PREFIX_B64.length) + hmac;
}

/** New random keys, as `fwknop --key-gen` makes them (32-byte key, 64-byte HMAC key). */
export function generateSpaKeys(): SpaKeys {
    return { key: randomBytes(32).toString("base64"), hmacKey: randomBytes(64).toString("base64") };
}
