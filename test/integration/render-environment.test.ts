import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRenderer } from '../../src/build/render.js';
import { makeTempDir } from '../helpers/rick-bundle.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('rick-render-');
  await mkdir(join(dir, 'b'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function render(source: string, context: Record<string, unknown> = {}): Promise<string> {
  await writeFile(join(dir, 'b/t.j2'), source);
  return createRenderer({ bundleDir: join(dir, 'b') }).render('t.j2', context);
}

describe('the template environment', () => {
  it('renders host facts as placeholders, URL-encoded secrets in their :url form', async () => {
    expect(
      await render(
        'User={{ uid("app") }}:{{ gid("app") }}\nURL=unix:///s?password={{ secret("pw") | urlencode }}\nF={{ bundle_path("env/a.env") }}\n',
      ),
    ).toBe(
      'User=@@rick:uid:app@@:@@rick:gid:app@@\nURL=unix:///s?password=@@rick:secret:pw:url@@\nF=@@rick:path:env/a.env@@\n',
    );
  });

  it('keeps Ansible semantics: default and `is defined` accept undefined, trim_blocks is on', async () => {
    expect(await render('{{ port | default(9000) }}')).toBe('9000');
    expect(await render('{{ port | d(1) }}')).toBe('1');
    expect(await render('{% if port is defined %}set{% else %}unset{% endif %}')).toBe('unset');
    expect(await render('{% if true %}\nline\n{% endif %}\nend')).toBe('line\nend');
    expect(await render('{{ "/a/b/c.sock" | dirname | basename }}')).toBe('b');
    expect(await render('{{ "yes" | bool }}')).toBe('true');
    expect(await render('{{ v | quote }}', { v: 'a b' })).toBe("'a b'");
  });

  it('does not HTML-escape anything', async () => {
    expect(await render('{{ v }}', { v: '<a href="x">&' })).toBe('<a href="x">&');
  });

  it('reports an undefined variable by name, even behind filters or in a lookup', async () => {
    await expect(render('a\n{{ nope | upper }}')).rejects.toMatchObject({
      code: 'UNDEFINED_VARIABLE',
      message: 'undefined variable nope in t.j2 line 2',
    });
    await expect(render('{{ cfg.missing }}', { cfg: {} })).rejects.toMatchObject({
      code: 'UNDEFINED_VARIABLE',
      message: 'an expression is undefined in t.j2 line 1',
    });
    await expect(render('\n\n{{ x | mandatory("x is required") }}')).rejects.toMatchObject({
      code: 'TEMPLATE_ERROR',
      message: 't.j2 line 3: x is required',
    });
  });

  it('names a shared template by its place under templates/', async () => {
    await mkdir(join(dir, 'templates'), { recursive: true });
    await writeFile(
      join(dir, 'templates/m.j2'),
      '{% macro m() %}\nA={{ nowhere }}\n{% endmacro %}',
    );
    await writeFile(join(dir, 'b/u.j2'), '{% import "m.j2" as m %}{{ m.m() }}');
    const renderer = createRenderer({
      bundleDir: join(dir, 'b'),
      templatesDir: join(dir, 'templates'),
    });
    expect(() => renderer.render('u.j2', {})).toThrow(
      'undefined variable nowhere in templates/m.j2 line 2',
    );
  });

  it('names the shared template when a host-fact function in a macro refuses a name', async () => {
    await mkdir(join(dir, 'templates'), { recursive: true });
    await writeFile(
      join(dir, 'templates/g.j2'),
      '{% macro g(n) %}\n\nG={{ gid(n) }}{% endmacro %}',
    );
    await writeFile(join(dir, 'b/v.j2'), '{% import "g.j2" as m %}{{ m.g("bad name") }}');
    const renderer = createRenderer({
      bundleDir: join(dir, 'b'),
      templatesDir: join(dir, 'templates'),
    });
    expect(() => renderer.render('v.j2', {})).toThrow(
      'templates/g.j2 line 3: gid(): invalid gid name "bad name"',
    );
  });

  it('lists the places a refusing filter is used when it is used more than once', async () => {
    await expect(
      render('{{ a | quote }}\n{{ secret("pw") | quote }}', { a: 'x' }),
    ).rejects.toMatchObject({
      code: 'TEMPLATE_ERROR',
      message: expect.stringMatching(
        /^t\.j2 \(quote is used at t\.j2 line 1, t\.j2 line 2\): quote cannot/,
      ),
    });
  });

  it('reports a secret that cannot be quoted at build time, with the line', async () => {
    await expect(render('a\nb\nExec=sh -c {{ secret("pw") | quote }}')).rejects.toMatchObject({
      code: 'TEMPLATE_ERROR',
      message:
        't.j2 line 3: quote cannot be applied to a secret: its value is only known on the host',
    });
  });
});
