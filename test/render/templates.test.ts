// Precompiled templates: the build's precompiled form of every template renders exactly what
// Handlebars compiling the same source now renders, and a template edited after the build is
// compiled from its new source (never its stale precompiled form).
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { describe, it } from "node:test";
import { renderHost } from "../../src/compose/host";
import { parseHostConfig } from "../../src/config/schema";
import * as templates from "../../src/render/templates";
import { certificateFor, minimalRaw, renderInputFor } from "../helpers/fixtures";

const dir = templates.findTemplatesDir();
const names = (from: string): string[] =>
    readdirSync(from, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory() ? names(join(from, entry.name)) : entry.name.endsWith(".hbs") ? [relative(dir, join(from, entry.name)).split(sep).join("/")] : [],
    );
const source = (name: string) => readFileSync(join(dir, name), "utf8");

describe("precompiled templates", () => {
    it("holds every template under templates/ with its source's digest (npm run build wrote it)", () => {
        assert.ok(existsSync(templates.PRECOMPILED_FILE), `${templates.PRECOMPILED_FILE} missing: run npm run build`);
        const precompiled = require(templates.PRECOMPILED_FILE) as templates.PrecompiledTemplates;
        const all = names(dir);
        assert.ok(all.length > 20, `templates found: ${all.length}`);
        for (const name of all) assert.equal(precompiled[name]?.sha256, templates.sourceDigest(source(name)), name);
    });

    it("renders every template a host uses exactly as Handlebars compiling its source now", async () => {
        const calls: { name: string; data: object; output: string }[] = [];
        const original = templates.renderTemplate;
        const recording = (name: string, data: object) => {
            const output = original(name, data);
            calls.push({ name, data, output });
            return output;
        };
        (templates as { renderTemplate: typeof original }).renderTemplate = recording;
        try {
            const certificate = certificateFor("mor.example.com").certificate;
            for (const raw of [
                minimalRaw(),
                minimalRaw({
                    apache: { enabled: true, serverName: "mor.example.com", certificate },
                    tlsKey: { secretRef: "tlsKey" },
                    fail2ban: { notify: { webhook: { url: "https://hooks.example.com/x" }, mail: { to: "ops@example.com" } } },
                }),
                minimalRaw({ os: "rhel" }),
            ]) {
                renderHost(await renderInputFor(parseHostConfig(raw)));
            }
        } finally {
            (templates as { renderTemplate: typeof original }).renderTemplate = original;
        }
        const used = new Set(calls.map((call) => call.name));
        assert.ok(used.size >= 20, `templates rendered: ${[...used].join(", ")}`);
        for (const { name, data, output } of calls) assert.equal(templates.templateOf(name, source(name), false)(data), output, name);
    });

    it("compiles a template edited since the build from its new source", () => {
        const [name] = names(dir);
        // The precompiled form is there for this name, but its digest is of the old source.
        const rendered = templates.templateOf(name, "edited since the build: {{what}}\n")({ what: "new text" });
        assert.equal(rendered, "edited since the build: new text\n");
    });
});
