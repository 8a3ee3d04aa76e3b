// HostSession.startLogin (a login started while the caller renders) against an in-process SSH
// server (ssh2's Server on 127.0.0.1, as test/apply/protocol.test.ts plays hosts): what it hands
// over, and that a login nobody takes is closed and never an unhandled rejection.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Server, utils, type Connection } from "ssh2";
import { fingerprintOf, HostSession, type SessionTarget } from "../../src/ssh/session";

const hostKey = utils.generateKeyPairSync("ed25519");
const clientKey = utils.generateKeyPairSync("ed25519");
const otherKey = utils.generateKeyPairSync("ed25519");
let server: Server;
let port = 0;
/** Connections the server has, and how many it has seen end. */
const open = new Set<Connection>();
let ended = 0;
/** Delays the server's acceptance of a login (a host slow to authenticate). */
let acceptAfterMs = 0;

before(async () => {
    server = new Server({ hostKeys: [hostKey.private] }, (client) => {
        open.add(client);
        client.on("close", () => {
            open.delete(client);
            ended++;
        });
        client.on("error", () => undefined);
        client.on("authentication", (context) => {
            const publicKey = utils.parseKey(clientKey.public);
            if (publicKey instanceof Error) throw publicKey;
            const ours = context.method === "publickey" && context.key.data.equals(publicKey.getPublicSSH());
            if (!ours) return context.reject(["publickey"]);
            setTimeout(() => context.accept(), acceptAfterMs);
        });
        client.on("session", (accept) =>
            accept().on("exec", (acceptExec) => {
                const stream = acceptExec();
                stream.exit(0);
                stream.end();
            }),
        );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
});

after(async () => {
    for (const client of open) client.end();
    await new Promise((resolve) => server.close(resolve));
});

function target(privateKey = clientKey.private): SessionTarget {
    const blob = utils.parseKey(hostKey.public);
    if (blob instanceof Error) throw blob;
    return {
        address: "127.0.0.1",
        port,
        user: "root",
        hostKey: fingerprintOf(blob.getPublicSSH()),
        sudo: false,
        privateKey,
        connectTimeoutSeconds: 5,
        commandTimeoutSeconds: 5,
    };
}

const until = async (condition: () => boolean, what: string) => {
    for (let tries = 0; tries < 100 && !condition(); tries++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(condition(), what);
};

describe("HostSession.startLogin", () => {
    it("hands over the session it opened, which the taker uses and closes", async () => {
        const login = HostSession.startLogin(target());
        const session = await login.take();
        assert.equal((await session.run("true")).code, 0);
        const before = ended;
        session.close();
        login.discard(); // after take: the taker's, not closed twice
        await until(() => ended === before + 1, "the session closed once");
    });

    it("discarded before the login completed: closed once it is open", async () => {
        acceptAfterMs = 300;
        try {
            const before = ended;
            const login = HostSession.startLogin(target());
            login.discard();
            await until(() => ended === before + 1, "the server saw the connection end");
            assert.equal(open.size, 0);
        } finally {
            acceptAfterMs = 0;
        }
    });

    it("a failed login nobody takes is no unhandled rejection; take() rejects with its reason", async () => {
        const unhandled: unknown[] = [];
        const onUnhandled = (reason: unknown) => unhandled.push(reason);
        process.on("unhandledRejection", onUnhandled);
        try {
            // It fails while the caller still renders: neither taken nor discarded yet.
            const pending = HostSession.startLogin(target(otherKey.private));
            await new Promise((resolve) => setTimeout(resolve, 500));
            pending.discard();
            const refused = HostSession.startLogin(target(otherKey.private));
            await assert.rejects(refused.take(), /authentication/i);
            assert.deepEqual(unhandled, []);
        } finally {
            process.off("unhandledRejection", onUnhandled);
        }
    });
});
