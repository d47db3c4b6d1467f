/**
 * The nunjucks environment that renders bundle templates: undefined values
 * are errors, Ansible's filters are there, host facts render to placeholder
 * tokens, and includes, imports and extends cannot leave the bundle directory
 * and the shared templates/ directory, symlinks resolved.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import nunjucks from 'nunjucks';
import { describe, RickError } from '../errors.js';
import {
  ansibleFilters,
  TemplateFunctionError,
  templateFunctions,
  undefinedAwareFilters,
} from './render-filters.js';

export interface RendererOptions {
  /** The bundle directory (bundles/<name>). */
  bundleDir: string;
  /** The shared templates directory; skipped when it does not exist. */
  templatesDir?: string;
}

export interface Renderer {
  /** Renders a template named relative to the bundle dir (or templates/). */
  render(name: string, context: Record<string, unknown>): string;
  /** Renders a string from bundle.yaml (a variable value, a check URL). */
  renderString(source: string, context: Record<string, unknown>, where: string): string;
}

interface Root {
  dir: string;
  real: string;
  label: string;
}

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

// nunjucks' parser is not part of its typed API; it is used to name the
// undefined expression of an error.
interface AstNode {
  typename: string;
  lineno: number;
  colno: number;
  value?: unknown;
  fields?: string[];
  [field: string]: unknown;
}
const require = createRequire(import.meta.url);
const parser = require('nunjucks/src/parser') as {
  parse(src: string, extensions: unknown[], opts: unknown): AstNode;
};

class ConfinedLoader extends nunjucks.Loader implements nunjucks.ILoader {
  readonly roots: Root[];
  violation: RickError | undefined;
  readonly sources = new Map<string, string>();

  constructor(roots: Root[]) {
    super();
    this.roots = roots;
  }

  display(path: string): string {
    for (const root of this.roots) {
      if (isInside(path, root.dir)) return `${root.label}${relative(root.dir, path)}`;
    }
    return path;
  }

  override resolve(from: string, to: string): string {
    return resolve(from, '..', to);
  }

  private refuse(name: string, why: string): never {
    this.violation = new RickError(
      'TEMPLATE_ERROR',
      `template ${JSON.stringify(name)} ${why}; templates may only include files of the bundle and templates/`,
    );
    throw this.violation;
  }

  private candidate(root: Root, name: string): string | undefined {
    const full = isAbsolute(name) ? name : resolve(root.dir, name);
    if (!isInside(full, root.dir)) return undefined;
    if (!existsSync(full)) return undefined;
    const real = realpathSync(full);
    if (!isInside(real, root.real)) {
      this.refuse(name, `resolves to ${real}, outside ${root.label || 'the bundle'}`);
    }
    if (!statSync(real).isFile()) this.refuse(name, 'is not a regular file');
    return full;
  }

  getSource(name: string): nunjucks.LoaderSource {
    if (isAbsolute(name) && !this.roots.some((r) => isInside(name, r.dir))) {
      this.refuse(name, 'lies outside the bundle');
    }
    if (!isAbsolute(name) && name.split(/[\\/]/).includes('..')) {
      this.refuse(name, 'climbs out with ..');
    }
    for (const root of this.roots) {
      const full = this.candidate(root, name);
      if (full === undefined) continue;
      const src = readFileSync(full, 'utf8');
      this.sources.set(full, src);
      return { src, path: full, noCache: false };
    }
    // nunjucks reports "template not found" itself.
    return null as unknown as nunjucks.LoaderSource;
  }
}

function collectUndefinedSymbols(
  node: unknown,
  isDefined: (name: string) => boolean,
  out: string[],
): void {
  if (!node || typeof node !== 'object') return;
  const n = node as AstNode;
  if (n.typename === 'Symbol') {
    const name = String(n.value);
    if (!isDefined(name) && !out.includes(name)) out.push(name);
    return;
  }
  for (const field of n.fields ?? []) {
    // A filter's name is a Symbol too, but not a variable.
    if (n.typename === 'Filter' && field === 'name') continue;
    const value = n[field];
    if (Array.isArray(value)) {
      for (const child of value) collectUndefinedSymbols(child, isDefined, out);
    } else {
      collectUndefinedSymbols(value, isDefined, out);
    }
  }
}

function findNodeAt(
  node: unknown,
  typename: string,
  line: number,
  col: number,
): AstNode | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const n = node as AstNode;
  if (n.typename === typename && n.lineno === line && n.colno === col) return n;
  for (const field of n.fields ?? []) {
    const value = n[field];
    const children = Array.isArray(value) ? value : [value];
    for (const child of children) {
      const found = findNodeAt(child, typename, line, col);
      if (found) return found;
    }
  }
  return undefined;
}

function findOutputAt(node: unknown, line: number, col: number): AstNode | undefined {
  return findNodeAt(node, 'Output', line, col);
}

function collectNodes(node: unknown, match: (n: AstNode) => boolean, out: AstNode[]): void {
  if (!node || typeof node !== 'object') return;
  const n = node as AstNode;
  if (match(n)) out.push(n);
  for (const field of n.fields ?? []) {
    const value = n[field];
    for (const child of Array.isArray(value) ? value : [value]) collectNodes(child, match, out);
  }
}

/** Every use of a filter in a template. */
function filterUses(src: string, filter: string): AstNode[] {
  const out: AstNode[] = [];
  try {
    collectNodes(
      parser.parse(src, [], { trimBlocks: true }),
      (n) => n.typename === 'Filter' && (n.name as AstNode | undefined)?.value === filter,
      out,
    );
  } catch {
    // It compiled, so it parses.
  }
  return out;
}

/** Whether a template has a function call at nunjucks' 0-based line and column. */
function hasCallAt(src: string, line: number, col: number): boolean {
  try {
    return (
      findNodeAt(parser.parse(src, [], { trimBlocks: true }), 'FunCall', line, col) !== undefined
    );
  } catch {
    return false;
  }
}

/**
 * The undefined symbols of the output tag at a 1-based line and column of a
 * template, or undefined when the template has no output tag there.
 */
function undefinedAt(
  src: string,
  line: number,
  column: number,
  isDefined: (name: string) => boolean,
): string[] | undefined {
  let output: AstNode | undefined;
  try {
    output = findOutputAt(parser.parse(src, [], { trimBlocks: true }), line - 1, column - 1);
  } catch {
    return undefined;
  }
  if (!output) return undefined;
  const names: string[] = [];
  collectUndefinedSymbols(output, isDefined, names);
  return names;
}

interface ErrorSite {
  path: string | undefined;
  line: number | undefined;
  column: number | undefined;
  message: string;
}

/** Where a nunjucks error happened: the innermost template named in the message. */
function locate(error: Error & { lineno?: number; colno?: number; cause?: unknown }): ErrorSite {
  const sites = [
    ...error.message.matchAll(/\(([^()\n]+)\)(?: \[Line (\d+)(?:, Column (\d+))?\])?/g),
  ];
  const last = sites[sites.length - 1];
  const message = last
    ? error.message
        .slice((last.index ?? 0) + last[0].length)
        .replace(/^\s+/, '')
        .replace(/^Template render error: /, '')
    : error.message;
  // Errors thrown by functions carry nunjucks' 0-based line; its own are 1-based.
  const fromFunction = error.cause instanceof Error;
  const line =
    error.lineno === undefined ? undefined : error.lineno + (fromFunction ? 1 : 0) || undefined;
  return {
    path: last?.[1],
    line,
    column: error.colno === undefined ? undefined : error.colno || undefined,
    message: fromFunction ? (error.cause as Error).message : message.split('\n')[0]?.trim() || '',
  };
}

export function createRenderer(options: RendererOptions): Renderer {
  const roots: Root[] = [];
  const addRoot = (dir: string, label: string) => {
    const abs = resolve(dir);
    if (existsSync(abs)) roots.push({ dir: abs, real: realpathSync(abs), label });
  };
  addRoot(options.bundleDir, '');
  if (options.templatesDir) addRoot(options.templatesDir, 'templates/');
  if (roots.length === 0) {
    throw new RickError('INPUT_NOT_FOUND', `bundle directory ${options.bundleDir} does not exist`);
  }
  const loader = new ConfinedLoader(roots);
  const env = new nunjucks.Environment(loader, {
    autoescape: false,
    throwOnUndefined: true,
    // Ansible's template module trims the newline after a block tag.
    trimBlocks: true,
    lstripBlocks: false,
    dev: true,
  });
  for (const [name, fn] of Object.entries(ansibleFilters)) env.addFilter(name, fn);
  // A filter given an undefined value passes it on, so that the output check
  // reports it with the template's line and the variable's name.
  const filters = (env as unknown as { filters: Record<string, (...a: unknown[]) => unknown> })
    .filters;
  for (const [name, fn] of Object.entries(filters)) {
    const passUndefined = !undefinedAwareFilters.has(name);
    filters[name] = function (this: unknown, value: unknown, ...rest: unknown[]) {
      if (passUndefined && value === undefined) return undefined;
      try {
        return fn.call(this, value, ...rest);
      } catch (error) {
        // nunjucks keeps no position for filter calls: remember which filter it was.
        if (error instanceof TemplateFunctionError) error.filter = name;
        throw error;
      }
    };
  }
  for (const [name, fn] of Object.entries(templateFunctions)) env.addGlobal(name, fn);

  const isDefinedIn = (context: Record<string, unknown>) => (name: string) =>
    Object.hasOwn(context, name) || Object.hasOwn(templateFunctions, name);

  const translate = (
    error: unknown,
    fallbackName: string,
    context: Record<string, unknown>,
    source?: string,
  ): RickError => {
    if (loader.violation) {
      const violation = loader.violation;
      loader.violation = undefined;
      return violation;
    }
    if (error instanceof RickError) return error;
    if (!(error instanceof Error)) return new RickError('TEMPLATE_ERROR', String(error));
    const site = locate(error);
    const path = site.path && isAbsolute(site.path) ? site.path : undefined;
    const file = path ? loader.display(path) : fallbackName;
    let line = site.line;
    if (line === undefined && /end of file/.test(site.message)) {
      // nunjucks gives no position for an unclosed block: it is the last line.
      const src = path ? loader.sources.get(path) : source;
      if (src !== undefined) line = src.replace(/\n$/, '').split('\n').length;
    }
    const at = `${file}${line ? ` line ${line}` : ''}`;
    if (/attempted to output null or undefined value/.test(site.message)) {
      // A macro's error carries the macro file's line but the calling
      // template's path, so look for the output tag in every template read.
      const candidates: [string | undefined, string][] = [];
      const own = path ? loader.sources.get(path) : source;
      if (own !== undefined) candidates.push([path, own]);
      for (const [p, src] of loader.sources) if (p !== path) candidates.push([p, src]);
      let names: string[] = [];
      let where = at;
      for (const [p, src] of candidates) {
        if (!site.line || !site.column) break;
        const found = undefinedAt(src, site.line, site.column, isDefinedIn(context));
        if (found === undefined) continue;
        names = found;
        where = `${p ? loader.display(p) : fallbackName} line ${site.line}`;
        if (found.length > 0) break;
      }
      const what = names.length
        ? `undefined variable ${names.join(', ')}`
        : 'an expression is undefined';
      return new RickError('UNDEFINED_VARIABLE', `${what} in ${where}`, {
        hint: 'define it in bundle.yaml variables or a --vars file, or give it a | default(...)',
      });
    }
    const notFound = /template not found: ([^\n]*)/.exec(error.message);
    if (notFound) {
      const searched = [
        options.bundleDir,
        ...(options.templatesDir === undefined ? [] : [options.templatesDir]),
      ].map((dir) => `${resolve(dir)}${existsSync(dir) ? '' : ' (does not exist)'}`);
      return new RickError(
        'TEMPLATE_ERROR',
        `${at}: template not found: ${notFound[1]}; looked in ${searched.join(' and ')}`,
        { hint: 'pass --templates DIR with the directory holding the shared templates' },
      );
    }
    const functionError = error.cause instanceof TemplateFunctionError;
    let where = at;
    const { lineno, colno } = error as Error & { lineno?: number; colno?: number };
    const filter = functionError ? (error.cause as TemplateFunctionError).filter : undefined;
    if (filter !== undefined) {
      // Where that filter is used: if in one place only, that is the place.
      const uses: string[] = [];
      for (const [p, src] of loader.sources) {
        for (const node of filterUses(src, filter)) {
          uses.push(`${loader.display(p)} line ${node.lineno + 1}`);
        }
      }
      if (source !== undefined && !path) {
        for (const node of filterUses(source, filter)) {
          uses.push(`${fallbackName} line ${node.lineno + 1}`);
        }
      }
      where =
        uses.length === 1 && uses[0]
          ? uses[0]
          : `${file}${uses.length ? ` (${filter} is used at ${uses.join(', ')})` : ''}`;
    } else if (functionError && lineno !== undefined && colno !== undefined) {
      // As with output tags, a call inside a macro carries the macro file's
      // position but the caller's path: find the file that has the call.
      const ownSource = path ? loader.sources.get(path) : source;
      if (ownSource === undefined || !hasCallAt(ownSource, lineno, colno)) {
        for (const [p, src] of loader.sources) {
          if (p !== path && hasCallAt(src, lineno, colno)) {
            where = `${loader.display(p)} line ${lineno + 1}`;
            break;
          }
        }
      }
    }
    return new RickError(
      'TEMPLATE_ERROR',
      `${where}: ${functionError ? site.message : site.message || describe(error)}`,
    );
  };

  return {
    render(name, context) {
      try {
        return env.render(name, context);
      } catch (error) {
        throw translate(error, name, context);
      }
    },
    renderString(source, context, where) {
      try {
        return env.renderString(source, context);
      } catch (error) {
        throw translate(error, where, context, source);
      }
    },
  };
}
