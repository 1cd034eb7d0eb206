"""Sampling parameters reach the engine: seed, stop, max_tokens, n, penalties."""

USER = [{"role": "user", "content": "Write a short poem about the sea."}]


def _chat(http, model, **params):
    r = http.post("/v1/chat/completions", json={"model": model, "messages": USER, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _texts(body):
    return [c["message"]["content"] for c in body["choices"]]


def test_same_seed_same_output_and_different_seeds_differ(http, model):
    params = {"temperature": 1.2, "top_p": 1, "max_tokens": 24}
    a = _texts(_chat(http, model, random_seed=11, **params))
    b = _texts(_chat(http, model, random_seed=11, **params))
    assert a == b
    others = {_texts(_chat(http, model, random_seed=seed, **params))[0] for seed in (12, 13, 14)}
    assert others - {a[0]}, "different seeds at temperature 1.2 should not all give the same text"


def test_max_tokens_gives_finish_reason_length(http, model):
    body = _chat(http, model, max_tokens=3, temperature=0)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_stop_string_and_list(http, model):
    full = _texts(_chat(http, model, temperature=0, max_tokens=40))[0]
    word = full.split()[3]
    for stop in (word, [word, "zzzz-never"]):
        body = _chat(http, model, temperature=0, max_tokens=40, stop=stop)
        text = body["choices"][0]["message"]["content"]
        assert word not in text and full.startswith(text.rstrip())
        assert body["choices"][0]["finish_reason"] == "stop"


def test_n_choices_with_seed_are_reproducible(http, model):
    body = _chat(http, model, n=3, random_seed=5, temperature=1.0, max_tokens=16)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    again = _chat(http, model, n=3, random_seed=5, temperature=1.0, max_tokens=16)
    assert _texts(body) == _texts(again)


def test_n_usage_counts_every_choice(http, model):
    one = _chat(http, model, n=1, max_tokens=5, temperature=0)
    three = _chat(http, model, n=3, max_tokens=5, temperature=0)
    assert three["usage"]["completion_tokens"] == 3 * one["usage"]["completion_tokens"] == 15
    assert three["usage"]["prompt_tokens"] == one["usage"]["prompt_tokens"]


def test_penalties_are_applied(http, model):
    base = _texts(_chat(http, model, temperature=0, max_tokens=40))[0]
    penalised = _texts(_chat(http, model, temperature=0, max_tokens=40, frequency_penalty=2.0,
                             presence_penalty=2.0))[0]
    assert penalised != base
