"""OpenCodeInstruct's assert tests, judged out of the program's reach (§5.1, code domain; used by verify.py).

A test such as `assert abs(f(2) - 3.14) < 1e-6` holds its expected value (3.14) in its own code. Run as
written in the program's process, the program could read that value (sys._getframe, gc) or change how it is
compared (replace abs, math.isclose, builtins.all; return an object whose __eq__ is always True). So the
test is split:

    split_assert(src) -> (steps, checks)   the program's parts ("leaves": f(2), s.pop(), sorted(f(x))), for the
                                           sandbox to evaluate; the rest, with each leaf as the name "<k>"
    evaluate(check, values)                a check, here, over literals and the plain values the leaves had

The judge's side is made of literals, comparisons, and/or/not, arithmetic, conditional expressions and the
functions in JUDGE_NAMES (abs, len, round, sorted, set, min, max, sum, isinstance, math.isclose, Counter, ...)
applied to literals or leaves; a known function applied to leaves only (len(f(x)), str(obj)) runs in the
sandbox, since no expected value is in it. Statements other than asserts run in the sandbox as written
(s = Stack(); s.push(1)). Refused with ValueError (verify.py reports such a test as an error, so the problem
can't be passed), since the program could decide the verdict: a leaf holding a comparison (all(f(x) == y for
...)), a dunder (f(2).__eq__(4)), or a call given a literal beside a computed value
(np.allclose(f(x), [1, 2])); a comparison of leaves alone where the test holds a literal
(f(x) == Fraction(1, 3), f(x) == f(2), f(x) == expected after `expected = [1, 2]`). Not refused, and decided
by the program: a test whose statements before the assert build its expected value through a call
(`expected = build(...)`), or that asks the program's own object (`assert obj.equals(5)`); its verdict then
is the program's, as the test's author wrote it.

Deviation from running the assert: values are compared with Python's semantics on plain data, so a test that
relies on the program's own __eq__ (`assert f(x) == MyClass(1)`) fails, and builtins the program redefines
(def sorted(...)) are the real ones on the judge's side.

Benchmarks whose tests are code, HumanEval's `def check(candidate)` (tasks.load_humaneval), become such asserts
at load time. This runs the dataset's own code, trusted as its asserts are, in this process; never the program:

    unroll_check(test, entry_point, reference)    each assert check() executes, on literals: loops unrolled,
                                                  random inputs drawn once (seed 0), expected values computed
    docstring_examples(prompt, entry_point, ref)  the docstring's examples the reference passes: public tests
    judge_code_for(prompt, entry_point, tests)    the prompt's helpers where a test applies one to the program's
                                                  value (HumanEval/32's poly): split_assert's `judge_code`

    python -m pytest tests/test_sandbox.py -q -k assert
"""
import ast
import collections
import contextlib
import copy
import hashlib
import io
import math
import operator
import random
import re
import types

_JUDGE_NODES = (ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.BoolOp, ast.UnaryOp, ast.BinOp,
                ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.operator, ast.unaryop, ast.cmpop, ast.boolop,
                ast.expr_context)


def split_assert(src: str, judge_code: str = "") -> tuple[list, list]:
    """An assert test (maybe after statements) as (steps for the sandbox: ["exec", statement] and ["eval",
    leaf], the checks: one expression tree per assert). Raises ValueError where the program could decide the
    verdict. `judge_code`: the dataset's own helper functions (never the program's), which the judge may apply
    to the leaves' plain values (HumanEval/32: `math.fabs(poly(xs, find_zero(xs))) < 1e-4`)."""
    split, checks = _Split(_trusted_helpers(judge_code)), []
    for stmt in ast.parse(src).body:
        if isinstance(stmt, ast.Assert):
            checks.append(ast.fix_missing_locations(_Guard().visit(split.visit(stmt.test))))
            continue
        if isinstance(stmt, ast.Assign) and split.judge_only(stmt.value):
            split.literals |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        split.steps.append(["exec", ast.unparse(stmt)])
    if not checks:
        raise ValueError("it has no assert")
    return split.steps, checks


def evaluate(check, values):
    """A check, or part of one: split_assert left in it only literals, operators, JUDGE_NAMES and the names of
    the leaves, whose `values` are plain data (sandbox.Values), so nothing of the program or the dataset
    runs."""
    tree = ast.fix_missing_locations(ast.Expression(check))
    names = collections.ChainMap(values, JUDGE_NAMES, _TRUSTED)
    return eval(compile(tree, "<test>", "eval"), {"__builtins__": {}}, names)


class _Split(ast.NodeTransformer):
    def __init__(self, helpers: dict):
        self.steps, self.n_leaves, self.literals, self.helpers = [], 0, set(), helpers  # helpers: name -> key

    def judge_only(self, node) -> bool:
        """Can the judge evaluate this alone: literals, operators, known functions, no name of the
        program's?"""
        if isinstance(node, (ast.Name, ast.Attribute)):
            return ast.unparse(node) in _KNOWN or ast.unparse(node) in self.helpers
        return isinstance(node, _JUDGE_NODES) and all(self.judge_only(k) for k in ast.iter_child_nodes(node))

    def program_only(self, node) -> bool:
        """Is this the program's alone: a name, call, subscript... of its own, or the judge's operators and
        functions applied to such things only (len(f(x)), str(obj), [f(1), f(2)]), with no literal beside
        them?"""
        if self.judge_only(node) or isinstance(node, (ast.Compare, ast.BoolOp)):
            return False
        if not isinstance(node, _JUDGE_NODES) or (isinstance(node, ast.Call) and not self.judge_only(node.func)):
            return True
        kids = [k.value if isinstance(k, ast.keyword) else k for k in ast.iter_child_nodes(node)
                if isinstance(k, (ast.expr, ast.keyword)) and k is not getattr(node, "func", None)]
        return all(map(self.program_only, kids))

    def visit(self, node):
        if not isinstance(node, ast.expr):
            return self.generic_visit(node)  # keywords, operators
        if isinstance(node, ast.Name) and node.id in self.helpers:
            return ast.Name(id=self.helpers[node.id], ctx=ast.Load())   # the dataset's function, by its key
        if self.judge_only(node):   # its parts too, for a helper's name within (abs(poly(xs, 0)))
            return node if isinstance(node, (ast.Name, ast.Attribute)) else self.generic_visit(node)
        if not self.program_only(node):  # the judge's: abs(f(x) - 3.14) < 1e-9, round(f(x), 2) == 0.33
            held = any(isinstance(n, ast.Constant) or getattr(n, "id", None) in self.literals for n in ast.walk(node))
            src, node = ast.unparse(node), self.generic_visit(node)
            if isinstance(node, ast.Compare) and held and all(
                    getattr(x, "id", "").startswith("<") for x in [node.left, *node.comparators]):
                raise ValueError(f"both sides of {src} come from the program")
            return node
        for n in ast.walk(node):  # a leaf: may the program compute it?
            args = [*n.args, *(k.value for k in n.keywords)] if isinstance(n, ast.Call) else []
            computed = any(isinstance(m, ast.Call) for a in args for m in ast.walk(a))
            if isinstance(n, (ast.Compare, ast.BoolOp)) or (isinstance(n, ast.Attribute) and n.attr.startswith("__")) \
                    or (any(map(self.judge_only, args)) and computed):
                raise ValueError(f"the program would decide {ast.unparse(n)}")
        self.steps.append(["eval", ast.unparse(node)])
        self.n_leaves += 1
        return ast.Name(id=f"<{self.n_leaves - 1}>", ctx=ast.Load())


class _Guard(ast.NodeTransformer):
    def visit_BinOp(self, node):  # *, ** and << through _arith
        node = self.generic_visit(node)
        if not isinstance(node.op, (ast.Mult, ast.Pow, ast.LShift)):
            return node
        op = ast.Constant(type(node.op).__name__)
        return ast.Call(ast.Name("<arith>", ast.Load()), [op, node.left, node.right], [])


def _arith(op: str, a, b):
    """*, ** and << on plain data, refusing results too big to build here (2 ** 10 ** 10, 'a' * 10 ** 12)."""
    seq = lambda x: isinstance(x, (str, bytes, list, tuple))
    size = (len(a) * b if seq(a) and type(b) is int else len(b) * a if seq(b) and type(a) is int else 0) \
        if op == "Mult" else (abs(a).bit_length() if type(a) is int else 64) * b if op == "Pow" else b
    if type(size) is int and size > 10 ** 6:
        _too_big()
    return {"Mult": operator.mul, "Pow": operator.pow, "LShift": operator.lshift}[op](a, b)


def _too_big():
    raise ValueError("a value too big to compute in the judge")


JUDGE_NAMES = {**{f.__name__: f for f in (abs, all, any, bool, dict, float, frozenset, int, isinstance, len, list,
                                          max, min, set, sorted, str, sum, tuple, math.isclose)},
               "round": lambda x, n=None: round(x, n) if n is None or n > -400 else _too_big(),  # 10 ** -n
               "Counter": collections.Counter, "OrderedDict": collections.OrderedDict, "<arith>": _arith,
               "math": types.SimpleNamespace(isclose=math.isclose, fabs=math.fabs),
               "collections": types.SimpleNamespace(Counter=collections.Counter, OrderedDict=collections.OrderedDict)}
_KNOWN = {k for k in JUDGE_NAMES if k.isidentifier() and k not in ("math", "collections")} | \
    {f"{k}.{a}" for k in ("math", "collections") for a in vars(JUDGE_NAMES[k])}


# --- the dataset's own code, trusted: a benchmark's helpers, its check(candidate) unrolled into asserts ---
# Nothing here runs the program: it runs a dataset's code (HumanEval's prompt helpers, reference solution and
# test), in this process, as the datasets' asserts themselves are trusted.

_TRUSTED = {}   # "<name@hash>" -> a dataset's helper function, compiled once per process from its judge_code


def _trusted_helpers(judge_code: str) -> dict:
    """The functions `judge_code` defines, by name -> the key under which evaluate() finds them."""
    if not judge_code:
        return {}
    tag = hashlib.sha256(judge_code.encode()).hexdigest()[:12]
    names = {node.name: f"<{node.name}@{tag}>" for node in ast.parse(judge_code).body
             if isinstance(node, ast.FunctionDef)}
    if any(key not in _TRUSTED for key in names.values()):
        namespace = trusted_namespace(judge_code)
        _TRUSTED.update({key: namespace[name] for name, key in names.items()})
    return names


def trusted_namespace(src: str) -> dict:
    """What a dataset's own code defines (exec'd here, its prints swallowed, the global random state kept)."""
    namespace, state = {"__name__": "dataset"}, random.getstate()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(src, "<dataset>", "exec"), namespace)
    finally:
        random.setstate(state)
    return namespace


def unroll_check(test_src: str, entry_point: str, reference_src: str, seed: int = 0) -> list[str]:
    """A HumanEval-style `def check(candidate): ...` as flat asserts on literals, one per assert it executes:
    `assert candidate(x + 1) == str(x)` in a loop becomes `assert change_base(2, 3) == '2'`, ...

    check() runs here, with random seeded (HumanEval/53 draws unseeded inputs), in the namespace of
    `reference_src` (the prompt's helpers and the reference solution). Each assert is rebuilt before it would
    run: every part without the candidate in it is computed here and written as a literal; a call of the
    candidate becomes a call of entry_point on those literals; a name assigned from the candidate's value
    (`solution = candidate(xs)`) stands for that call. The candidate itself is never called. An assert
    without the candidate in it (`assert True`) is dropped. Raises ValueError where the program's value is
    used outside an assert or an assignment (a loop over it, an if on it), or a value has no literal form."""
    module = ast.parse(test_src)
    check = next((s for s in module.body if isinstance(s, ast.FunctionDef) and s.name == "check"), None)
    if check is None or len(check.args.args) != 1:
        raise ValueError("the test defines no check(candidate)")
    unroll = _Unroll(check.args.args[0].arg, entry_point)
    check.body = [unroll.visit(stmt) for stmt in check.body]
    namespace = unroll.namespace = trusted_namespace(reference_src)
    namespace.update(__emit__=unroll.emit, __symbol__=unroll.symbol)
    state = random.getstate()
    random.seed(seed)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(ast.fix_missing_locations(module), "<test>", "exec"), namespace)
            namespace["check"](None)
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"its check raised {type(e).__name__}: {e}") from None
    finally:
        random.setstate(state)
    return unroll.asserts


class _Symbol:
    """A value of the candidate's, as the call that computes it (`solution = candidate(xs)`)."""

    def __init__(self, tree):
        self.tree = tree


class _Unroll(ast.NodeTransformer):
    """Rewrites check()'s statements so that each assert and each assignment from the candidate reports to
    emit()/symbol() with its locals, instead of running."""

    def __init__(self, param: str, entry_point: str):
        self.param, self.entry_point, self.tainted = param, entry_point, {param}
        self.table, self.asserts, self.namespace = [], [], {}

    def _report(self, fn: str, node) -> ast.Call:
        self.table.append(node)
        return ast.Call(ast.Name(fn, ast.Load()), [ast.Constant(len(self.table) - 1),
                                                   ast.Call(ast.Name("locals", ast.Load()), [], [])], [])

    def _mentions(self, node) -> bool:
        return any(isinstance(n, ast.Name) and n.id in self.tainted for n in ast.walk(node))

    def visit_Assert(self, node):
        return ast.Expr(self._report("__emit__", node.test)) if self._mentions(node.test) else node

    def visit_Assign(self, node):
        if not self._mentions(node.value):
            return node
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            raise ValueError(f"line {node.lineno} unpacks the candidate's value")
        self.tainted.add(node.targets[0].id)
        return ast.Assign(node.targets, self._report("__symbol__", node.value))

    def generic_visit(self, node):
        # a compound statement's own expressions (a loop's range, an if's test) must not need the program
        if isinstance(node, ast.stmt):
            own = [v for f, v in ast.iter_fields(node) if f not in ("body", "orelse", "finalbody", "handlers")]
            parts = [n for v in own for n in (v if isinstance(v, list) else [v]) if isinstance(n, ast.AST)]
            if any(map(self._mentions, parts)):
                raise ValueError(f"line {node.lineno} uses the candidate's value outside an assert")
        return super().generic_visit(node)

    def emit(self, k: int, local: dict):
        tree = self._render(self.table[k], local)
        if not any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == self.entry_point
                   and getattr(n, "_candidate", False) for n in ast.walk(tree)):
            if not (isinstance(tree, ast.Constant) and tree.value):
                raise ValueError(f"an assert without the candidate fails: {ast.unparse(self.table[k])}")
            return
        self.asserts.append("assert " + ast.unparse(tree))

    def symbol(self, k: int, local: dict) -> _Symbol:
        return _Symbol(self._render(self.table[k], local))

    def _render(self, node, local: dict):
        if not self._mentions(node):
            scope = {**self.namespace, **local}   # as globals: a comprehension in it sees the locals too
            return _literal(eval(compile(ast.Expression(node), "<test>", "eval"), scope))
        if isinstance(node, ast.Name):
            if node.id == self.param:
                raise ValueError("it uses the candidate function as a value")
            return copy.deepcopy(local[node.id].tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == self.param:
            if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                raise ValueError("it calls the candidate with *args or **kwargs")
            call = ast.Call(ast.Name(self.entry_point, ast.Load()), [self._render(a, local) for a in node.args],
                            [ast.keyword(k.arg, self._render(k.value, local)) for k in node.keywords])
            call._candidate = True
            return call
        scoped = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)
        if isinstance(node, scoped) or (isinstance(node, ast.Call) and self._mentions(node.func)):
            raise ValueError(f"it computes {ast.unparse(node)} from the candidate's value in a way not unrolled")
        new = copy.copy(node)
        for field, value in ast.iter_fields(node):
            if field == "func" and isinstance(node, ast.Call):
                continue   # the callee stays a name (abs, math.fabs, the dataset's poly)
            if isinstance(value, ast.expr):
                setattr(new, field, self._render(value, local))
            elif isinstance(value, list):
                setattr(new, field, [self._render(v, local) if isinstance(v, ast.expr) else
                                     ast.keyword(v.arg, self._render(v.value, local)) if isinstance(v, ast.keyword)
                                     else v for v in value])
        return new


def _literal(value):
    """A value the dataset's code computed, as a literal expression that reads back as the same value."""
    src = repr(value)
    try:
        back = ast.literal_eval(src)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        back = _literal   # no literal form
    if type(back) is not type(value) or back != value:
        raise ValueError(f"a value it computes has no literal form: {src[:80]}")
    return ast.parse(src, mode="eval").body


def docstring_examples(prompt: str, entry_point: str, reference_src: str) -> list[str]:
    """The examples in the docstring of `entry_point` as asserts, `assert f(x) == y`, keeping those the
    reference solution (run here, on the example's literals) passes and the judge can split: a docstring's
    typo never becomes a test a correct program fails. Three forms are read:
        >>> f(x)          doctest: the expression, then its output lines
        y
        f(x) => y         a line that calls the function, then ==, =>, ==>, ➞, ->, =, returns, should return...
        Input: x          (or "For x = 1 the output should be y"): the arguments, named or not, and the output
        Output: y
    """
    function = next((s for s in ast.parse(prompt).body
                     if isinstance(s, ast.FunctionDef) and s.name == entry_point), None)
    doc = (ast.get_docstring(function) or "") if function else ""
    namespace, tests = trusted_namespace(reference_src), []
    for expr, expected in _doctests(doc) + _example_lines(doc, entry_point):
        try:
            want = ast.literal_eval(re.sub(r"\b(true|false)\b", lambda m: m[0].title(), expected.strip()))
            test = f"assert {ast.unparse(ast.parse(expr, mode='eval'))} == {ast.unparse(_literal(want))}"
            split_assert(test)
            with contextlib.redirect_stdout(io.StringIO()):
                ok = eval(compile(test[len("assert "):], "<docstring>", "eval"), dict(namespace)) is True
        except Exception:  # not an example this reads (prose, a non-literal output), or the reference disagrees
            continue
        if ok and test not in tests:
            tests.append(test)
    return tests


def _doctests(doc: str) -> list[tuple[str, str]]:
    lines, pairs = doc.splitlines(), []
    for i, line in enumerate(lines):
        if line.strip().startswith(">>>"):
            out = []
            for nxt in lines[i + 1:]:
                if not nxt.strip() or nxt.strip().startswith(">>>"):
                    break
                out.append(nxt.strip())
            expr, output = line.strip()[3:].strip(), " ".join(out)
            if not output and " == " in expr:   # ">>> f(x) == y" with no output line: the example is y
                expr, output = expr.rsplit(" == ", 1)
            pairs.append((expr, output))
    return pairs


_SEPARATOR = re.compile(r"\s*(?:#\s*)?(?:==>|=>|==|➞|->|→|=|should return|returns|return)\s*")
_OUTPUT = re.compile(r"(?:Input:\s*(.+?)\s*\n\s*Output:|For (.+?),? the output should be)\s*(.+)")


def _example_lines(doc: str, entry_point: str) -> list[tuple[str, str]]:
    """`f(args) <separator> value` lines, and Input/Output pairs, as (call, expected) sources."""
    pairs = []
    for match in re.finditer(rf"(?m)^[\s*]*({re.escape(entry_point)}\()", doc):
        start = match.start(1)
        for end in (i + 1 for i in range(start, len(doc)) if doc[i] == ")"):  # the shortest call that parses
            try:
                ast.parse(doc[start:end], mode="eval")
            except SyntaxError:
                continue
            rest = _SEPARATOR.sub("", doc[end:].split("\n")[0], count=1).strip().rstrip(".")
            pairs += [(doc[start:end], rest), (doc[start:end], rest.rsplit("=", 1)[-1])]  # "19 - 5 - 6 = 8"
            break
    for args, args2, output in _OUTPUT.findall(doc):
        with contextlib.suppress(SyntaxError):
            call = ast.parse(f"f({args or args2})", mode="eval").body   # "arr = [1, 2], k = 3": in order
            call = ast.Call(ast.Name(entry_point, ast.Load()), call.args + [k.value for k in call.keywords], [])
            pairs.append((ast.unparse(call), output.split("#")[0].strip().rstrip(".")))
    return pairs


def judge_code_for(prompt: str, entry_point: str, tests: list[str]) -> str:
    """A prompt's code but its entry point (its imports and helper functions), where one of the tests calls a
    helper, for the judge to apply (HumanEval/32: poly); else ""."""
    body = [s for s in ast.parse(prompt).body if not (isinstance(s, ast.FunctionDef) and s.name == entry_point)]
    helpers = {s.name for s in body if isinstance(s, ast.FunctionDef)}
    if not any(isinstance(n, ast.Call) and getattr(n.func, "id", None) in helpers
               for test in tests for n in ast.walk(ast.parse(test))):
        return ""
    return "\n\n".join(ast.get_source_segment(prompt, s) for s in body)
