"""Benchmarks: generation speed, a training step, the math grader. Run each with python -m bench.NAME."""
