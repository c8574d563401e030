"""Plans as code: a YAML file describes endpoints, datasets, profiles and plans; ``apply`` creates or
updates them by name in a team, ``export`` writes one plan (and what it uses) back out.

Every object goes through the same form as in the browser, so a file can set nothing a person could
not, and a misspelt key is an error rather than silently dropped. API keys never live in the file:
an endpoint names the environment variable holding its key (``api_key_env``).

    endpoints: [{name, protocol, base_url, model, api_key_env, headers, timeouts…}]
    datasets:  [{name, builtin: math500 | path: prompts.jsonl, tokenizer, description}]
    profiles:  [{name, kind, spec: {users, spawn_rate, rate, stages…}}]
    plans:     [{name, endpoint, dataset, profile, max_tokens, duration_s, slo_ttft_ms…}]
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import transaction
from django.forms import ModelForm
from django.forms.models import model_to_dict

from benchmarks.forms.library import EndpointForm, PlanForm, ProfileForm
from benchmarks.models import Dataset, Endpoint, LoadProfile, Plan, Team
from benchmarks.services.datasets import NewItems, dataset_create, dataset_update
from benchmarks.services.endpoints import endpoint_save
from benchmarks.services.objects import object_save

SECTIONS = ("endpoints", "datasets", "profiles", "plans")
_DATASET_KEYS = {"name", "builtin", "path", "tokenizer", "description"}


class PlanFileError(ValueError):
    """What is wrong with the file, naming the object and the field."""


@dataclass
class Applied:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def plans_apply(*, team: Team, document: dict[str, Any], base_dir: Path) -> Applied:
    """Create or update, by name, every object the document describes — all or nothing."""
    unknown = sorted(set(document) - {*SECTIONS, "team"})
    if unknown:
        raise PlanFileError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    done = Applied()
    with transaction.atomic():
        for item in _rows(document, "endpoints"):
            _endpoint(team, item, done)
        for item in _rows(document, "datasets"):
            _dataset(team, item, base_dir, done)
        for item in _rows(document, "profiles"):
            _profile(team, item, done)
        for item in _rows(document, "plans"):
            _plan(team, item, done)
    return done


def _rows(document: dict[str, Any], section: str) -> list[dict[str, Any]]:
    rows = document.get(section) or []
    if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("name") for r in rows):
        raise PlanFileError(f"{section}: a list of mappings, each with a name")
    return rows


def _save(form: ModelForm, what: str, team: Team, existed: bool, done: Applied, **save: Any) -> Any:
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        raise PlanFileError(f"{what}: {problems}")
    changed = not existed or form.has_changed() or bool(save.get("api_key"))
    obj = (
        endpoint_save(form=form, team=team, **save)
        if isinstance(form, EndpointForm)
        else object_save(form=form, team=team)
    )
    (done.updated if existed and changed else done.unchanged if existed else done.created).append(what)
    return obj


def _checked(item: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise PlanFileError(
            f"{what}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


def _endpoint(team: Team, item: dict[str, Any], done: Applied) -> None:
    what = f"endpoint {item['name']!r}"
    fields = set(EndpointForm.Meta.fields)
    if "api_key" in item:
        raise PlanFileError(f"{what}: keys never go in the file — name the variable with api_key_env")
    _checked(item, fields | {"api_key_env"}, what)
    key = ""
    if item.get("api_key_env"):
        key = os.environ.get(str(item["api_key_env"]), "")
        if not key:
            done.warnings.append(
                f"{what}: {item['api_key_env']} is not set, so its stored key (if any) stays"
            )
    instance = Endpoint.objects.filter(team=team, name=item["name"]).first()
    base = model_to_dict(instance or Endpoint(), fields=list(fields))  # a new one starts from the defaults
    data = {**base, **{k: v for k, v in item.items() if k in fields}}
    if isinstance(data.get("metrics_urls"), list):  # the form takes one URL per line
        data["metrics_urls"] = "\n".join(str(u) for u in data["metrics_urls"])
    _save(EndpointForm(data=data, instance=instance), what, team, instance is not None, done, api_key=key)


def _dataset(team: Team, item: dict[str, Any], base_dir: Path, done: Applied) -> None:
    from runner import load_builtin, parse_dataset

    what = f"dataset {item['name']!r}"
    _checked(item, _DATASET_KEYS, what)
    if bool(item.get("builtin")) == bool(item.get("path")):
        raise PlanFileError(f"{what}: give either builtin (e.g. math500) or path")
    if item.get("builtin"):
        try:
            rows = load_builtin(f"builtin:{str(item['builtin']).removeprefix('builtin:')}")
        except ValueError as exc:
            raise PlanFileError(f"{what}: {exc}") from None
        new = NewItems(items=rows, source="upload", note=f"builtin:{item['builtin']}")
    else:
        path = (base_dir / str(item["path"])).resolve()
        try:
            result = parse_dataset(path.read_bytes(), filename=path.name)
        except OSError as exc:
            raise PlanFileError(f"{what}: cannot read {path}: {exc.strerror}") from None
        if result.errors:
            first = result.errors[0]
            raise PlanFileError(f"{what}: {path.name} line {first.line}: {first.reason}")
        new = NewItems(items=result.items, source="upload", filename=path.name)
    tokenizer, description = str(item.get("tokenizer", "")), str(item.get("description", ""))
    existing = Dataset.objects.filter(team=team, name=item["name"]).first()
    if existing is None:
        dataset_create(
            team=team, name=item["name"], description=description, tokenizer=tokenizer, new=new, by=None
        )
        done.created.append(what)
        return
    current = existing.current_version()
    same = current is not None and _fingerprint_version(current) == _fingerprint(new.items)
    version = dataset_update(
        dataset=existing, name=item["name"], description=description, tokenizer=tokenizer,
        new=None if same else new, by=None,
    )  # fmt: skip
    (done.updated if version is not None or not same else done.unchanged).append(what)


def _fingerprint(items: list[Any]) -> str:
    rows = [[i.prompt, i.messages, i.expected] for i in items]
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint_version(version: Any) -> str:
    rows = [[i.prompt, i.messages, i.expected] for i in version.items.order_by("index")]
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def _profile(team: Team, item: dict[str, Any], done: Applied) -> None:
    what = f"profile {item['name']!r}"
    _checked(item, {"name", "kind", "spec"}, what)
    spec = dict(item.get("spec") or {})
    unknown = sorted(set(spec) - set(ProfileForm.SPEC_FIELDS) - {"kind"})
    if unknown:
        raise PlanFileError(f"{what}: unknown spec field(s) {', '.join(unknown)}")
    data: dict[str, Any] = {"name": item["name"], "kind": item.get("kind", "users")}
    for name in ProfileForm.SPEC_FIELDS:
        if name in spec:
            value = spec[name]
            data[name] = json.dumps(value) if name in ("stages", "replay") else value
    instance = LoadProfile.objects.filter(team=team, name=item["name"]).first()
    _save(ProfileForm(data=data, instance=instance), what, team, instance is not None, done)


def _plan(team: Team, item: dict[str, Any], done: Applied) -> None:
    what = f"plan {item['name']!r}"
    fields = set(PlanForm.Meta.fields)
    _checked(item, fields, what)
    data = {k: v for k, v in item.items() if k in fields}
    for ref, model in (("endpoint", Endpoint), ("dataset", Dataset), ("profile", LoadProfile)):
        name = item.get(ref)
        obj = model.objects.filter(team=team, name=name).first() if name else None
        if obj is None:
            raise PlanFileError(f"{what}: no {ref} named {name!r} in the team or the file")
        data[ref] = obj.pk
    instance = Plan.objects.filter(team=team, name=item["name"]).first()
    base = model_to_dict(instance or Plan(), fields=list(fields))  # a new one starts from the defaults
    data = {**{k: v for k, v in base.items() if v is not None}, **data}
    _save(PlanForm(data=data, instance=instance, team=team), what, team, instance is not None, done)


def _plain(value: Any) -> Any:
    """Values YAML writes plainly: Decimal prices as floats."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def plan_export(*, plan: Plan, dataset_file: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The document for one plan and what it uses, and its dataset's current items (JSONL rows)."""
    endpoint = plan.endpoint
    ep = {
        k: _plain(v)
        for k, v in model_to_dict(endpoint, fields=EndpointForm.Meta.fields).items()
        if v not in ("", None)
    }
    ep["api_key_env"] = _env_name(endpoint.name)
    profile = {"name": plan.profile.name, "kind": plan.profile.kind, "spec": dict(plan.profile.spec)}
    profile["spec"].pop("kind", None)
    body = model_to_dict(plan, fields=PlanForm.Meta.fields)
    body.update(endpoint=endpoint.name, dataset=plan.dataset.name, profile=plan.profile.name)
    body = {k: _plain(v) for k, v in body.items() if v not in ("", None, [], {})}
    dataset = {"name": plan.dataset.name, "path": dataset_file, "tokenizer": plan.dataset.tokenizer}
    if plan.dataset.description:
        dataset["description"] = plan.dataset.description
    version = plan.dataset.current_version()
    rows = []
    for i in version.items.order_by("index") if version else []:
        row: dict[str, Any] = {"id": i.key}
        row.update({"messages": i.messages} if i.messages else {"prompt": i.prompt})
        if i.expected is not None:
            row["expected"] = i.expected
        if i.max_tokens:
            row["max_tokens"] = i.max_tokens
        if i.metadata:
            row["metadata"] = i.metadata
        rows.append(row)
    document = {"endpoints": [ep], "datasets": [dataset], "profiles": [profile], "plans": [body]}
    return document, rows


def _env_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in name.upper()).strip("_")
    return f"{cleaned or 'ENDPOINT'}_API_KEY"
