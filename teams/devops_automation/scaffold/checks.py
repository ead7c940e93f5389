"""The in-process checks of a rendered team: layout, Python syntax, registry and config data, manifests.

Each check takes the rendered tree's root and the spec it was rendered from, and returns a list of
one-line errors, each starting with the check's name and the repo-relative file it is about.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from devops_automation.models import RegistryEntry, TeamSpec
from devops_automation.scaffold.render import expected_files

Check = Callable[[Path, TeamSpec], list[str]]
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
KUSTOMIZE_KEYS = {"apiVersion", "kind", "resources", "images", "labels", "namespace", "commonAnnotations"}
#: libyaml's safe loader when PyYAML was built with it: the same resolver and constructor as ``yaml.safe_load``
#: over a C parser, several times faster (the manifests are read by two checks, on the publish's critical path).
SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def files_on_disk(root: Path) -> list[str]:
    """Every file under ``root`` as a sorted repo-relative POSIX path."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def check_layout(root: Path, spec: TeamSpec) -> list[str]:
    """The tree holds exactly the files a render of ``spec`` produces: none missing, none extra."""
    actual, expected = set(files_on_disk(root)), set(expected_files(spec))
    return [f"layout: {path}: missing" for path in sorted(expected - actual)] + [
        f"layout: {path}: not part of a team render" for path in sorted(actual - expected)
    ]


def check_python(root: Path, spec: TeamSpec) -> list[str]:
    """Every ``.py`` file compiles (in-process, nothing is written)."""
    errors = []
    for path in files_on_disk(root):
        if path.endswith(".py"):
            try:
                compile((root / path).read_bytes(), path, "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as exc:
                line = getattr(exc, "lineno", None)
                errors.append(f"python_compile: {path}: line {line}: {_one_line(exc)}")
    return errors


def _load_yaml(root: Path, path: str, check: str, errors: list[str]) -> Any:
    try:
        return yaml.load((root / path).read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        errors.append(f"{check}: {path}: cannot be read as YAML: {_one_line(exc)}")
        return None


def check_registry(root: Path, spec: TeamSpec) -> list[str]:
    """``team.yaml`` parses into a RegistryEntry that describes exactly this spec."""
    path, errors = f"teams/{spec.name}/team.yaml", []
    data = _load_yaml(root, path, "registry", errors)
    if errors:
        return errors
    try:
        entry = RegistryEntry.model_validate(data)
    except ValidationError as exc:
        return [f"registry: {path}: not a registry entry: {_one_line(exc)}"]
    want = RegistryEntry.from_spec(spec, entry.owner)
    for field in ("name", "description", "department", "skills", "agents", "monthly_cost_usd"):
        if getattr(entry, field) != getattr(want, field):
            errors.append(f"registry: {path}: {field} does not match the spec")
    return errors


def check_config(root: Path, spec: TeamSpec) -> list[str]:
    """``config/agents.yaml`` and ``config/tasks.yaml`` hold the spec's text, byte for byte."""
    errors: list[str] = []
    want_agents = {a.role: {"role": a.role, "goal": a.goal, "backstory": a.backstory} for a in spec.agents}
    want_tasks = {
        t.name: {"description": t.description, "expected_output": t.expected_output, "agent": t.agent}
        for t in spec.tasks
    }
    for name, want in (("agents", want_agents), ("tasks", want_tasks)):
        path = f"teams/{spec.name}/config/{name}.yaml"
        data = _load_yaml(root, path, "config", errors)
        if data is not None and data != want:
            errors.append(f"config: {path}: does not hold the spec's {name} exactly")
    return errors


def _manifest_documents(root: Path, spec: TeamSpec, errors: list[str]) -> Iterator[tuple[str, dict]]:
    k8s_dir = f"k8s/teams/{spec.name}"
    for path in files_on_disk(root):
        if not path.startswith(k8s_dir + "/") or path.endswith("/kustomization.yaml"):
            continue
        try:
            documents = list(yaml.load_all((root / path).read_text(encoding="utf-8"), Loader=SAFE_LOADER))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            errors.append(f"kubernetes_schema: {path}: cannot be read as YAML: {_one_line(exc)}")
            continue
        if not any(documents):
            errors.append(f"kubernetes_schema: {path}: holds no manifest")
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict) or "apiVersion" not in document or "kind" not in document:
                errors.append(f"kubernetes_schema: {path}: a document without apiVersion and kind")
                continue
            yield path, document


def check_kubernetes_schema(root: Path, spec: TeamSpec, kubernetes_version: str = "1.31") -> list[str]:
    """Every manifest validates, strictly, against the Kubernetes schema; a missing schema fails."""
    from kubernetes_validate import utils as kv

    errors: list[str] = []
    for path, document in _manifest_documents(root, spec, errors):
        kind = document.get("kind")
        try:
            validate_manifest(document, kubernetes_version)
        except kv.ValidationError as exc:
            where = ".".join(str(item) for item in exc.path) or "(root)"
            errors.append(f"kubernetes_schema: {path}: {kind} {where}: {_one_line(exc.message)}")
        except (kv.SchemaNotFoundError, kv.VersionNotSupportedError, kv.InvalidSchemaError) as exc:
            errors.append(f"kubernetes_schema: {path}: {kind}: {_one_line(exc.message)}")
        except Exception as exc:  # jsonschema/referencing failures must fail the check, not pass it
            errors.append(f"kubernetes_schema: {path}: {kind}: {type(exc).__name__}: {_one_line(exc)}")
    return errors


def validate_manifest(document: dict[str, Any], kubernetes_version: str) -> str:
    """``kubernetes_validate.validate(document, kubernetes_version, strict=True)``, with the validator of each
    (schema version, kind, apiVersion) built once per process: the library parses its 1.3 MB
    ``_definitions.json`` and builds a schema registry on every call, about 15 ms a manifest, three or four
    manifests a render. The schema files, the version chosen and the errors raised are the library's own
    (its ``ValidationError``, ``SchemaNotFoundError``, ``VersionNotSupportedError``); returns the schema's
    ``major.minor``."""
    import jsonschema
    from kubernetes_validate import utils as kv

    desired = kubernetes_version.removeprefix("v")
    if kv.major_minor(desired) > kv.latest_version():  # the library's (string) comparison, kept as it is
        raise kv.VersionNotSupportedError(version=kv.major_minor(desired))
    version = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(desired)][-1]
    validator = _manifest_validator(version, str(document["kind"]), str(document["apiVersion"]), desired)
    try:
        validator.validate(document)
    except jsonschema.ValidationError as exc:
        raise kv.ValidationError(exc, version=kv.major_minor(version)) from None
    return kv.major_minor(version)


@functools.lru_cache(maxsize=64)
def _manifest_validator(version: str, kind: str, api_version: str, desired: str) -> Any:
    """The strict schema validator of one kind (shared definitions per version, see :func:`_definitions`)."""
    import jsonschema
    from kubernetes_validate import utils as kv
    from referencing import Registry, Resource

    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 -> rbac-v1
    try:
        schema = kv.schema_contents(f"{_strict_dir(version)}/{kind.lower()}-{api}.json", desired)
    except FileNotFoundError:
        raise kv.SchemaNotFoundError(version=kv.major_minor(desired), kind=kind, api_version=api_version) from None
    registry = _definitions(version, desired) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.lru_cache(maxsize=4)
def _definitions(version: str, desired: str) -> Any:
    """The parsed ``_definitions.json`` of one schema version, as a ``referencing`` resource."""
    from kubernetes_validate import utils as kv
    from referencing import Resource

    return Resource.from_contents(kv.schema_contents(f"{_strict_dir(version)}/_definitions.json", desired))


def _strict_dir(version: str) -> str:
    """The library's folder of strict schemas for a schema version (``1.31.0``)."""
    return f"kubernetes-json-schema/v{version}-local-strict"


def _container_errors(path: str, c: dict[str, Any], pod: dict[str, Any], spec: TeamSpec) -> list[str]:
    name, errors = c.get("name", "?"), []
    image = str(c.get("image", ""))
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if "@" not in image and (not tag or tag == "latest"):
        errors.append(f"image {image!r} is not pinned to a tag other than latest")
    resources = c.get("resources") or {}
    want = {"cpu": f"{spec.resources.cpu_millicores}m", "memory": f"{spec.resources.memory_mib}Mi"}
    for part in ("requests", "limits"):
        if (resources.get(part) or {}) != want:
            errors.append(f"resources.{part} is not {want}")
    for probe in ("livenessProbe", "readinessProbe"):
        if not c.get(probe):
            errors.append(f"has no {probe}")
    sc, pod_sc = c.get("securityContext") or {}, pod.get("securityContext") or {}
    if sc.get("allowPrivilegeEscalation") is not False:
        errors.append("securityContext.allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        errors.append("securityContext.readOnlyRootFilesystem is not true")
    if sc.get("privileged"):
        errors.append("securityContext.privileged is set")
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
        errors.append("runAsNonRoot is not true")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        errors.append("securityContext.capabilities.drop does not include ALL")
    if (sc.get("capabilities") or {}).get("add"):
        errors.append("securityContext.capabilities.add is set")
    seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
    if seccomp.get("type") != "RuntimeDefault":
        errors.append("seccompProfile.type is not RuntimeDefault")
    return [f"kubernetes_policy: {path}: container {name}: {error}" for error in errors]


def check_kubernetes_policy(root: Path, spec: TeamSpec) -> list[str]:
    """Deployments: pinned images, the spec's resources, probes and a restricted security context."""
    errors: list[str] = []
    deployments = 0
    for path, document in _manifest_documents(root, spec, []):
        if document.get("kind") != "Deployment":
            continue
        deployments += 1
        if (document.get("spec") or {}).get("replicas") != spec.resources.replicas:
            errors.append(f"kubernetes_policy: {path}: replicas is not {spec.resources.replicas}")
        pod = ((document.get("spec") or {}).get("template") or {}).get("spec") or {}
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            errors.append(f"kubernetes_policy: {path}: the pod shares a host namespace")
        containers = (pod.get("containers") or []) + (pod.get("initContainers") or [])
        for container in containers:
            errors += _container_errors(path, container if isinstance(container, dict) else {}, pod, spec)
    if not deployments:
        errors.append(f"kubernetes_policy: k8s/teams/{spec.name}: no Deployment found")
    return errors


def check_kustomization(root: Path, spec: TeamSpec) -> list[str]:
    """``kustomization.yaml`` (no Kubernetes schema exists for it) lists exactly the team's manifests."""
    k8s_dir = f"k8s/teams/{spec.name}"
    path, errors = f"{k8s_dir}/kustomization.yaml", []
    data = _load_yaml(root, path, "kustomization", errors)
    if errors:
        return errors
    if not isinstance(data, dict):
        return [f"kustomization: {path}: not a mapping"]
    if data.get("apiVersion") != KUSTOMIZE_API or data.get("kind") != "Kustomization":
        errors.append(f"kustomization: {path}: must be apiVersion {KUSTOMIZE_API}, kind Kustomization")
    for key in sorted(set(data) - KUSTOMIZE_KEYS):
        errors.append(f"kustomization: {path}: unknown field {key!r}")
    listed = data.get("resources") or []
    present = sorted(p.removeprefix(k8s_dir + "/") for p in files_on_disk(root) if p.startswith(k8s_dir + "/"))
    present.remove("kustomization.yaml")
    if not isinstance(listed, list) or sorted(map(str, listed)) != present:
        errors.append(f"kustomization: {path}: resources {listed} are not the manifests {present}")
    return errors


IN_PROCESS_CHECKS: dict[str, Check] = {
    "layout": check_layout,
    "python_compile": check_python,
    "registry": check_registry,
    "config": check_config,
    "kubernetes_policy": check_kubernetes_policy,
    "kustomization": check_kustomization,
}
