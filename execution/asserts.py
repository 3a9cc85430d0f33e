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

    python -m pytest tests/test_sandbox.py -q -k assert
"""
import ast
import collections
import math
import operator
import types

_JUDGE_NODES = (ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.BoolOp, ast.UnaryOp, ast.BinOp,
                ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.operator, ast.unaryop, ast.cmpop, ast.boolop,
                ast.expr_context)


def split_assert(src: str) -> tuple[list, list]:
    """An assert test (maybe after statements) as (steps for the sandbox: ["exec", statement] and ["eval",
    leaf], the checks: one expression tree per assert). Raises ValueError where the program could decide the
    verdict."""
    split, checks = _Split(), []
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
    return eval(compile(tree, "<test>", "eval"), {"__builtins__": {}}, collections.ChainMap(values, JUDGE_NAMES))


class _Split(ast.NodeTransformer):
    def __init__(self):
        self.steps, self.n_leaves, self.literals = [], 0, set()

    def judge_only(self, node) -> bool:
        """Can the judge evaluate this alone: literals, operators, known functions, no name of the
        program's?"""
        if isinstance(node, (ast.Name, ast.Attribute)):
            return ast.unparse(node) in _KNOWN
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
        if self.judge_only(node):
            return node
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
