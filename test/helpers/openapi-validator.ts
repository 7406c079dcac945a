import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { matchRoute } from '#http/routes.ts';
import { servedDocument } from '../../scripts/openapi-document.ts';

/** What a response came to, as the validator needs it. */
export interface ObservedResponse {
  method: string;
  /** The request path (the query string is ignored). */
  path: string;
  status: number;
  headers: Headers;
  text: string;
}

interface ResponseObject {
  content?: Record<string, { schema?: unknown }>;
  headers?: Record<string, { required?: boolean }>;
}

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

let loaded: Promise<{ doc: Record<string, any>; ajv: Ajv2020 }> | undefined;

/** The document as the API serves it, in one ajv instance (draft 2020-12, formats), compiled lazily. */
function load() {
  loaded ??= servedDocument().then((doc) => {
    // The document is not itself a JSON Schema: add it unvalidated and compile its schemas by pointer.
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
    addFormats.default(ajv);
    ajv.addSchema(doc, 'openapi.json');
    return { doc, ajv };
  });
  return loaded;
}

const compiled = new Map<string, ValidateFunction>();
function validatorAt(ajv: Ajv2020, ref: string): ValidateFunction {
  const known = compiled.get(ref);
  if (known) return known;
  const validate = ajv.compile({ $ref: `openapi.json#${ref}` });
  compiled.set(ref, validate);
  return validate;
}

const JSON_MEDIA = /^application\/([\w.+-]+\+)?json$/;

/**
 * Checks one response against the OpenAPI document: the status is documented for the route, the
 * content type is one of its media types, a JSON body is valid against the schema, and every header
 * the document marks required is present. Returns the problems (empty = conforms).
 */
export async function responseProblems(res: ObservedResponse): Promise<string[]> {
  const { doc, ajv } = await load();
  const match = matchRoute(res.method, res.path.split('?')[0]);
  const media = (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  let base: string;
  let response: ResponseObject | undefined;
  if (match.kind === 'route') {
    const op = `/paths/${pointer(match.route.path, match.route.method.toLowerCase())}`;
    base = `${op}/responses/${res.status}`;
    response = doc.paths[match.route.path]?.[match.route.method.toLowerCase()]?.responses?.[String(res.status)];
    if (!response) return [`status ${res.status} is not documented`];
  } else {
    // No route (404) or another method (405): a problem document with a routing code.
    if (media !== 'application/problem+json') return [`unrouted response is ${media}, not application/problem+json`];
    return check(validatorAt(ajv, '/components/schemas/Problem'), res.text);
  }
  const problems: string[] = [];
  const content = response.content ?? {};
  if (Object.keys(content).length === 0) {
    if (res.text.length > 0) problems.push(`a body (${media}) where the document describes none`);
  } else if (!(media in content)) {
    problems.push(`content type "${media}" is not documented (${Object.keys(content).join(', ')})`);
  } else if (JSON_MEDIA.test(media) && content[media].schema) {
    problems.push(...check(validatorAt(ajv, `${base}/content/${pointer(media)}/schema`), res.text));
  }
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    if (header.required && !res.headers.has(name)) problems.push(`required header ${name} is missing`);
  }
  return problems;
}

function check(validate: ValidateFunction, text: string): string[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return ['the body is not JSON'];
  }
  if (validate(body)) return [];
  return (validate.errors ?? [])
    .slice(0, 8)
    .map((e) => `body${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
}

/** Throws, naming the route, the status and the problems, when a response does not conform to the document. */
export async function assertConforms(res: ObservedResponse): Promise<void> {
  const problems = await responseProblems(res);
  if (problems.length === 0) return;
  const match = matchRoute(res.method, res.path.split('?')[0]);
  const route = match.kind === 'route' ? `${match.route.method} ${match.route.path}` : `${res.method} ${res.path}`;
  throw new Error(
    `response does not conform to the OpenAPI document: ${route} → ${res.status}\n  - ${problems.join('\n  - ')}\n  body: ${res.text.slice(0, 500)}`,
  );
}
