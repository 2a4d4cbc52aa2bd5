import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { didYouMean } from '../util/suggest.js';
import { joinPointer, splitPointer, type ParsedDoc } from './parse.js';
import type { Problem } from './problems.js';

export type DocKind = 'Repository' | 'App' | 'Overlay' | 'Plugin';

const SCHEMA_FILES: Record<DocKind, string> = {
  Repository: 'repository.schema.json',
  App: 'app.schema.json',
  Overlay: 'overlay.schema.json',
  Plugin: 'plugin.schema.json',
};

/** Folder holding the JSON Schemas: `<package>/schemas`, two levels above this module in src/ and dist/. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));

function loadSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(SCHEMA_DIR + name, 'utf8')) as Record<string, unknown>;
}

// ajv-formats ships CJS with a default export; under NodeNext the callable sits on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

let validators: Record<DocKind, ValidateFunction> | undefined;

function getValidators(): Record<DocKind, ValidateFunction> {
  if (validators) return validators;
  const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
  addFormats(ajv);
  ajv.addSchema(loadSchema('common.schema.json'));
  const out = {} as Record<DocKind, ValidateFunction>;
  for (const [kind, file] of Object.entries(SCHEMA_FILES) as [DocKind, string][]) {
    out[kind] = ajv.compile(loadSchema(file));
  }
  validators = out;
  return out;
}

/** Validates `doc` as `kind`; returns every problem, each at the line of the offending value or key. */
export function validateDoc(kind: DocKind, doc: ParsedDoc): Problem[] {
  const validate = getValidators()[kind];
  if (validate(doc.value)) return [];
  return errorsToProblems(validate.errors ?? [], doc);
}

/** Like validateDoc, for data without positions of its own (a patched document): positions come from `locate`. */
export function validateValue(kind: DocKind, value: unknown, file: string, locate: ParsedDoc['locate']): Problem[] {
  return validateDoc(kind, { file, value, locate });
}

let pluginAjv: Ajv2020 | undefined;
const pluginValidators = new WeakMap<object, ValidateFunction>();

/** Compiles a plugin's config schema (its own ajv: plugins' schemas never mix with berth's). Throws when the schema is invalid. */
export function compilePluginSchema(schema: Record<string, unknown>): ValidateFunction {
  const cached = pluginValidators.get(schema);
  if (cached) return cached;
  pluginAjv ??= addFormats(new Ajv2020({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true, useDefaults: true }));
  const { $id: _id, ...anonymous } = schema;
  const validate = pluginAjv.compile(anonymous);
  pluginValidators.set(schema, validate);
  return validate;
}

/**
 * Validates `value`, the part of `doc` at `prefix` (e.g. `/spec/config`), against a plugin's schema;
 * problems point at the document's lines. Defaults the schema declares are filled in `value`.
 */
export function validatePart(schema: Record<string, unknown>, value: unknown, doc: ParsedDoc, prefix: string): Problem[] {
  const validate = compilePluginSchema(schema);
  if (validate(value)) return [];
  return errorsToProblems((validate.errors ?? []).map((e) => ({ ...e, instancePath: prefix + e.instancePath })), doc);
}

function dotted(pointer: string): string {
  const parts = splitPointer(pointer);
  return parts.length ? parts.map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') : '(document)';
}

function describe(schema: unknown): string {
  if (schema && typeof schema === 'object') {
    const s = schema as { description?: string; examples?: unknown[] };
    if (s.examples?.length) return `; expected e.g. ${s.examples.map((e) => JSON.stringify(e)).join(' or ')}`;
    if (s.description) return `; ${s.description}`;
  }
  return '';
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  // YAML's .nan and .inf are numbers to JavaScript, but no field takes them.
  if (typeof v === 'number' && !Number.isFinite(v)) return `${Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf'} (not a finite number)`;
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function errorsToProblems(errors: ErrorObject[], doc: ParsedDoc): Problem[] {
  // A failed anyOf/oneOf reports once; the errors of its branches would only repeat it noisily.
  const umbrellas = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.schemaPath + '/');
  const kept = errors.filter((e) => e.keyword !== 'if' && !umbrellas.some((u) => e.schemaPath.startsWith(u)));
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const e of kept) {
    const p = toProblem(e, doc);
    const key = `${p.line}:${p.column}:${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(p);
  }
  return problems;
}

function toProblem(e: ErrorObject, doc: ParsedDoc): Problem {
  const at = (pointer: string, message: string, key = false, code: Problem['code'] = 'schema'): Problem => ({
    code,
    file: doc.file,
    ...doc.locate(pointer, key),
    pointer: pointer || undefined,
    message,
  });
  const where = dotted(e.instancePath);
  const parent = e.parentSchema as Record<string, unknown> | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const prop = String((e.params as { additionalProperty: string }).additionalProperty);
      const pointer = e.instancePath + joinPointer([prop]);
      const known = Object.keys((parent?.properties as Record<string, unknown> | undefined) ?? {});
      const guess = didYouMean(prop, known);
      const hint = guess ? `; did you mean "${guess}"?` : known.length ? `; allowed: ${known.join(', ')}` : '';
      return at(pointer, `unknown field "${prop}" in ${where}${hint}`, true, 'unknown-field');
    }
    case 'required': {
      const prop = String((e.params as { missingProperty: string }).missingProperty);
      return at(e.instancePath, `${where}: missing required field "${prop}"`, true);
    }
    case 'type':
      return at(e.instancePath, `${where}: expected ${String((e.params as { type: string }).type)}, got ${jsonType(e.data)}`);
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      const guess = typeof e.data === 'string' ? didYouMean(e.data, allowed) : undefined;
      return at(e.instancePath, `${where}: ${JSON.stringify(e.data)} is not one of ${allowed.join(', ')}${guess ? `; did you mean "${guess}"?` : ''}`);
    }
    case 'const': {
      const expected = JSON.stringify((e.params as { allowedValue: unknown }).allowedValue);
      const why = typeof parent?.description === 'string' ? `; ${parent.description}` : '';
      return at(e.instancePath, `${where}: expected ${expected}, got ${JSON.stringify(e.data)}${why}`);
    }
    case 'pattern':
      return at(e.instancePath, `${where}: ${JSON.stringify(e.data)} is not valid${describe(parent)}`);
    case 'oneOf':
    case 'anyOf': {
      const branches = (e.schema as Record<string, unknown>[]) ?? [];
      const requiredOnly = branches.every((b) => Array.isArray(b.required) && Object.keys(b).length === 1);
      if (requiredOnly) {
        const names = branches.map((b) => (b.required as string[]).join('+'));
        return at(e.instancePath, `${where}: set ${e.keyword === 'oneOf' ? 'exactly' : 'at least'} one of ${names.join(', ')}`, true);
      }
      const title = typeof parent?.title === 'string' ? parent.title : 'one of the allowed forms';
      return at(e.instancePath, `${where}: expected ${title}, got ${jsonType(e.data)} ${JSON.stringify(e.data)}`);
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      // A bound without a type is a cross-field rule (if/then); its description says why.
      const why = parent && !('type' in parent) && typeof parent.description === 'string' ? `; ${parent.description}` : '';
      return at(e.instancePath, `${where}: ${JSON.stringify(e.data)} ${e.message ?? 'is out of range'}${why}`);
    }
    default:
      return at(e.instancePath, `${where}: ${e.message ?? 'is invalid'}`);
  }
}
