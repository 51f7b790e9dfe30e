"""The `$filter` subset of 1C's standard OData: parser and evaluator over the sandbox's in-memory records.

Supported per reference onec-odata.md §4.2: `eq ne gt ge lt le`, `and or not`, `add sub mul div`, parentheses,
navigation `Контрагент/ИНН`, lambdas `Товары/any(d: d/Цена gt 10)`/`all`, the string, date and other functions
1C lists. Functions 1C does not implement (`tolower`, `length`, `contains`, ...) -> 400 code 21; syntax errors
-> 400 code 14. 1C quirks kept on purpose: a `+` outside a string literal (a client that encoded spaces as
`+`) and ordering comparisons on references (`Ref_Key gt guid'…'`) fail with 500, as the real server does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from b24_1c_assets.sandbox.onec_schema import EntitySet, Prop

NS_PREFIX = "StandardODATA."


class ODataError(Exception):
    """An error 1C answers with: HTTP status, 1C error code (a string on the wire) and a Russian text."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} [{code}] {message}")
        self.status, self.code, self.message = status, code, message


def syntax_error(detail: str) -> ODataError:
    return ODataError(400, "14", f"Ошибка разбора опций запроса: {detail}")


WHERE_NOT_ALLOWED = "Операция не разрешена в предложении ГДЕ"
COMPARE_NOT_ALLOWED = (
    "Неверные параметры в операции сравнения. Нельзя сравнивать поля неограниченной длины и поля несовместимых типов."
)

SUPPORTED_FUNCTIONS = {
    "substringof",
    "startswith",
    "endswith",
    "concat",
    "substring",
    "like",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "quarter",
    "dayofweek",
    "dayofyear",
    "dateadd",
    "datedifference",
    "cast",
    "isof",
    "round",
}
UNSUPPORTED_FUNCTIONS = {
    "length",
    "indexof",
    "replace",
    "tolower",
    "toupper",
    "trim",
    "years",
    "days",
    "hours",
    "minutes",
    "seconds",
    "floor",
    "ceiling",
    "contains",
    "months",
    "time",
    "date",
}
COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
ARITHMETIC = {"add", "sub", "mul", "div", "mod"}

_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?(\.\d+)?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_IDENT = re.compile(r"[^\W\d][\w]*", re.UNICODE)


def parse_datetime_literal(text: str) -> str:
    """`2026-01-31T10:00:00` (seconds optional) -> the canonical wire string; date-only is rejected."""
    m = _DATETIME.match(text)
    if not m:
        raise syntax_error(f"неверный литерал datetime'{text}'")
    value = f"{m.group(1)}T{m.group(2)}{m.group(3) or ':00'}"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise syntax_error(f"неверный литерал datetime'{text}'") from None
    return value


def parse_guid_literal(text: str) -> str:
    if not _GUID.match(text):
        raise syntax_error(f"неверный литерал guid'{text}'")
    return text.lower()


# -- tokens --------------------------------------------------------------------------------------------
@dataclass
class Tok:
    kind: str  # str, guid, datetime, num, ident, op ('(', ')', ',', ':', '/'), end
    value: Any
    pos: int


def tokenize(text: str) -> list[Tok]:
    toks, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c == "+":
            # 1C reads '+' literally, so a client that encoded spaces as '+' gets this 500.
            raise ODataError(500, "-1", WHERE_NOT_ALLOWED)
        if c == "'":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise syntax_error(f"незакрытая строка в позиции {i}")
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            toks.append(Tok("str", "".join(buf), i))
            i = j + 1
            continue
        if c in "(),:/":
            toks.append(Tok("op", c, i))
            i += 1
            continue
        m = _NUMBER.match(text, i)
        if m and (c.isdigit() or (c == "-" and i + 1 < n and text[i + 1].isdigit())):
            raw = m.group(0)
            toks.append(Tok("num", Decimal(raw) if "." in raw else int(raw), i))
            i = m.end()
            if i < n and text[i] in "MmdDfFLl":  # type suffixes of v3 literals
                i += 1
            continue
        m = _IDENT.match(text, i)
        if m:
            word = m.group(0)
            j = m.end()
            if word in ("guid", "datetime") and j < n and text[j] == "'":
                end = text.find("'", j + 1)
                if end < 0:
                    raise syntax_error(f"незакрытый литерал в позиции {i}")
                raw = text[j + 1 : end]
                toks.append(Tok(word, parse_guid_literal(raw) if word == "guid" else parse_datetime_literal(raw), i))
                i = end + 1
                continue
            toks.append(Tok("ident", word, i))
            i = j
            continue
        raise syntax_error(f"неожиданный символ '{c}' в позиции {i}")
    toks.append(Tok("end", None, n))
    return toks


# -- compiled nodes ------------------------------------------------------------------------------------
@dataclass
class Node:
    """A compiled expression: `fn(record, env)` -> value. `edm` is the Edm type where known."""

    fn: Callable[[dict, dict], Any]
    edm: str | None = None
    kind: str = "expr"  # path, literal, cmp, and, lambda, expr
    path_field: str | None = None  # kind=path: the top-level property name
    composite: bool = False
    op: str | None = None
    children: list[Node] = field(default_factory=list)
    value: Any = None  # kind=literal
    fields: set[str] = field(default_factory=set)  # top-level properties referenced
    section: str | None = None  # kind=lambda
    leaf: str | None = None  # path-like nodes: the last property name


Resolver = Callable[[str, str], dict | None]  # (entity set, guid) -> record


class Scope:
    """What names mean where an expression is evaluated: the properties of a set or of a row type."""

    def __init__(self, es_name: str, props: dict[str, Prop], tabular: dict[str, list[Prop]]):
        self.es_name, self.props, self.tabular = es_name, props, tabular

    @classmethod
    def of(cls, es: EntitySet) -> Scope:
        return cls(es.name, es.by_name, es.tabular)


def _cmp(op: str, a, b) -> bool:
    if a is None or b is None:
        return op == "ne" if (a is None) != (b is None) else op in ("eq", "ge", "le")
    if isinstance(a, tuple) or isinstance(b, tuple):
        if op == "eq":
            return a == b
        if op == "ne":
            return a != b
        return False
    num = (int, Decimal, float)
    if isinstance(a, bool) != isinstance(b, bool) or (isinstance(a, num) != isinstance(b, num)):
        return op == "ne"  # 1C silently finds nothing for mismatched types
    try:
        return {"eq": a == b, "ne": a != b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
    except TypeError:
        return False


def _as_dt(v) -> datetime | None:
    if isinstance(v, str) and _DATETIME.match(v):
        return datetime.fromisoformat(v)
    return None


def _like(value: str, pattern: str) -> bool:
    """1C ПОДОБНО: % any run, _ one char, [..] / [^..] classes."""
    rx, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%":
            rx += ".*"
        elif c == "_":
            rx += "."
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                rx += re.escape(c)
            else:
                rx += "[" + pattern[i + 1 : j].replace("\\", "\\\\") + "]"
                i = j
        else:
            rx += re.escape(c)
        i += 1
    return re.fullmatch(rx, value or "", re.S | re.I) is not None


def _unit_add(d: datetime, unit: str, n: int) -> datetime:
    unit = unit.lower()
    if unit in ("year", "month", "quarter"):
        months = n * {"year": 12, "month": 1, "quarter": 3}[unit]
        y, m = divmod(d.month - 1 + months, 12)
        day = min(d.day, [31, 29 if (d.year + y) % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m])
        return d.replace(year=d.year + y, month=m + 1, day=day)
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}.get(unit)
    if seconds is None:
        raise syntax_error(f"неизвестная единица '{unit}'")
    return d + timedelta(seconds=seconds * n)


class Parser:
    """Recursive-descent parser producing `Node`s bound to a `Scope`."""

    def __init__(self, text: str, scope: Scope, resolver: Resolver, scopes: Callable[[str], Scope | None]):
        self.toks = tokenize(text)
        self.i = 0
        self.scope = scope
        self.resolver = resolver
        self.scopes = scopes  # entity set name -> Scope (navigation targets)
        self.vars: dict[str, Scope] = {}

    # token helpers
    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, op: str) -> None:
        t = self.take()
        if t.kind != "op" or t.value != op:
            raise syntax_error(f"ожидалось '{op}' в позиции {t.pos}")

    def is_word(self, word: str) -> bool:
        t = self.peek()
        return t.kind == "ident" and t.value == word

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "end":
            raise syntax_error(f"лишний текст в позиции {self.peek().pos}")
        return node

    def expr(self) -> Node:
        left = self.and_expr()
        while self.is_word("or"):
            self.take()
            right = self.and_expr()
            left = Node(
                lambda r, e, a=left.fn, b=right.fn: bool(a(r, e)) or bool(b(r, e)),
                "Edm.Boolean",
                kind="or",
                children=[left, right],
                fields=left.fields | right.fields,
            )
        return left

    def and_expr(self) -> Node:
        left = self.not_expr()
        while self.is_word("and"):
            self.take()
            right = self.not_expr()
            kids = (left.children if left.kind == "and" else [left]) + [right]
            left = Node(
                lambda r, e, a=left.fn, b=right.fn: bool(a(r, e)) and bool(b(r, e)),
                "Edm.Boolean",
                kind="and",
                children=kids,
                fields=left.fields | right.fields,
            )
        return left

    def not_expr(self) -> Node:
        if self.is_word("not"):
            self.take()
            inner = self.not_expr()
            return Node(lambda r, e, a=inner.fn: not a(r, e), "Edm.Boolean", fields=inner.fields)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.additive()
        t = self.peek()
        if t.kind == "ident" and t.value in COMPARISONS:
            self.take()
            right = self.additive()
            return self.make_cmp(t.value, left, right)
        return left

    def make_cmp(self, op: str, left: Node, right: Node) -> Node:
        guids = [n for n in (left, right) if n.edm == "Edm.Guid" or n.kind == "guid"]
        if op in ("gt", "ge", "lt", "le") and guids:
            raise ODataError(500, "-1", COMPARE_NOT_ALLOWED)
        fields = left.fields | right.fields
        # A composite compared with a bare guid literal never matches in 1C (needs cast(...)).
        for a, b in ((left, right), (right, left)):
            if a.composite and b.kind == "guid":
                return Node(lambda r, e: op == "ne", "Edm.Boolean", kind="cmp", fields=fields)
        node = Node(
            lambda r, e, a=left.fn, b=right.fn: _cmp(op, a(r, e), b(r, e)),
            "Edm.Boolean",
            kind="cmp",
            op=op,
            children=[left, right],
            fields=fields,
        )
        return node

    def additive(self) -> Node:
        left = self.multiplicative()
        while self.peek().kind == "ident" and self.peek().value in ("add", "sub"):
            op = self.take().value
            right = self.multiplicative()
            left = self.arith(op, left, right)
        return left

    def multiplicative(self) -> Node:
        left = self.primary()
        while self.peek().kind == "ident" and self.peek().value in ("mul", "div", "mod"):
            op = self.take().value
            right = self.primary()
            left = self.arith(op, left, right)
        return left

    @staticmethod
    def arith(op: str, left: Node, right: Node) -> Node:
        def fn(r, e, a=left.fn, b=right.fn):
            x, y = a(r, e), b(r, e)
            if not isinstance(x, (int, Decimal)) or not isinstance(y, (int, Decimal)) or isinstance(x, bool):
                return None
            if op == "add":
                return x + y
            if op == "sub":
                return x - y
            if op == "mul":
                return x * y
            if y == 0:
                return None
            return Decimal(x) / Decimal(y) if op == "div" else x % y

        return Node(fn, "Edm.Double", fields=left.fields | right.fields)

    def primary(self) -> Node:
        t = self.take()
        if t.kind == "op" and t.value == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if t.kind == "op" and t.value == "-":
            raise syntax_error(f"неожиданный символ в позиции {t.pos}")
        if t.kind in ("str", "num", "guid", "datetime"):
            edm = {"str": "Edm.String", "num": "Edm.Double", "guid": None, "datetime": "Edm.DateTime"}[t.kind]
            return Node(lambda r, e, v=t.value: v, edm, kind=t.kind if t.kind == "guid" else "literal", value=t.value)
        if t.kind == "ident":
            if t.value in ("true", "false"):
                return Node(
                    lambda r, e, v=(t.value == "true"): v, "Edm.Boolean", kind="literal", value=t.value == "true"
                )
            if t.value == "null":
                return Node(lambda r, e: None, None, kind="literal")
            if self.peek().kind == "op" and self.peek().value == "(":
                return self.function(t)
            return self.path(t)
        raise syntax_error(f"неожиданная лексема в позиции {t.pos}")

    def args(self) -> list[Node]:
        self.expect("(")
        out = []
        if self.peek().kind == "op" and self.peek().value == ")":
            self.take()
            return out
        while True:
            out.append(self.expr())
            t = self.take()
            if t.kind == "op" and t.value == ")":
                return out
            if not (t.kind == "op" and t.value == ","):
                raise syntax_error(f"ожидалась ',' или ')' в позиции {t.pos}")

    def function(self, t: Tok) -> Node:
        name = t.value
        if name in UNSUPPORTED_FUNCTIONS:
            raise ODataError(400, "21", f"Нереализованная функция '{name}'")
        if name not in SUPPORTED_FUNCTIONS:
            raise syntax_error(f"неизвестная функция '{name}' в позиции {t.pos}")
        args = self.args()
        fields = set().union(*(a.fields for a in args)) if args else set()
        fns = [a.fn for a in args]

        def arity(*allowed):
            if len(args) not in allowed:
                raise ODataError(400, "21", f"Неверное количество параметров функции '{name}'")

        def s(v):
            return v[0] if isinstance(v, tuple) else ("" if v is None else str(v))

        if name in ("substringof", "startswith", "endswith", "like"):
            arity(2)
            a, b = fns
            f = {
                "substringof": lambda r, e: s(a(r, e)).lower() in s(b(r, e)).lower(),
                "startswith": lambda r, e: s(a(r, e)).lower().startswith(s(b(r, e)).lower()),
                "endswith": lambda r, e: s(a(r, e)).lower().endswith(s(b(r, e)).lower()),
                "like": lambda r, e: _like(s(a(r, e)), s(b(r, e))),
            }[name]
            return Node(f, "Edm.Boolean", fields=fields)
        if name == "concat":
            arity(2)
            return Node(lambda r, e: s(fns[0](r, e)) + s(fns[1](r, e)), "Edm.String", fields=fields)
        if name == "substring":
            arity(2, 3)

            def sub(r, e):
                v, start = s(fns[0](r, e)), int(fns[1](r, e) or 0)
                return v[start:] if len(fns) == 2 else v[start : start + int(fns[2](r, e) or 0)]

            return Node(sub, "Edm.String", fields=fields)
        if name in ("year", "month", "day", "hour", "minute", "second", "quarter", "dayofweek", "dayofyear"):
            arity(1)

            def part(r, e, a=fns[0]):
                d = _as_dt(a(r, e))
                if d is None:
                    return None
                return {
                    "year": d.year,
                    "month": d.month,
                    "day": d.day,
                    "hour": d.hour,
                    "minute": d.minute,
                    "second": d.second,
                    "quarter": (d.month - 1) // 3 + 1,
                    "dayofweek": d.isoweekday(),
                    "dayofyear": d.timetuple().tm_yday,
                }[name]

            return Node(part, "Edm.Int32", fields=fields)
        if name == "dateadd":
            arity(3)

            def add(r, e):
                d = _as_dt(fns[0](r, e))
                return None if d is None else _unit_add(d, s(fns[1](r, e)), int(fns[2](r, e) or 0)).isoformat()

            return Node(add, "Edm.DateTime", fields=fields)
        if name == "datedifference":
            arity(3)

            def diff(r, e):
                a, b = _as_dt(fns[0](r, e)), _as_dt(fns[1](r, e))
                if a is None or b is None:
                    return None
                unit = s(fns[2](r, e)).lower()
                if unit in ("year", "month", "quarter"):
                    months = (b.year - a.year) * 12 + b.month - a.month
                    return months // {"year": 12, "month": 1, "quarter": 3}[unit]
                sec = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}.get(unit, 86400)
                return int((b - a).total_seconds() // sec)

            return Node(diff, "Edm.Int32", fields=fields)
        if name == "round":
            arity(1)
            return Node(
                lambda r, e: None if fns[0](r, e) is None else Decimal(fns[0](r, e)).to_integral_value(),
                "Edm.Double",
                fields=fields,
            )
        if name == "cast":
            arity(2)
            if args[1].kind != "literal" or not isinstance(args[1].value, str):
                raise ODataError(400, "21", "Неверный тип параметра функции 'cast'")
            type_name = args[1].value if args[1].value.startswith(NS_PREFIX) else NS_PREFIX + args[1].value
            if args[0].kind == "guid":
                return Node(lambda r, e, g=args[0].value: (g, type_name), None, composite=True, fields=fields)
            return Node(fns[0], args[0].edm, fields=fields)
        # isof
        arity(2)
        target = args[-1].value if args[-1].kind == "literal" else None
        if not isinstance(target, str):
            raise ODataError(400, "21", "Неверный тип параметра функции 'isof'")
        type_name = target if target.startswith(NS_PREFIX) else NS_PREFIX + target
        subject = args[0]
        if len(args) == 2 and subject.composite:
            return Node(
                lambda r, e, a=subject.fn: isinstance(a(r, e), tuple) and a(r, e)[1] == type_name,
                "Edm.Boolean",
                fields=fields,
            )
        return Node(lambda r, e: False, "Edm.Boolean", fields=fields)

    def path(self, first: Tok) -> Node:
        name = first.value
        scope = self.scope
        getters: list[Callable[[dict, dict], Any]] = []
        top_field = None
        if name in self.vars:  # lambda variable: d/Цена
            scope = self.vars[name]
            getters.append(lambda r, e, v=name: e.get(v))
            if not (self.peek().kind == "op" and self.peek().value == "/"):
                raise syntax_error(f"ожидалось '/' после '{name}'")
            self.take()
            name = self.take().value
        else:
            top_field = name
        while True:
            prop = scope.props.get(name)
            has_more = self.peek().kind == "op" and self.peek().value == "/"
            if prop is not None and not has_more:
                return self._leaf(scope, name, prop, getters, top_field)
            if name in scope.tabular and has_more:
                self.take()
                return self.lambda_(scope, name, getters, top_field)
            nav = scope.props.get(f"{name}_Key")
            if nav is not None and nav.target and has_more:
                target_scope = self.scopes(nav.target)
                if target_scope is None:
                    raise ODataError(400, "6", f"Сегмент пути '{name}' не найден!")
                self.take()
                getters.append(lambda r, e, k=f"{name}_Key", t=nav.target: self._follow(r, k, t))
                scope = target_scope
                name = self.take().value
                continue
            raise ODataError(400, "14", f"Ошибка разбора опций запроса: поле '{name}' не найдено")

    def _follow(self, rec, key, target):
        if rec is None:
            return None
        return self.resolver(target, rec.get(key))

    def _leaf(self, scope: Scope, name: str, prop: Prop, getters, top_field) -> Node:
        composite = f"{name}_Type" in scope.props and prop.edm == "Edm.String"
        empty = prop.empty

        def get(r, e):
            cur = r
            for g in getters:
                cur = g(cur, e)
                if cur is None:
                    return None
            if composite:
                return (cur.get(name, ""), cur.get(f"{name}_Type", ""))
            return cur.get(name, empty)  # rows store filled columns only

        fields = {top_field} if top_field else set()
        return Node(
            get,
            prop.edm,
            kind="path" if not getters else "expr",
            path_field=name if not getters else None,
            composite=composite,
            fields=fields,
            leaf=name,
        )

    def lambda_(self, scope: Scope, section: str, getters, top_field) -> Node:
        t = self.take()
        if t.kind != "ident" or t.value not in ("any", "all"):
            raise syntax_error(f"ожидалось any/all в позиции {t.pos}")
        quantifier = t.value
        self.expect("(")
        var = self.take()
        if var.kind != "ident":
            raise syntax_error(f"ожидалась переменная в позиции {var.pos}")
        self.expect(":")
        row_scope = Scope(f"{scope.es_name}_{section}", {p.name: p for p in scope.tabular[section]}, {})
        self.vars[var.value] = row_scope
        body = self.expr()
        del self.vars[var.value]
        self.expect(")")

        def fn(r, e, b=body.fn, v=var.value):
            cur = r
            for g in getters:
                cur = g(cur, e)
                if cur is None:
                    return False
            rows = cur.get(section) or []
            env = dict(e)
            test = any if quantifier == "any" else all
            return test(bool(b(r, {**env, v: row})) for row in rows)

        node = Node(
            fn,
            "Edm.Boolean",
            kind="lambda",
            section=section,
            fields={top_field} if top_field else set(),
            children=[body],
        )
        return node


def compile_filter(
    text: str, es: EntitySet, resolver: Resolver, scopes: Callable[[str], Scope | None], scope: Scope | None = None
) -> Node:
    """Parse `$filter` text against an entity set (or an explicit scope) into an evaluable `Node`."""
    return Parser(text, scope or Scope.of(es), resolver, scopes).parse()


def bounds(node: Node, field_name: str) -> tuple[str | None, bool, str | None, bool] | None:
    """Datetime bounds on `field_name` implied by the top-level `and` of a filter, for index use.

    Returns (low, low_inclusive, high, high_inclusive) or None when the filter does not bound the field.
    """
    conjuncts = node.children if node.kind == "and" else [node]
    lo = hi = None
    lo_inc = hi_inc = True
    found = False
    for c in conjuncts:
        if c.kind != "cmp" or not c.op or c.op in ("ne",):
            continue
        a, b = c.children
        op = c.op
        if b.kind == "path" and b.path_field == field_name and a.kind == "literal":
            a, b = b, a
            op = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge", "eq": "eq"}[op]
        if not (a.kind == "path" and a.path_field == field_name and b.kind == "literal" and isinstance(b.value, str)):
            continue
        v = b.value
        found = True
        if op in ("gt", "ge", "eq") and (lo is None or v > lo or (v == lo and op == "gt")):
            lo, lo_inc = v, op != "gt"
        if op in ("lt", "le", "eq") and (hi is None or v < hi or (v == hi and op == "lt")):
            hi, hi_inc = v, op != "lt"
    return (lo, lo_inc, hi, hi_inc) if found else None


def equals(node: Node, field_name: str):
    """The literal a top-level `and` of the filter pins `field_name` to (`X_Key eq guid'…'`), else None."""
    for c in node.children if node.kind == "and" else [node]:
        if c.kind != "cmp" or c.op != "eq":
            continue
        a, b = c.children
        if b.kind == "path":
            a, b = b, a
        if a.kind == "path" and a.path_field == field_name and b.kind in ("guid", "literal") and b.value is not None:
            return b.value
    return None


def lambda_bounds(node: Node, section: str, field_name: str):
    """Bounds on a row field inside a top-level `section/any(r: r/field ge … and r/field lt …)`."""
    conjuncts = node.children if node.kind == "and" else [node]
    for c in conjuncts:
        if c.kind == "lambda" and c.section == section:
            body = c.children[0]
            inner = body.children if body.kind == "and" else [body]
            fake = Node(lambda r, e: None, kind="and", children=[_relabel(x, field_name) for x in inner])
            return bounds(fake, field_name)
    return None


def _relabel(node: Node, field_name: str) -> Node:
    """Lambda-body comparisons address `r/field`; expose them as plain paths for `bounds`."""
    if node.kind != "cmp" or not node.children:
        return node
    kids = []
    for k in node.children:
        if k.kind == "expr" and k.leaf == field_name:
            kids.append(Node(k.fn, k.edm, kind="path", path_field=field_name))
        else:
            kids.append(k)
    return Node(node.fn, node.edm, kind="cmp", op=node.op, children=kids)


def coerce_number(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ODataError(400, "4", f"Неверное значение свойства: '{value}'") from None
