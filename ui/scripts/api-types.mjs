// Writes src/api-types.ts, the TypeScript types of the HTTP API's schemas,
// from its OpenAPI document (crates/lab_server/src/openapi.json, itself
// generated from the Rust types the server sends).
//
//   node scripts/api-types.mjs           (npm run api-types) writes the file
//   node scripts/api-types.mjs --check   (npm run check and npm run build)
//                                        fails when the file is not what it would write
//
// It reads the part of JSON Schema the document uses: $ref, oneOf/anyOf,
// enum, type (one or a list), properties with required, additionalProperties,
// items, description. (openapi-typescript does this job in general, but it
// needs the compiler API of TypeScript 5, which TypeScript 7 no longer has.)

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const DOCUMENT = resolve(HERE, "../../crates/lab_server/src/openapi.json");
const OUTPUT = resolve(HERE, "../src/api-types.ts");
const REF = "#/components/schemas/";

/** A JSDoc comment of `text`, indented by `pad`, or nothing. */
function doc(text, pad) {
  if (!text) return "";
  const lines = String(text).replace(/\*\//g, "*\\/").split("\n");
  if (lines.length === 1) return `${pad}/** ${lines[0]} */\n`;
  return `${pad}/**\n${lines.map((l) => `${pad} * ${l}`).join("\n")}\n${pad} */\n`;
}

/** A property name as TypeScript writes it. */
function key(name) {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

/** `parts` as a union: a part that is a union of plain types joins it; any
 * other compound part is put in parentheses. */
function union(parts) {
  const flat = parts.flatMap((p) => (/[{}()&[\]]/.test(p) ? [p] : p.split(" | ")));
  const unique = [...new Set(flat)];
  if (unique.length === 1) return unique[0];
  return unique.map((p) => (/[|&]/.test(p) && !/^[({]/.test(p) ? `(${p})` : p)).join(" | ");
}

/** The TypeScript type of `schema`; nested object types are indented by `pad`. */
function type(schema, pad) {
  if (schema === true || schema === undefined) return "unknown";
  if (schema === false) return "never";
  if (schema.$ref) {
    if (!schema.$ref.startsWith(REF)) throw new Error(`a $ref outside the schemas: ${schema.$ref}`);
    return schema.$ref.slice(REF.length);
  }
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) return union(alternatives.map((s) => type(s, pad)));
  if (schema.allOf) return schema.allOf.map((s) => type(s, pad)).join(" & ");
  if (schema.enum) return union(schema.enum.map((v) => JSON.stringify(v)));
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (!types.length) return schema.properties ? object(schema, pad) : "unknown";
  return union(types.map((t) => one(t, schema, pad)));
}

function one(t, schema, pad) {
  switch (t) {
    case "string":
      return "string";
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      const item = type(schema.items, pad);
      return /[|&]/.test(item) && !/^[({]/.test(item) ? `(${item})[]` : `${item}[]`;
    }
    case "object":
      return object(schema, pad);
    default:
      throw new Error(`an unknown type: ${t}`);
  }
}

/** An object type: its properties, and an index signature for the others. */
function object(schema, pad) {
  const inner = pad + "  ";
  const required = new Set(schema.required ?? []);
  const lines = [];
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const optional = required.has(name) ? "" : "?";
    lines.push(`${doc(prop.description, inner)}${inner}${key(name)}${optional}: ${type(prop, inner)};\n`);
  }
  const extra = schema.additionalProperties;
  if (extra !== undefined && extra !== false) {
    lines.push(`${inner}[key: string]: ${type(extra, inner)};\n`);
  } else if (!schema.properties) {
    return "Record<string, unknown>";
  }
  return `{\n${lines.join("")}${pad}}`;
}

function generate() {
  const document = JSON.parse(readFileSync(DOCUMENT, "utf8"));
  const schemas = document.components?.schemas ?? {};
  let out =
    "// The HTTP API's types, generated from crates/lab_server/src/openapi.json\n" +
    "// by scripts/api-types.mjs (`npm run api-types`): do not edit.\n";
  for (const [name, schema] of Object.entries(schemas)) {
    out += `\n${doc(schema.description, "")}export type ${name} = ${type(schema, "")};\n`;
  }
  return out;
}

const text = generate();
if (process.argv.includes("--check")) {
  let committed = "";
  try {
    committed = readFileSync(OUTPUT, "utf8");
  } catch {
    /* missing: differs */
  }
  if (committed !== text) {
    console.error("ui/src/api-types.ts is not what crates/lab_server/src/openapi.json gives; write it again with `npm run api-types` in ui/");
    process.exit(1);
  }
} else {
  writeFileSync(OUTPUT, text);
}
