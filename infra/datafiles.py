"""Reading dataset files safely: the file formats, field checks, size limits and the decoding of packed tests.

Every loader in tasks.py reads its rows through here, so a bad file ends in one `DataError` sentence that
names the file, the line or row, and what is wrong, and one oversized row cannot take the machine. The formats
themselves are described in the docstrings of tasks.py's loaders. Not in the paper: plumbing for §5.1's
datasets.
"""
from __future__ import annotations

import ast
import base64
import io
import json
import os
import pickle
import zlib

from execution import asserts


class DataError(ValueError):
    """A dataset that can't be read. The message is one sentence: the CLI prints it without a traceback."""


# --- size limits: one oversized row must not take the machine ---

MAX_TEXT_CHARS = 100_000   # statement, solution, answer or shard: far past any real problem; more is broken
MAX_TEST_CHARS = 10 << 20  # a test's input or output: the sandbox's 10 MB file-size limit could not hold more


def within_limits(rows: list[tuple[str, object]], source: str) -> list:
    """The problems of (where, problem) rows whose texts and tests are within the size limits. The others are
    skipped, with one line that counts them and names the first one's file, line and limit: a single 50 MB
    statement would otherwise be tokenized and prefilled, and take the run's memory with it."""
    kept, skipped = [], []
    for where, p in rows:
        texts = [p.statement, p.solution, p.answer or "", *(p.shards or [])]
        tests = [str(t.get(k, "")) for t in p.tests for k in ("input", "output", "assert")]
        if max(map(len, texts), default=0) > MAX_TEXT_CHARS:
            skipped.append(f"{where} (a text of {max(map(len, texts)):,} characters; the limit is {MAX_TEXT_CHARS:,})")
        elif max(map(len, tests), default=0) > MAX_TEST_CHARS:
            skipped.append(f"{where} (a test of {max(map(len, tests)):,} characters; the limit is {MAX_TEST_CHARS:,})")
        else:
            kept.append(p)
    if skipped:
        print(f"skipped {len(skipped)} problem(s) of {source} past the size limits, the first: {skipped[0]}")
    return kept


# --- helpers: reading files, checking fields, decoding tests ---

def hub_file(dataset: str, repo_id: str, filename: str) -> str:
    """The local path of one file of a hub dataset (downloaded once, then cached by huggingface_hub)."""
    try:
        import huggingface_hub
        return huggingface_hub.hf_hub_download(repo_id=repo_id, filename=filename, repo_type="dataset")
    except Exception as e:  # offline, hub unreachable, gated repo, renamed file: all end the same way
        raise DataError(f"Could not download {dataset} ({repo_id}, file {filename}) from the Hugging Face hub "
                        f"({type(e).__name__}): pass a local path with --data.") from e


def check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise DataError(f"No data file at {path}: pass the path of a local file with --data (or 'hub' to download it).")


def read_rows(path: str) -> list[tuple[str, dict]]:
    """(where, row) pairs from a .parquet file or a JSONL file; `where` names the file and row or line."""
    if not path.endswith(".parquet"):
        return read_jsonl(path)
    check_file(path)
    try:
        import pyarrow.parquet  # optional: only the parquet path needs it
    except ImportError:
        raise DataError(f"Reading {path} needs pyarrow: `pip install pyarrow`, or export the data to JSONL.") from None
    try:
        rows = pyarrow.parquet.read_table(path).to_pylist()
    except Exception as e:
        raise DataError(f"{path} is not a readable parquet file ({e}).") from None
    return [(f"{path}, row {i}", row) for i, row in enumerate(rows)]


def read_jsonl(path: str) -> list[tuple[str, dict]]:
    """(where, row) pairs, one per non-blank line; `where` is "<file>, line <N>" (N from 1)."""
    check_file(path)
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}, line {lineno}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{where} is not valid JSON ({e.msg} at column {e.colno}).") from None
                if not isinstance(row, dict):
                    raise DataError(f"{where} is a JSON {type(row).__name__}, not an object.")
                rows.append((where, row))
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text.") from None
    return rows


MISSING = object()


def get_field(row: dict, key: str, types, where: str, default=MISSING):
    """row[key], checked against `types`; a missing key is an error unless a default is given."""
    if key not in row or row[key] is None:
        if default is MISSING:
            raise DataError(f"{where} has no field {key!r}.")
        return default
    if not isinstance(row[key], types) or isinstance(row[key], bool):
        want = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise DataError(f"{where}: field {key!r} should be a {want}, not a {type(row[key]).__name__}.")
    return row[key]


def func_name_of(row: dict, where: str) -> str | None:
    """LiveCodeBench's metadata is a JSON string, Lost in Conversation's a dict: both may name func_name."""
    meta = row.get("metadata") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            raise DataError(f"{where}: field 'metadata' is not valid JSON.") from None
    if not isinstance(meta, dict):
        raise DataError(f"{where}: field 'metadata' should be a JSON object, not a {type(meta).__name__}.")
    return meta.get("func_name") or None


def code_tests(row: dict, where: str) -> list[dict]:
    """Public then private test cases, each {"input", "output", "testtype", "public"}."""
    tests = []
    for key, public in (("public_test_cases", True), ("private_test_cases", False)):
        value = row.get(key)
        if value in (None, ""):
            if public:
                raise DataError(f"{where} has no field 'public_test_cases'.")
            continue
        for t in decode_test_cases(value, f"{where}, field {key!r}"):
            if not (isinstance(t, dict) and isinstance(t.get("input"), str) and isinstance(t.get("output"), str)):
                raise DataError(f"{where}: a test in {key!r} is not an object with string 'input' and 'output'.")
            tests.append({**t, "public": public})
    return tests


def decode_test_cases(value, where: str) -> list:
    """A list of test cases from a list, a JSON string, or LiveCodeBench's
    base64(zlib(pickle(json_string)))."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise DataError(f"{where} should be a JSON string or a list, not a {type(value).__name__}.")
    try:
        tests = json.loads(value)
        if isinstance(tests, list):
            return tests
    except json.JSONDecodeError:
        pass
    try:
        payload = _PlainUnpickler(io.BytesIO(zlib.decompress(base64.b64decode(value, validate=True)))).load()
    except pickle.UnpicklingError as e:
        raise DataError(f"{where} {e}.") from None
    except Exception as e:
        raise DataError(f"{where} is neither a JSON list nor base64(zlib(pickle(JSON))) "
                        f"({type(e).__name__}: {e}).") from None
    if not isinstance(payload, str):
        raise DataError(f"{where} unpickles to a {type(payload).__name__}, not the expected JSON string.")
    try:
        tests = json.loads(payload)
    except json.JSONDecodeError as e:
        raise DataError(f"{where} unpickles to text that is not valid JSON ({e.msg}).") from None
    if not isinstance(tests, list):
        raise DataError(f"{where} decodes to a {type(tests).__name__}, not a list of test cases.")
    return tests


class _PlainUnpickler(pickle.Unpickler):
    """The payload is a plain pickled str: any class reference (os.system, ...) could run code, so all are
    refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"holds a pickle that references {module}.{name}; refused to load it "
                                     "(only a plain pickled string is accepted)")


def judgeable(test: str) -> bool:
    """Can verify.check_code judge this assert outside the program (asserts.split_assert accepts it)?"""
    try:
        asserts.split_assert(test)
        return True
    except (SyntaxError, ValueError):
        return False


def decode_unit_tests(value, where: str) -> list[str]:
    """OpenCodeInstruct's unit_tests: a JSON list of assert strings (a Python literal in some exports)."""
    tests = value
    if isinstance(value, str):
        try:
            tests = json.loads(value)
        except json.JSONDecodeError:
            try:
                tests = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise DataError(f"{where}: field 'unit_tests' is neither JSON nor a Python list literal.") from None
    if not (isinstance(tests, list) and all(isinstance(t, str) for t in tests)):
        raise DataError(f"{where}: field 'unit_tests' should be a list of assert strings.")
    return tests

