"""Jinja filters that put untrusted text into rendered files as data, never as template or code.

The cookiecutter template registers :class:`SafeDataExtension` through ``_extensions`` in its
``cookiecutter.json``. Free text (goals, backstories, descriptions) only ever reaches a rendered file
through one of these filters:

- ``to_yaml``: a safe YAML dump, so quotes, newlines, ``{{ }}``, ``!!python/object`` and the like
  come back byte-for-byte as strings when the file is loaded;
- ``to_markdown``: Markdown with its active ASCII punctuation backslash-escaped and invisible
  format characters shown as ``U+XXXX``, for the README.

Jinja never evaluates a filter's output, so text that looks like a template stays text.
"""

from __future__ import annotations

import re
import string
import threading
import unicodedata
from typing import Any

import yaml
from jinja2 import BytecodeCache, Environment
from jinja2.bccache import Bucket
from jinja2.ext import Extension

# Every ASCII punctuation character may be backslash-escaped in CommonMark; these few mean nothing.
_MARKDOWN_ESCAPES = {ord(ch): "\\" + ch for ch in string.punctuation if ch not in "'\",;?"}


class _BlockStyleDumper(yaml.SafeDumper):
    """A SafeDumper that prefers ``|`` blocks for text with line breaks or quotes."""


# YAML line breaks other than \n, and control characters: PyYAML may fold them into spaces in plain,
# single-quoted or block scalars, so strings holding any of them are always double-quoted (escaped).
_NEEDS_ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


# Text that would otherwise be quoted (and so have its quotes doubled or escaped) goes into a literal
# block instead, where it reads exactly as written; PyYAML itself falls back when a block cannot hold it.
_QUOTED_IN_PLAIN = re.compile(r"[\n'\"\\]|: | #")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _NEEDS_ESCAPES.search(value):
        style: str | None = '"'
    elif _QUOTED_IN_PLAIN.search(value):
        style = "|"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockStyleDumper.add_representer(str, _represent_str)


def to_yaml(value: Any) -> str:
    """Dump plain data (dicts, lists, str, numbers, bools) as YAML that loads back to ``value``."""
    if value is None:
        raise ValueError("to_yaml got None: the template was rendered without its data")
    return yaml.dump(
        value,
        Dumper=_BlockStyleDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,  # never fold a line: the text stays greppable as written
    )


def _visible(ch: str) -> str:
    if unicodedata.category(ch) in {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"} and ch not in "\n\t":
        return f"U+{ord(ch):04X}"
    return ch


def to_markdown(value: Any) -> str:
    """Render ``value`` as inert Markdown: punctuation escaped, one paragraph line per input line."""
    text = "".join(_visible(ch) for ch in str(value))
    lines = [line.strip().translate(_MARKDOWN_ESCAPES) for line in text.split("\n")]
    return "\n".join(lines)


class CompiledTemplates(BytecodeCache):
    """Jinja's bytecode cache, in memory: the template's files compiled once per process, not once per
    render (cookiecutter builds a new environment for every render; compiling its two dozen files was
    a third of a render's 50 ms). Jinja keys each entry by the template's name and file and checks the
    source's checksum on every load, so an edited template is compiled again. At most ``size`` entries
    (the template has about 25 files); beyond that, nothing more is kept."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            if bucket.key in self._code or len(self._code) < self.size:
                self._code[bucket.key] = bucket.bytecode_to_string()


#: One per process: compiled code of the package's own template files only (the loader reads them from
#: the template folder; gap and spec text reach a render as context data, never as a template).
_COMPILED = CompiledTemplates()


class CompiledStrings:
    """The same for ``Environment.from_string``, which Jinja never caches: cookiecutter compiles every
    file and folder name of the template and every variable of ``cookiecutter.json`` that way, about 60
    strings a render (40 % of it). Keyed by the source and the environment's compile-time settings
    (delimiters, whitespace options, extensions, autoescape); at most ``size`` entries, the first ones
    kept (the template's own names come first; the slugs and numbers of each render, never free text,
    fill the rest)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._code: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def settings(environment: Environment) -> tuple[Any, ...]:
        """What ``Environment.compile`` output depends on besides the source."""
        e = environment
        return (
            type(e), e.block_start_string, e.block_end_string, e.variable_start_string, e.variable_end_string,
            e.comment_start_string, e.comment_end_string, e.line_statement_prefix, e.line_comment_prefix,
            e.trim_blocks, e.lstrip_blocks, e.newline_sequence, e.keep_trailing_newline, e.optimized,
            e.autoescape, tuple(sorted(e.extensions)),
        )  # fmt: skip

    def install(self, environment: Environment) -> None:
        """Make ``environment.from_string`` compile each source once (its behaviour is Jinja's own:
        ``make_globals``, then ``Template.from_code``)."""
        original = environment.from_string

        def from_string(source: Any, globals: Any = None, template_class: Any = None) -> Any:
            if not isinstance(source, str):
                return original(source, globals, template_class)
            key = (self.settings(environment), source)  # read at each call: settings may change
            code = self._code.get(key)
            if code is None:
                code = environment.compile(source)
                with self._lock:
                    if len(self._code) < self.size:
                        self._code[key] = code
            cls = template_class or environment.template_class
            return cls.from_code(environment, code, environment.make_globals(globals), None)

        environment.from_string = from_string  # type: ignore[method-assign]


_COMPILED_STRINGS = CompiledStrings()


class SafeDataExtension(Extension):
    """Adds the ``to_yaml`` and ``to_markdown`` filters to a (cookiecutter) Jinja environment, and the
    process's :class:`CompiledTemplates` and :class:`CompiledStrings` caches."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["to_yaml"] = to_yaml
        environment.filters["to_markdown"] = to_markdown
        if environment.bytecode_cache is None:
            environment.bytecode_cache = _COMPILED
            _COMPILED_STRINGS.install(environment)
