#!/usr/bin/env node
// Validate glb files with the Khronos glTF validator; print one JSON report per file
// as a JSON array: [{"file", "errors", "warnings", "messages": [...]}]. Exit 1 on any error.
import { readFile } from "node:fs/promises";
import validator from "gltf-validator";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: validate.mjs FILE.glb [FILE.glb ...]");
  process.exit(2);
}
const reports = [];
let failed = false;
for (const file of files) {
  const bytes = new Uint8Array(await readFile(file));
  const result = await validator.validateBytes(bytes, { uri: file, maxIssues: 50 });
  const issues = result.issues;
  reports.push({
    file,
    errors: issues.numErrors,
    warnings: issues.numWarnings,
    messages: issues.messages.map((m) => `${m.code} ${m.pointer ?? ""}: ${m.message}`),
  });
  failed = failed || issues.numErrors > 0;
}
console.log(JSON.stringify(reports));
process.exit(failed ? 1 : 0);
