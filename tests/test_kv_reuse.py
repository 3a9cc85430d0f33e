"""Keys and values kept across turns (generation.PrefixCache): a rollout that reuses them gives the dialogues
of one that re-reads every turn, token for token, while prefilling far fewer tokens."""
import random
import warnings
from pathlib import Path

import pytest
import torch

import dialogue
import generation
import tasks
from conftest import random_llama
from dialogue import ChatFormat, ModelTeacher, Sampling, rollout
from generation import PrefixCache, generate
from tinyworld import HintTeacher


def ends_turns(model, end: int, boost: float = 3.0):
    """Raise the end-of-turn token's logit, so that a random model ends its turns and dialogues go on."""
    head = model.get_output_embeddings()
    head.register_forward_hook(lambda module, args, out: out.index_add(
        -1, torch.tensor([end]), torch.full((*out.shape[:-1], 1), boost)))
    return model


@pytest.fixture(scope="module")
def talker(tok):
    return ends_turns(random_llama(tok, seed=1), ChatFormat(tok).end_of_turn)


def count_prefill(monkeypatch) -> dict:
    """Tokens fed by prefills (real ones, and padded positions), counted at the forward."""
    counts = {"real": 0, "padded": 0}
    forward = generation._forward

    def counting(model, cache, input_ids, attention, position, **kw):
        if "logits_to_keep" in kw:                        # prefill; a decode step passes no such argument
            counts["real"] += int(attention[:, -input_ids.shape[1]:].sum())
            counts["padded"] += input_ids.numel()
        return forward(model, cache, input_ids, attention, position, **kw)
    monkeypatch.setattr(generation, "_forward", counting)
    return counts


def _tiny_rollout(model, tok, reuse, temperature=1.0, max_batch_tokens=None, **kw):
    problems = tasks.tiny_problems("math", "test", n=8)
    sampling = Sampling(temperature=temperature, max_turn_tokens=12, max_dialogue_tokens=300,
                        max_batch_tokens=max_batch_tokens, reuse_cache=reuse)
    kw = {"group_size": 2, "max_turns": 4, **kw}
    return rollout(model, tok, problems, HintTeacher(), sampling=sampling, **kw)


@pytest.mark.parametrize("cap", [None, 3 * 150])
def test_greedy_dialogues_are_the_same_with_and_without_reuse(monkeypatch, tok, talker, cap):
    counts = count_prefill(monkeypatch)
    fresh = _tiny_rollout(talker, tok, reuse=False, temperature=0, max_batch_tokens=cap, group_size=1)
    fresh_real = counts["real"]
    reused = _tiny_rollout(talker, tok, reuse=True, temperature=0, max_batch_tokens=cap, group_size=1)
    assert [d.segments for d in reused] == [d.segments for d in fresh]
    assert max(d.turns for d in fresh) == 4                      # the dialogues did go on
    assert counts["real"] - fresh_real < fresh_real / 2          # each turn read only what was new


def test_sampled_dialogues_repeat_for_a_seed_and_equal_the_re_reading_ones(tok, talker):
    """Same seed, same dialogues; and, as reuse draws the same random numbers in the same order, the same
    dialogues as without reuse (on this CPU, where the logits agree closely enough that no draw flips)."""
    runs = [_tiny_rollout(talker, tok, reuse=r, temperature=1.0, seed=3) for r in (True, True, False)]
    assert [d.segments for d in runs[0]] == [d.segments for d in runs[1]] == [d.segments for d in runs[2]]


def test_a_groups_openings_are_prefilled_once(monkeypatch, tok, talker):
    """g copies of one prompt (a GRPO group's opening) are prefilled once; each row then decodes on its own."""
    counts = count_prefill(monkeypatch)
    prompts = [[5, 6, 7, 8]] * 3 + [[9, 10]]
    kw = dict(temperature=0, pad_token_id=tok.pad_token_id)
    out = generate(talker, prompts, 5, **kw)
    assert counts["real"] == 4 + 2 and counts["padded"] == 2 * 4
    assert out == [generate(talker, [p], 5, **kw)[0] for p in prompts]


def test_a_rewritten_turn_is_recomputed_from_where_it_differs(tok, talker):
    """generate() reads the common prefix of a PrefixCache and the prompt: a turn replaced after the fact (as
    Q-priming does) gets its new tokens, not the old ones' keys."""
    rng = random.Random(0)
    prompts = [[rng.randrange(3, len(tok)) for _ in range(n)] for n in (9, 4, 14)]
    caches = [PrefixCache() for _ in prompts]
    kw = dict(temperature=0, pad_token_id=tok.pad_token_id, stop_token_ids=[tok.eos_token_id])
    first = generate(talker, prompts, 6, caches=caches, **kw)
    assert [c.ids for c in caches] == [p + o[:-1] for p, o in zip(prompts, first)]
    assert all(k.shape[1] == len(c.ids) for c in caches for k, v in c.layers)
    later = [p + o + [5, 6, 7] for p, o in zip(prompts, first)]
    later[1] = prompts[1][:2] + [8, 9] + later[1][4:]            # rewritten near the start
    assert generate(talker, later, 6, caches=caches, **kw) == generate(talker, later, 6, **kw)
    assert caches[1].ids[:4] == later[1][:4]


def test_the_cache_goes_to_the_forward_without_a_deprecation_warning(tok, talker):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generate(talker, [[5, 6, 7]], 3, temperature=0, caches=[PrefixCache()])
    assert not [w for w in caught if "past_key_values" in str(w.message)]


@pytest.mark.parametrize("arch", ["llama3.2", "qwen2.5", "gemma3-text"])
def test_real_architectures_same_dialogues_with_and_without_reuse(monkeypatch, arch):
    """The saved, nudged folders of tests/realarch.py, each its own model teacher (whose view is cached too).
    Gemma 3's sliding-window layers keep no full history: it re-reads every turn, and says so."""
    import realarch
    model, tok = dialogue.load_model(str(realarch.model_folder(arch)), "cpu")
    assert generation.reuses_cache(model) == (arch != "gemma3-text")
    problems = tasks.load_omni_math(str(Path(__file__).parent / "fixtures" / "omni_math.jsonl"), "test")[:3]
    counts = count_prefill(monkeypatch)
    runs, prefilled = [], []
    for reuse in (False, True):
        before = counts["real"]
        teacher = ModelTeacher(model, tok, max_new_tokens=12, temperature=0, reuse_cache=reuse)
        sampling = Sampling(temperature=0, max_turn_tokens=10, max_dialogue_tokens=1024, reuse_cache=reuse)
        runs.append(rollout(model, tok, problems, teacher, group_size=2, max_turns=3, sampling=sampling))
        prefilled.append(counts["real"] - before)
    assert [d.messages for d in runs[1]] == [d.messages for d in runs[0]]
    assert [d.segments for d in runs[1]] == [d.segments for d in runs[0]]
    assert max(d.turns for d in runs[0]) >= 2
    if arch != "gemma3-text":
        assert prefilled[1] < 0.6 * prefilled[0]      # the first turns, student's and teacher's, are all new


def test_a_calls_cache_is_one_buffer_written_in_place(tok, talker):
    """Decode steps write into the buffer that the prefill allocated (no copy of the cache per step), and
    attention reads only the filled columns; sliding-window models keep Hugging Face's DynamicCache."""
    cache = generation._new_cache(talker, capacity=12)
    assert all(isinstance(layer, generation.BufferLayer) for layer in cache.layers)
    ids = torch.tensor([[5, 6, 7, 8]])
    logits = generation._forward(talker, cache, ids, torch.ones_like(ids), torch.arange(4)[None])
    buffer = cache.layers[0].key_buffer
    assert buffer.shape[2] == 12 and cache.get_seq_length() == 4
    step, attention, position = logits[:, -1].argmax(-1), torch.ones(1, 4, dtype=torch.long), torch.tensor([4])
    for n in range(5, 9):
        _, attention, position = generation.decode_step(talker, cache, step, attention, position)
        assert cache.layers[0].key_buffer.data_ptr() == buffer.data_ptr() and cache.layers[0].keys.shape[2] == n
    fresh = talker(input_ids=torch.tensor([[5, 6, 7, 8, int(step)]]), use_cache=True).past_key_values
    assert torch.allclose(cache.layers[1].keys[:, :, :5], fresh.layers[1].keys, atol=1e-5)
    import realarch
    gemma, _ = dialogue.load_model(str(realarch.model_folder("gemma3-text")), "cpu")
    assert type(generation._new_cache(gemma, capacity=12)).__name__ == "DynamicCache"
