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
from collections.abc import Mapping
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
    strings a render (40 % of it). Keyed by the source and everything Jinja's lexer, parser and code
    generator read from the environment (:meth:`settings`), so a cached template means what a fresh
    compile would; at most ``size`` entries, the first ones kept (the template's own names come first;
    the slugs and numbers of each render, never free text, fill the rest)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._code: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._classes: dict[type[Environment], type[Environment]] = {}

    @staticmethod
    def settings(environment: Environment) -> tuple[Any, ...]:
        """What ``Environment.compile`` output depends on besides the source (jinja2's lexer, parser and
        compiler): the class, delimiters and whitespace options, extensions, autoescape, ``finalize``, async
        mode, intercepted operators, the code generator, and each filter's and test's name and how it takes
        its arguments (what the compiler decides on; cookiecutter makes new ``jsonify`` and ``slugify``
        functions for every environment, so their identity is not part of it)."""
        e = environment
        return (
            type(e), e.block_start_string, e.block_end_string, e.variable_start_string, e.variable_end_string,
            e.comment_start_string, e.comment_end_string, e.line_statement_prefix, e.line_comment_prefix,
            e.trim_blocks, e.lstrip_blocks, e.newline_sequence, e.keep_trailing_newline, e.optimized,
            e.autoescape, e.finalize, e.is_async, getattr(e, "intercepted_binops", None),
            getattr(e, "intercepted_unops", None),
            e.code_generator_class, tuple(sorted((name, type(ext)) for name, ext in e.extensions.items())),
            _calling(e.filters), _calling(e.tests),
        )  # fmt: skip

    def install(self, environment: Environment) -> None:
        """Make ``environment.from_string`` compile each source once, by giving it a subclass of its own
        class that overrides only ``from_string`` (an ``overlay()`` of it is the same class and compiles
        for itself); behaviour is Jinja's own: ``make_globals``, then ``Template.from_code``."""
        base = type(environment)
        with self._lock:
            cached = self._classes.get(base)
            if cached is None:
                cached = self._classes[base] = self._subclass(base)
        environment.__class__ = cached

    def _subclass(self, base: type[Environment]) -> type[Environment]:
        cache = self

        def from_string(env: Environment, source: Any, globals: Any = None, template_class: Any = None) -> Any:
            if not isinstance(source, str):
                return base.from_string(env, source, globals, template_class)
            key = (cache.settings(env), source)  # read at each call: settings may change
            code = cache._code.get(key)
            if code is None:
                code = env.compile(source)
                with cache._lock:
                    if len(cache._code) < cache.size:
                        cache._code[key] = code
            cls = template_class or env.template_class
            return cls.from_code(env, code, env.make_globals(globals), None)

        return type(base.__name__, (base,), {"from_string": from_string, "__module__": base.__module__})


def _calling(functions: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    """Each name with how jinja2's compiler calls it: ``jinja_pass_arg`` (set by ``pass_context``,
    ``pass_eval_context`` and ``pass_environment``), the one thing it reads of a filter or test."""
    return frozenset((name, getattr(function, "jinja_pass_arg", None)) for name, function in functions.items())


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
