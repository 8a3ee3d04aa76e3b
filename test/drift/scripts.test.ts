// The drift check's read-only script, run by this machine's own sh over files of a scratch
// directory: with the desired digests it sends back the contents of the files that differ only.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { renderHost } from "../../src/compose/host";
import { driftScript, parseDriftOutput } from "../../src/drift/scripts";
import { file, sha256Hex, type ConcernPlan } from "../../src/render/artifact";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";

const dir = mkdtempSync(join(tmpdir(), "drift-script-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const path = (name: string) => join(dir, name);

// On the host: `same` as desired; `edited` by hand; `edited-twin` holds what `edited` should (its
// path begins with edited's: a line of sha256sum's output must not stand for another file's).
writeFileSync(path("same"), "as desired\n");
writeFileSync(path("edited"), "edited by hand\n");
writeFileSync(path("edited-twin"), "edited as desired\n");
const artifacts = [
    file(path("same"), "as desired\n"),
    file(path("edited"), "edited as desired\n"),
    file(path("edited-twin"), "edited as desired\n"),
    file(path("missing"), "never written\n"),
];
let plan: ConcernPlan;
// A rendered plan with these files only, no live views and no checks (this machine is no MOR host).
before(async () => {
    const fail2ban = renderHost(await renderInputFor(minimalConfig())).find((rendered) => rendered.concern === "fail2ban")!;
    plan = { ...fail2ban, artifacts, liveViews: [], verify: [] };
});
const digests = Object.fromEntries(artifacts.map((artifact) => [artifact.path, sha256Hex(artifact.content)]));

function run(script: string, env: NodeJS.ProcessEnv = process.env) {
    const result = spawnSync("sh", ["-s"], { input: script, encoding: "utf8", env });
    assert.equal(result.status, 0, result.stderr);
    return { read: parseDriftOutput(result.stdout), output: result.stdout };
}

describe("drift script", () => {
    it("with the desired digests, sends back the content of the edited file only, digests of all", () => {
        const { read, output } = run(driftScript([plan], digests));
        assert.equal(read.files[path("edited")]?.content, "edited by hand\n");
        assert.equal(read.files[path("same")]?.content, undefined, "a file as desired is not sent back");
        assert.equal(read.files[path("edited-twin")]?.content, undefined);
        assert.equal(read.files[path("missing")], undefined);
        for (const name of ["same", "edited", "edited-twin"])
            assert.equal(
                read.files[path(name)]?.sha256,
                sha256Hex(name === "edited" ? "edited by hand\n" : name === "same" ? "as desired\n" : "edited as desired\n"),
                name,
            );
        assert.doesNotMatch(output, /as desired/, "no content in clear either");
    });

    it("sends back nothing but digests when every file is as desired", () => {
        const clean = { ...digests, [path("edited")]: sha256Hex("edited by hand\n") };
        const { read, output } = run(driftScript([plan], clean));
        assert.doesNotMatch(output, /^[CZ] /m);
        assert.equal(Object.keys(read.files).length, 3);
    });

    it("without digests, sends back every readable file", () => {
        const { read } = run(driftScript([plan]));
        assert.equal(read.files[path("same")]?.content, "as desired\n");
        assert.equal(read.files[path("edited")]?.content, "edited by hand\n");
        assert.equal(read.files[path("edited-twin")]?.content, "edited as desired\n");
    });

    it("reads the same at once (in a scratch directory it removes) as one after another (no scratch directory)", () => {
        // Three concerns of views and checks, one check failing, one view in the background.
        const concern = (name: ConcernPlan["concern"], liveViews: ConcernPlan["liveViews"], verify: string[]) => ({
            ...plan,
            concern: name,
            artifacts: name === "fail2ban" ? artifacts : [],
            liveViews,
            verify,
        });
        const plans = [
            concern("fail2ban", [{ name: "a", live: "echo fail2ban view; sleep 0.2", expected: { text: "" } }], ["echo jail down >&2; exit 3"]),
            concern("sshd", [{ name: "b", live: "echo sshd view", expected: { text: "" } }], ["true"]),
            concern("firewall", [{ name: "c", live: "echo slow set", background: true, expected: { text: "" } }], ["echo fine"]),
        ];
        const scratch = path("tmp");
        mkdirSync(scratch);
        const atOnce = run(driftScript(plans, digests), { ...process.env, TMPDIR: scratch });
        assert.deepEqual(readdirSync(scratch), [], "the scratch directories are removed");
        const inTurn = run(driftScript(plans, digests), { ...process.env, TMPDIR: path("no-such-directory") });
        assert.deepEqual(atOnce.read, inTurn.read);
        assert.deepEqual(atOnce.read.services, {
            fail2ban: { ok: false, output: "jail down" },
            sshd: { ok: true, output: "" },
            firewall: { ok: true, output: "fine" },
        });
        assert.equal(atOnce.read.views["fail2ban/0"].live, "fail2ban view");
        assert.equal(atOnce.read.views["firewall/0"].live, "slow set");
        assert.equal(atOnce.read.files[path("edited")]?.content, "edited by hand\n");
    });
});
