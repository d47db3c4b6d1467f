/**
 * Renders a bundle directory's templates with its variables: what `build`
 * packs and `pin` reads the images of, so that both see the same units.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RickError } from '../errors.js';
import { outputName, resolveVariables, templateKinds } from './definition.js';
import type { RenderedFile } from './plan.js';
import { createRenderer, type Renderer } from './render.js';
import type { BundleSource } from './source.js';

export interface RenderedBundle {
  files: RenderedFile[];
  renderer: Renderer;
  /** The resolved variables, bundle_name and bundle_version included. */
  context: Record<string, unknown>;
}

export function renderBundleFiles(
  source: BundleSource,
  options: { templatesDir: string; version: string },
): RenderedBundle {
  const bundleDir = source.dir;
  const renderer = createRenderer({ bundleDir, templatesDir: options.templatesDir });
  const context = resolveVariables(
    {
      ...source.variables,
      bundle_name: source.definition.name,
      bundle_version: options.version,
    },
    renderer.renderString,
  );
  const missing = templateKinds.flatMap((kind) =>
    source.definition.files[kind]
      .map((template, i) => ({ template, at: `files.${kind}.${i}` }))
      .filter(({ template }) => !existsSync(join(bundleDir, template))),
  );
  if (missing.length > 0) {
    throw new RickError(
      'DEFINITION_INVALID',
      `${join(bundleDir, 'bundle.yaml')}: ${missing.map((m) => `${m.at}: ${m.template} does not exist in the bundle`).join('; ')}`,
    );
  }
  const files: RenderedFile[] = [];
  for (const kind of templateKinds) {
    for (const template of source.definition.files[kind]) {
      files.push({
        kind,
        template,
        name: outputName(template),
        content: renderer.render(template, context),
      });
    }
  }
  return { files, renderer, context };
}
