// The report kit: host names, XML escaping once, JUnit documents that an XML parser reads back.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import type { AuditResult } from "../../src/audit/check";
import { auditJunit } from "../../src/audit/report";
import type { DriftResult } from "../../src/drift/check";
import { junitReport } from "../../src/drift/report";
import { hostHeading, hostLabel, xmlEscape } from "../../src/render/report";

/** xmllint's reading of a document: throws on one that is not well-formed. */
const wellFormed = (xml: string) => execFileSync("xmllint", ["--noout", "-"], { input: xml, encoding: "utf8" });

describe("the report kit", () => {
    it("names a host by stack, host and address", () => {
        assert.equal(hostLabel({ stack: "lab" }), "lab");
        assert.equal(hostLabel({ stack: "production", host: "mor-2" }), "production/mor-2");
        assert.equal(hostHeading({ stack: "production", host: "mor-2", address: "192.0.2.12" }), "production/mor-2 (192.0.2.12)");
        assert.equal(hostHeading({ stack: "gone" }), "gone");
    });

    it("escapes the characters XML gives meaning to, in content and attributes", () => {
        assert.equal(xmlEscape(`a&b <c> "d"`), "a&amp;b &lt;c&gt; &quot;d&quot;");
    });

    it("escapes a stack's name once in the audit's JUnit (its class name too) and the drift's", () => {
        const stack = "/tmp/R&D <lab>/Pulumi.x.yaml";
        const audit: AuditResult = { stack, address: "192.0.2.11", status: "checked", findings: [], roundTrips: 1, seconds: 0.1 };
        const down: AuditResult = { stack, status: "error", reason: `refused "x" & more`, findings: [], roundTrips: 0, seconds: 0 };
        const auditXml = auditJunit([audit, down], "high");
        wellFormed(auditXml);
        assert.match(auditXml, /classname="mor-harden\.audit\.\/tmp\/R&amp;D &lt;lab&gt;\/Pulumi\.x\.yaml \(192\.0\.2\.11\)"/);
        assert.doesNotMatch(auditXml, /&amp;amp;|&amp;lt;/);
        assert.match(auditXml, /<error message="refused &quot;x&quot; &amp; more"\/>/);
        const drift: DriftResult = { stack, status: "error", reason: "a <b>", findings: [], notChecked: [], roundTrips: 0, seconds: 0 };
        const driftXml = junitReport([drift]);
        wellFormed(driftXml);
        assert.match(
            driftXml,
            /<testcase classname="mor-harden\.drift" name="\/tmp\/R&amp;D &lt;lab&gt;\/Pulumi\.x\.yaml" time="0\.000"><error message="a &lt;b&gt;"\/><\/testcase>/,
        );
        assert.doesNotMatch(driftXml, /&amp;amp;/);
    });
});
