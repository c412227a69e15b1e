"""A smart list's logic: "all", "any", or an expression over rule numbers.

`not` binds tightest, then `and`, then `or`; parentheses group. The parser
bounds how often rules are named and how deep the expression nests (limits.py).
"""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .limits import MAX_LOGIC_DEPTH, MAX_LOGIC_REFERENCES, shown

_TOKEN = re.compile(r"\s*(?:(\d+)|(and|or|not)\b|(\()|(\)))", re.IGNORECASE)


@dataclass(frozen=True)
class Ref:
    number: int


@dataclass(frozen=True)
class Not:
    operand: object


@dataclass(frozen=True)
class And:
    operands: tuple


@dataclass(frozen=True)
class Or:
    operands: tuple


def _tokenize(logic: str):
    tokens = []
    position = 0
    text = logic.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            bad = text[position:].strip().split()[0] if text[position:].strip() else ""
            raise ValidationError(
                _("Logic: “%(token)s” is not a rule number, “and”, “or”, “not” or a parenthesis.")
                % {"token": shown(bad)}
            )
        number, word, left, right = match.groups()
        if number:
            tokens.append(("number", int(number)))
        elif word:
            tokens.append((word.lower(), word))
        elif left:
            tokens.append(("(", "("))
        else:
            tokens.append((")", ")"))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent, so the nesting is bounded before Python's own limit is near."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def peek(self):
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def take(self):
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self):
        if not self.tokens:
            raise ValidationError(_("Logic: enter “all”, “any” or an expression such as “1 and 2”."))
        node = self.expression()
        if self.index < len(self.tokens):
            raise ValidationError(
                _("Logic: unexpected “%(token)s” after a complete expression.")
                % {"token": shown(self.tokens[self.index][1])}
            )
        return node

    def expression(self):
        operands = [self.term()]
        while self.peek() == "or":
            self.take()
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def term(self):
        operands = [self.factor()]
        while self.peek() == "and":
            self.take()
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def nest(self):
        self.depth += 1
        if self.depth > MAX_LOGIC_DEPTH:
            raise ValidationError(
                _(
                    "Logic: parentheses and “not” are nested more than %(max)s levels deep; "
                    "write it with fewer levels."
                )
                % {"max": MAX_LOGIC_DEPTH}
            )

    def factor(self):
        kind = self.peek()
        if kind == "not":
            self.take()
            self.nest()
            node = Not(self.factor())
            self.depth -= 1
            return node
        if kind == "(":
            self.take()
            self.nest()
            node = self.expression()
            if self.peek() != ")":
                raise ValidationError(_("Logic: a “(” is never closed."))
            self.take()
            self.depth -= 1
            return node
        if kind == "number":
            return Ref(self.take()[1])
        if kind is None:
            raise ValidationError(_("Logic: the expression ends too early."))
        raise ValidationError(
            _("Logic: expected a rule number, “not” or “(”, found “%(token)s”.")
            % {"token": shown(self.take()[1])}
        )


def parse_logic(logic: str, rule_count: int):
    """Parse `logic` into a tree of Ref/Not/And/Or over rule numbers."""
    text = (logic or "").strip()
    if text.lower() in ("all", ""):
        return And(tuple(Ref(n) for n in range(1, rule_count + 1)))
    if text.lower() == "any":
        return Or(tuple(Ref(n) for n in range(1, rule_count + 1)))
    tokens = _tokenize(text)
    references = sum(1 for kind, _value in tokens if kind == "number")
    if references > MAX_LOGIC_REFERENCES:
        raise ValidationError(
            _("Logic: it names rules %(count)s times; the logic may name rules at most %(max)s times in all.")
            % {"count": references, "max": MAX_LOGIC_REFERENCES}
        )
    tree = _Parser(tokens).parse()
    used = set(_refs(tree))
    for number in sorted(used):
        if not 1 <= number <= rule_count:
            raise ValidationError(
                _("Logic: there is no rule %(number)s (the rules are numbered 1 to %(count)s).")
                % {"number": number, "count": rule_count}
                if rule_count
                else _("Logic: there is no rule %(number)s (there are no rules).") % {"number": number}
            )
    unused = [str(n) for n in range(1, rule_count + 1) if n not in used]
    if unused:
        raise ValidationError(
            _("Logic: rule %(numbers)s is not used; use every rule or remove it.")
            % {"numbers": ", ".join(unused)}
        )
    return tree


def _refs(node):
    if isinstance(node, Ref):
        yield node.number
    elif isinstance(node, Not):
        yield from _refs(node.operand)
    else:
        for operand in node.operands:
            yield from _refs(operand)
