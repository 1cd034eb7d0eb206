"""The official mistralai and openai SDKs, unchanged, against a live plateforme."""

import openai
from conftest import PARIS_MESSAGES
from mistralai.client import Mistral


def test_mistralai_chat_complete(server, model):
    client = Mistral(api_key="unused", server_url=server.url)
    response = client.chat.complete(model=model, messages=PARIS_MESSAGES, temperature=0, max_tokens=40)
    assert "Paris" in response.choices[0].message.content
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


def test_mistralai_chat_stream(server, model):
    client = Mistral(api_key="unused", server_url=server.url)
    text, finish, usage = "", [], None
    for event in client.chat.stream(model=model, messages=PARIS_MESSAGES, temperature=0, max_tokens=40):
        chunk = event.data
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish.append(choice.finish_reason)
        usage = chunk.usage or usage
    assert "Paris" in text
    assert finish[-1] in ("stop", "length") and all(f is None for f in finish[:-1])
    assert usage is not None and usage.completion_tokens > 0


def test_openai_chat_complete_and_stream(server, model):
    client = openai.OpenAI(api_key="unused", base_url=f"{server.url}/v1")
    response = client.chat.completions.create(model=model, messages=PARIS_MESSAGES, temperature=0,
                                              max_tokens=40, seed=1)
    assert "Paris" in response.choices[0].message.content

    stream = client.chat.completions.create(model=model, messages=PARIS_MESSAGES, temperature=0,
                                            max_completion_tokens=40, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "Paris" in text
    assert text == response.choices[0].message.content
