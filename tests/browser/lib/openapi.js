'use strict';
/* Checks HTTP answers against api/openapi.yaml: finds the operation of a
 * method + path, the documented response of the status, and validates the
 * Content-Type, the required headers and the body (JSON, or each NDJSON
 * line) with Ajv (JSON Schema 2020-12, the dialect of OpenAPI 3.1) against
 * the response schema. Request bodies and query parameters are checked
 * against the operation too. Every check throws an Error naming the
 * request. */
const fs = require('node:fs');
const YAML = require('yaml');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

class Spec {
  constructor(file) {
    this.doc = YAML.parse(fs.readFileSync(file, 'utf8'));
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema(this.doc, 'openapi');
    this.compiled = new Map();
    this.paths = Object.keys(this.doc.paths).map((p) => ({
      template: p,
      params: (p.match(/\{/g) || []).length,
      re: new RegExp('^' + p.replace(/\{[^}]+\}/g, '[^/]+') + '$'),
    })).sort((a, b) => a.params - b.params);
  }

  /* Follows a local $ref; [object, JSON pointer of it]. */
  deref(obj, ptr) {
    while (obj && obj.$ref) {
      ptr = obj.$ref.slice(1);
      obj = ptr.split('/').slice(1).reduce((o, k) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')], this.doc);
    }
    return [obj, ptr];
  }

  /* The validator of a schema object (its local $refs into the spec). */
  validator(schema, key) {
    if (!this.compiled.has(key)) {
      const text = JSON.stringify(schema).replace(/"\$ref":"#\//g, '"$ref":"openapi#/');
      this.compiled.set(key, this.ajv.compile(JSON.parse(text)));
    }
    return this.compiled.get(key);
  }

  check(schema, key, value, what) {
    const v = this.validator(schema, key);
    if (!v(value)) {
      throw new Error(`${what}: ${this.ajv.errorsText(v.errors, { separator: '; ' })}\n` +
        JSON.stringify(value).slice(0, 600));
    }
  }

  /* The path template an URL path matches, or null. */
  pathOf(path) {
    const hit = this.paths.find((p) => p.re.test(path));
    return hit ? hit.template : null;
  }

  /* Methods the spec has for a path template (implemented ones). */
  methodsOf(template) {
    const item = this.doc.paths[template];
    return METHODS.filter((m) => item[m] && item[m]['x-segmentd-status'] === 'implemented');
  }

  /* Query parameter names (and path parameters) an operation declares. */
  declared(template, method) {
    const item = this.doc.paths[template];
    const params = [...(item.parameters || []), ...(item[method].parameters || [])]
      .map((p) => this.deref(p, '')[0]);
    return { query: params.filter((p) => p.in === 'query').map((p) => p.name),
      path: params.filter((p) => p.in === 'path').map((p) => p.name) };
  }

  /* Checks a request's query and body against its operation. */
  checkRequest(method, url, body, what) {
    const u = new URL(url, 'http://x');
    const template = this.pathOf(u.pathname);
    const m = method === 'HEAD' ? 'get' : method.toLowerCase();
    const op = template && this.doc.paths[template][m];
    if (!op) return;
    const decl = this.declared(template, m);
    for (const k of u.searchParams.keys()) {
      if (!decl.query.includes(k)) throw new Error(`${what}: query parameter ${k} is not in the spec`);
    }
    const want = (template.match(/\{[^}]+\}/g) || []).map((s) => s.slice(1, -1));
    if (want.some((n) => !decl.path.includes(n))) throw new Error(`${what}: path parameters not declared`);
    return { op, template };
  }

  /* The documented response object of an answer: [response, pointer]. */
  responseOf(method, path, status, what) {
    const template = this.pathOf(path);
    const m = method === 'HEAD' ? 'get' : method.toLowerCase();
    const op = template && this.doc.paths[template][m];
    if (!op) {
      /* no route (404), or another method (405): the shared responses */
      const name = template ? 'MethodNotAllowed' : 'NotFound';
      if (status !== (template ? 405 : 404)) throw new Error(`${what}: ${status} for an unrouted request`);
      return this.deref({ $ref: `#/components/responses/${name}` }, '');
    }
    const base = `/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${m}/responses`;
    for (const key of [String(status), `${String(status)[0]}XX`, 'default']) {
      if (op.responses[key]) return this.deref(op.responses[key], `${base}/${key}`);
    }
    throw new Error(`${what}: status ${status} is not documented for ${m.toUpperCase()} ${template}`);
  }

  /* Required headers are present; every documented one matches its schema. */
  checkHeaders(resp, respPtr, res, what) {
    for (const [name, h] of Object.entries(resp.headers || {})) {
      const [hdr, ptr] = this.deref(h, `${respPtr}/headers/${name}`);
      const value = res.headers.get(name);
      if (value === null) {
        if (hdr.required) throw new Error(`${what}: header ${name} missing`);
        continue;
      }
      if (!hdr.schema) continue;
      const typed = ['integer', 'number'].includes(hdr.schema.type) ? Number(value) : value;
      this.check(hdr.schema, `header ${ptr}`, typed, `${what}: header ${name}`);
    }
  }

  /* Validates one answer {status, headers, text} of method + url. */
  checkResponse(method, url, res, what) {
    const path = new URL(url, 'http://x').pathname;
    const [resp, ptr] = this.responseOf(method, path, res.status, what);
    this.checkHeaders(resp, ptr, res, what);
    const content = resp.content || {};
    if (!Object.keys(content).length || method === 'HEAD' || res.status === 304) {
      if (res.text !== '') throw new Error(`${what}: a body where the spec has none`);
      return;
    }
    const ct = (res.headers.get('content-type') || '').split(';')[0].trim();
    const mt = Object.keys(content).find((k) => k === ct);
    if (!mt) throw new Error(`${what}: Content-Type ${ct} is not among ${Object.keys(content)}`);
    const schema = content[mt].schema;
    if (!schema) return;
    const key = `${ptr}/content/${mt}`;
    if (mt === 'application/json') {
      this.check(schema, key, JSON.parse(res.text), what);
    } else if (mt === 'application/x-ndjson') {
      const lines = res.text.split('\n').filter((l) => l !== '');
      lines.forEach((l, i) => this.check(schema, key, JSON.parse(l), `${what} line ${i + 1}`));
    } else {
      this.check(schema, key, res.text, what);
    }
  }

  /* Validates a request body sent with a 2xx answer against the spec. */
  checkRequestBody({ op, template }, method, body, what) {
    const [rb] = this.deref(op.requestBody, '');
    if (!rb || body === undefined) return;
    const schema = rb.content && rb.content['application/json'] && rb.content['application/json'].schema;
    if (schema) this.check(schema, `request ${method} ${template}`, body, `${what} (request body)`);
  }
}

/* The routing table of src/http_router.c: [{method, pattern, access}]
 * (access: the scope column, e.g. SD_ACCESS_READ; null without one). */
function routerRoutes(file) {
  const src = fs.readFileSync(file, 'utf8');
  const out = [];
  for (const m of src.matchAll(/\{"(GET|POST|PUT|PATCH|DELETE)", "([^"]+)", h_\w+(?:, (SD_ACCESS_\w+))?\}/g)) {
    out.push({ method: m[1], pattern: m[2], access: m[3] || null });
  }
  return out;
}

module.exports = { Spec, routerRoutes, METHODS };
