// Copies the browser files NOFX serves from npm packages into static/vendor/.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = [
  ["node_modules/htmx.org/dist/htmx.min.js", "static/vendor/htmx.min.js"],
  ["node_modules/htmx-ext-sse/dist/sse.min.js", "static/vendor/htmx-sse.min.js"],
];

mkdirSync(join(root, "static/vendor"), { recursive: true });
for (const [from, to] of files) {
  copyFileSync(join(root, from), join(root, to));
  console.log(`${from} -> ${to}`);
}
