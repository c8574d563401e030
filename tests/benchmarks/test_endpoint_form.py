"""Custom stream schemas as a form: fields instead of a JSON blob, checked on save (nothing a typo
breaks is dropped silently), and a pasted sample stream classified line by line before saving."""

from __future__ import annotations

import pytest
from django.urls import reverse

from benchmarks import bridge
from benchmarks.forms.library import EndpointForm
from benchmarks.models import Endpoint
from tests.benchmarks.services.test_endpoints import VALID

pytestmark = pytest.mark.django_db
TGI = {
    "protocol": "generic-sse",
    "generic_body_template": '{"inputs": {{prompt}}, "parameters": {"max_new_tokens": {{max_tokens}}}}',
    "generic_path": "/generate_stream",
    "generic_answer_path": "token.text",
    "generic_finish_path": "details.finish_reason",
    "generic_done_sentinel": "",
}
SAMPLE = """data: {"token": {"text": "Hel"}}
: ping
data: {"token": {"text": "lo"}, "details": {"finish_reason": "length"}}
data: {"tokn": {"text": "typo"}}"""


def test_a_schema_saves_from_fields_and_reaches_the_engine(cast, client_for):
    client = client_for(cast.alice)
    response = client.post(reverse("endpoint_create"), {**VALID, **TGI})
    assert response.status_code == 302, response.context["form"].errors
    endpoint = Endpoint.objects.get(name=VALID["name"])
    # only what differs from the defaults is stored; a blank end marker keeps [DONE]
    assert endpoint.generic == {
        "body_template": TGI["generic_body_template"],
        "path": "/generate_stream",
        "answer_path": "token.text",
        "finish_path": "details.finish_reason",
    }
    generic = bridge.endpoint_spec(endpoint).generic
    assert generic.answer_path == "token.text" and generic.done_sentinel == "[DONE]"
    edit = client.get(reverse("endpoint_edit", args=[endpoint.pk])).content.decode()
    assert 'value="token.text"' in edit and "<legend>Stream format</legend>" in edit


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"generic_body_template": '{"inputs": {{prompt}}'}, "generic_body_template", "not valid JSON"),
        (
            {"generic_kind_path": "type", "generic_kind_map": '{"t": "txt"}'},
            "generic_kind_map",
            "packet kinds",
        ),
        ({"generic_kind_map": '["thinking"]'}, "generic_kind_map", ""),
    ],
)
def test_a_broken_schema_is_refused_on_save_and_nothing_is_saved(cast, client_for, change, field, message):
    response = client_for(cast.alice).post(reverse("endpoint_create"), {**VALID, **TGI, **change})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert not Endpoint.objects.filter(name=VALID["name"]).exists()


def test_a_pasted_sample_is_classified_line_by_line_before_saving(cast, client_for):
    client = client_for(cast.alice)
    out = client.post(reverse("endpoint_stream_check"), {**TGI, "stream_sample": SAMPLE}).json()
    assert [(r["line"], r["packets"]) for r in out["rows"]] == [
        (1, ["answer"]),
        (2, ["heartbeat"]),
        (3, ["answer", "done"]),
        (4, ["unknown"]),
    ]
    assert "'length'" in out["rows"][2]["note"]
    assert not Endpoint.objects.filter(name=VALID["name"]).exists()

    bad = client.post(
        reverse("endpoint_stream_check"), {**TGI, "generic_body_template": "{", "stream_sample": SAMPLE}
    )
    assert "not valid JSON" in bad.json()["errors"]["generic_body_template"][0]
    assert client.get(reverse("endpoint_stream_check")).status_code == 405
    page = client.get(reverse("endpoint_create")).content.decode()
    assert 'id="stream-check"' in page and "js/endpoint_form.js" in page and "<script>" not in page


def test_a_form_without_the_schema_keeps_the_defaults(cast, client_for):
    client = client_for(cast.alice)
    assert client.post(reverse("endpoint_create"), VALID).status_code == 302
    assert Endpoint.objects.get(name=VALID["name"]).generic == {}


def test_every_endpoint_field_is_grouped_and_helped():
    form = EndpointForm()
    grouped = [f.name for g in form.fieldsets() for f in g["fields"]]
    assert sorted(grouped) == sorted(form.fields)
    assert [g["legend"] for g in form.fieldsets()][:2] == ["Target", "Stream format"]
    for name, field in form.fields.items():
        assert field.help_text, f"{name} has no help text"
    assert form.fields["timeout_first_byte_s"].label == "First-token timeout (s)"
