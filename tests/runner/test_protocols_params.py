"""A prompt's own request parameters (captured or replayed traffic) reach the request body."""

from __future__ import annotations

from runner.protocols import adapter_for
from runner.spec import EndpointSpec, Prompt


def _body(protocol: str, ep: EndpointSpec, prompt: Prompt) -> dict[str, object]:
    body = adapter_for(protocol).build(ep, prompt).body
    assert isinstance(body, dict)
    return body


def test_prompt_params_override_endpoint_params_and_reach_the_body() -> None:
    ep = EndpointSpec("openai-chat", "http://x/v1", model="m", params={"temperature": 0.0, "top_p": 1})
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    prompt = Prompt(id="1", text="hi", max_tokens=7, params={"temperature": 0.7, "tools": tools})
    body = _body("openai-chat", ep, prompt)
    assert body["temperature"] == 0.7 and body["top_p"] == 1 and body["tools"] == tools
    assert body["max_tokens"] == 7 and body["model"] == "m"


def test_the_adapter_keeps_the_fields_it_measures_by() -> None:
    ep = EndpointSpec("openai-completions", "http://x/v1")
    prompt = Prompt(id="1", text="hi", params={"stream": False, "prompt": "other", "model": "captured"})
    body = _body("openai-completions", ep, prompt)
    assert body["stream"] is True and body["prompt"] == "hi"
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == "captured"  # the endpoint names no model: the captured one is kept


def test_anthropic_takes_prompt_params_too() -> None:
    ep = EndpointSpec("anthropic", "http://x/v1", model="claude")
    body = _body("anthropic", ep, Prompt(id="1", text="hi", params={"temperature": 0.3, "stream": False}))
    assert body["temperature"] == 0.3 and body["stream"] is True and body["model"] == "claude"


def test_prompt_params_survive_the_spec_round_trip() -> None:
    from runner.spec import RunSpec

    spec = RunSpec(
        endpoint=EndpointSpec("openai-chat", "http://x"), prompts=[Prompt("1", params={"seed": 3})]
    )
    assert RunSpec.from_dict(spec.to_dict()).prompts[0].params == {"seed": 3}
