"""The Jinja environment: qbench's templates, overridable per file with ``--templates DIR``.

StrictUndefined makes a template that names a variable the context lacks an error (wrapped
in a QBenchError by :func:`render`), never a silently empty field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from qbench.errors import QBenchError
from qbench.reports import fmt


def _autoescape(name: str | None) -> bool:
    return bool(name) and any(name.endswith(ext) for ext in (".html.j2", ".html", ".htm", ".xml.j2"))


def make_env(templates_dir: str | Path | None = None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        path = Path(templates_dir)
        if not path.is_dir():
            raise QBenchError(
                f"template folder {path} does not exist; pass --templates a folder holding your *.j2 overrides."
            )
        loaders.append(jinja2.FileSystemLoader(str(path)))
    loaders.append(jinja2.PackageLoader("qbench", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt.num,
        plain=fmt.plain,
        thousands=fmt.thousands,
        mb=fmt.mb,
        mega=fmt.mega,
        pct=fmt.pct,
        signed=fmt.signed,
        ratio=fmt.ratio,
        latex=fmt.latex,
        dash=fmt.dash,
        md=fmt.markdown_cell,
    )
    return env


def render(env: jinja2.Environment, name: str, **context: Any) -> str:
    """Render template ``name``; template mistakes become one-sentence QBenchErrors."""
    try:
        template = env.get_template(name)
        return template.render(**context)
    except jinja2.TemplateNotFound as exc:
        raise QBenchError(
            f"template {exc.name} was not found in --templates or qbench's own templates; "
            "reinstall qbench or add the file to your template folder."
        ) from None
    except jinja2.UndefinedError as exc:
        raise QBenchError(
            f"template {name} uses an undefined variable ({exc.message}); fix the template "
            "(see report.json for the available names) or remove it from --templates."
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise QBenchError(
            f"template {exc.filename or name} has a syntax error at line {exc.lineno} ({exc.message}); fix it."
        ) from None
