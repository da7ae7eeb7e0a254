// Writes ../static/THIRD_PARTY_LICENSES.txt: the license of every package bundled into graphview.js.
import { readFileSync, writeFileSync } from "node:fs";

const bundled = ["cytoscape", "@dagrejs/dagre", "@dagrejs/graphlib"];
const parts = [];
for (const name of bundled) {
  let pkg;
  try { pkg = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")); } catch { continue; }
  const text = readFileSync(`node_modules/${name}/LICENSE`, "utf8").trim();
  parts.push(`${name} ${pkg.version} (${pkg.license}) ${pkg.homepage ?? ""}\n\n${text}\n`);
}
writeFileSync("../static/THIRD_PARTY_LICENSES.txt",
  "Third-party code bundled into graphview.js\n==========================================\n\n" + parts.join("\n" + "-".repeat(72) + "\n\n"));
