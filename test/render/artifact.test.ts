// sha256Hex: the one digest of a content for the render, the engine and drift; a large content is
// hashed once and kept among the last few.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { sha256Hex } from "../../src/render/artifact";

const reference = (text: string) => createHash("sha256").update(text).digest("hex");

describe("sha256Hex", () => {
    it("gives sha256 of small and large contents, also after older large ones were let go", () => {
        assert.equal(sha256Hex(""), reference(""));
        assert.equal(sha256Hex("add morh-bl-x-4 198.18.0.1\n"), reference("add morh-bl-x-4 198.18.0.1\n"));
        // Large contents of the same length (kept digests are looked up by content, not by length).
        const large = Array.from({ length: 12 }, (_, index) => `${String(index).padStart(2, "0")}${"x".repeat(70_000)}`);
        for (const content of large) assert.equal(sha256Hex(content), reference(content));
        for (const content of large) assert.equal(sha256Hex(content), reference(content), "again, some of them kept");
    });
});
