"""The benchmarks run and print their tables (tiny sizes): bench.generate's rows of every Hugging Face option
with ours, greedy rows counted equal; bench.train's chosen setting. Their timings are not tested."""
import re

import bench.generate
import bench.train
import realarch


def test_generate_compares_ours_with_hugging_faces_options(capsys):
    folder = str(realarch.model_folder("llama3.2"))
    bench.generate.main(["--model", folder, "--batch", "3", "--new-tokens", "4", "--prompt-len", "8",
                         "--repeats", "2", "--skip", "compile", "batch"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "x |" in line]
    assert [r.split(" | ")[0] for r in rows] == ["| hf generate (dynamic cache)", "| hf generate (static cache)",
                                                 "| generation.generate (ours)"]
    assert all(re.search(r"\| 3/3 \| - \|$", r) for r in rows)        # greedy rows equal, no GPU memory
    assert any("| 1.00x |" in r for r in rows[:2])                    # the best Hugging Face row is the 1.00x


def test_generate_with_rollout_shapes_changes_the_batch_every_round(capsys, monkeypatch):
    import generation
    seen, real = [], generation.generate
    monkeypatch.setattr(generation, "generate", lambda model, prompts, *a, **k: seen.append(
        (len(prompts), max(map(len, prompts)))) or real(model, prompts, *a, **k))
    bench.generate.main(["--model", str(realarch.model_folder("llama3.2")), "--batch", "3", "--new-tokens", "2",
                         "--prompt-len", "8", "--repeats", "2", "--skip", "static", "compile", "batch",
                         "--rollout-shapes"])
    # (rows, longest prompt): reference and warm-up on the 4-6-token prompts, then a row fewer, 16 tokens more
    assert seen == [(3, 6), (3, 6), (2, 5 + 16), (1, 4 + 32)]
    out = capsys.readouterr().out
    assert "rollout shapes" in out and "| generation.generate (ours) |" in out


def test_train_runs_only_the_chosen_setting(capsys):
    bench.train.main(["--hidden", "32", "--intermediate", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
                      "--vocab", "128", "--dialogues", "2", "--prompt-tokens", "8", "--new-tokens", "4",
                      "--repeats", "1", "--settings", "lora+checkpointing"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| LoRA") or
            line.startswith("| full")]
    assert len(rows) == 1 and rows[0].startswith("| LoRA r16, checkpointing on")
