"""Lines of tokens to statements: labels, a mnemonic, and typed operands with unevaluated expressions.

Grammar (listing format 1, see ``docs/asm.md``)::

    line     := { NAME ":" } [ NAME operand { "," operand } ]
    operand  := "#" ( "len" | expr ) | "[" ( ("x"|"%x") "+" expr | expr ) "]" | "M" "[" expr "]"
              | "4" "*" "(" "[" expr "]" "&" expr ")" | "x" | "%x" | "a" | "%a" | "len" | expr
    expr     := and { "|" and } ;  and := shift { "&" shift } ;  shift := sum { ("<<"|">>") sum }
    sum      := primary { "+" primary } ;  primary := NUMBER | STRING | NAME [ "(" expr { "," expr } ")" ]
              | "(" expr ")"

Chains of one operator (``1+1+...``) build left-deep trees without recursion; parentheses and calls
nest at most :data:`MAX_NESTING` deep, so neither parsing nor evaluation can exhaust Python's stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ringfence.bpf.asm.scanner import Scanner, Tok, Token
from ringfence.errors import AsmError

#: Deepest nesting of parentheses and function calls in one expression.
MAX_NESTING: Final = 32


@dataclass(frozen=True, slots=True)
class Num:
    value: int
    tok: Token


@dataclass(frozen=True, slots=True)
class Str:
    text: str
    tok: Token


@dataclass(frozen=True, slots=True)
class Name:
    text: str
    tok: Token


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    tok: Token


@dataclass(frozen=True, slots=True)
class Bin:
    op: str
    left: Expr
    right: Expr
    tok: Token


Expr = Num | Str | Name | Call | Bin

#: Operand kinds.
IMM: Final = "immediate"        # #expr
BARE: Final = "expression"      # expr (a constant, or a label where a jump target is expected)
ABS: Final = "[k]"
IND: Final = "[x + k]"
MEM: Final = "M[k]"
LEN: Final = "len"
REG_X: Final = "x"
REG_A: Final = "a"
IPHDR: Final = "4*([k]&0xf)"


@dataclass(frozen=True, slots=True)
class Operand:
    kind: str
    tok: Token
    expr: Expr | None = None


@dataclass(frozen=True, slots=True)
class Statement:
    labels: tuple[Token, ...]
    mnemonic: Token | None
    operands: tuple[Operand, ...]


_REGISTERS: Final = {"x": REG_X, "%x": REG_X, "a": REG_A, "%a": REG_A}


class Parser:
    """Parses one source; raises :class:`AsmError` at the first malformed line."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.toks: list[Token] = []
        self.i = 0
        self.depth = 0

    def statements(self) -> list[Statement]:
        out = []
        for line in self.scanner.tokens():
            self.toks, self.i = line + [line[-1]] * 3, 0  # trailing EOLs: look-ahead never runs off
            out.append(self._line())
        return out

    # -- helpers ---------------------------------------------------------------------------------------
    def _peek(self, ahead: int = 0) -> Token:
        return self.toks[self.i + ahead]

    def _next(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind is not Tok.EOL:
            self.i += 1
        return tok

    def _is(self, text: str, ahead: int = 0) -> bool:
        tok = self.toks[self.i + ahead]
        return (tok.kind is Tok.PUNCT or tok.kind is Tok.NAME) and tok.text.lower() == text

    def _expect(self, text: str) -> Token:
        if not self._is(text):
            raise self.error(f"expected {text!r}, found {self._peek().describe()}", self._peek())
        return self._next()

    def error(self, message: str, tok: Token) -> AsmError:
        return self.scanner.error(message, tok.line, tok.column)

    # -- grammar -----------------------------------------------------------------------------------------
    def _line(self) -> Statement:
        labels = []
        while self._peek().kind is Tok.NAME and self._is(":", 1):
            labels.append(self._next())
            self._next()
        if self._peek().kind is Tok.EOL:
            return Statement(tuple(labels), None, ())
        mnemonic = self._next()
        if mnemonic.kind is not Tok.NAME:
            raise self.error(f"expected a mnemonic, found {mnemonic.describe()}", mnemonic)
        operands = []
        if self._peek().kind is not Tok.EOL:
            operands.append(self._operand())
            while self._is(","):
                self._next()
                operands.append(self._operand())
        if self._peek().kind is not Tok.EOL:
            raise self.error(f"unexpected {self._peek().describe()} after the operands", self._peek())
        return Statement(tuple(labels), mnemonic, tuple(operands))

    def _operand(self) -> Operand:
        tok = self._peek()
        if self._is("#"):
            self._next()
            if self._is("len"):
                self._next()
                return Operand(LEN, tok)
            return Operand(IMM, tok, self._expr())
        if self._is("["):
            self._next()
            if self._peek().text.lower() in ("x", "%x") and self._is("+", 1):
                self.i += 2
                expr, kind = self._expr(), IND
            else:
                expr, kind = self._expr(), ABS
            self._expect("]")
            return Operand(kind, tok, expr)
        if self._is("m") and self._is("[", 1):
            self.i += 2
            expr = self._expr()
            self._expect("]")
            return Operand(MEM, tok, expr)
        if tok.kind is Tok.NUMBER and tok.value == 4 and self._is("*", 1):
            self.i += 2
            self._expect("(")
            self._expect("[")
            expr = self._expr()
            self._expect("]")
            self._expect("&")
            mask = self._peek()
            if mask.kind is not Tok.NUMBER or mask.value != 0xF:
                raise self.error("the IP header length form is 4*([k]&0xf)", mask)
            self._next()
            self._expect(")")
            return Operand(IPHDR, tok, expr)
        if tok.kind is Tok.NAME and tok.text.lower() in _REGISTERS and not self._is("(", 1):
            self._next()
            return Operand(_REGISTERS[tok.text.lower()], tok)
        if self._is("len"):
            self._next()
            return Operand(LEN, tok)
        return Operand(BARE, tok, self._expr())

    def _binary(self, ops: tuple[str, ...], parse: Callable[[], Expr]) -> Expr:
        left = parse()
        while self._peek().kind is Tok.PUNCT and self._peek().text in ops:
            tok = self._next()
            left = Bin(tok.text, left, parse(), tok)
        return left

    def _expr(self) -> Expr:
        return self._binary(("|",), self._and)

    def _and(self) -> Expr:
        return self._binary(("&",), self._shift)

    def _shift(self) -> Expr:
        return self._binary(("<<", ">>"), self._sum)

    def _sum(self) -> Expr:
        return self._binary(("+",), self._primary)

    def _primary(self) -> Expr:
        tok = self._next()
        if tok.kind is Tok.NUMBER:
            return Num(tok.value, tok)
        if tok.kind is Tok.STRING:
            return Str(tok.text, tok)
        if tok.kind is Tok.NAME and not self._is("("):
            return Name(tok.text, tok)
        if tok.kind is Tok.NAME or (tok.kind is Tok.PUNCT and tok.text == "("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.error(f"expression nested more than {MAX_NESTING} deep (parentheses and calls)",
                                 self._peek() if tok.kind is Tok.NAME else tok)
            try:
                return self._nested(tok)
            finally:
                self.depth -= 1
        raise self.error(f"expected a number, name or '(', found {tok.describe()}", tok)

    def _nested(self, tok: Token) -> Expr:
        """A call ``NAME(args)`` (the ``(`` not yet consumed) or a parenthesised expression (consumed)."""
        if tok.kind is Tok.NAME:
            self._next()
            args = [self._expr()]
            while self._is(","):
                self._next()
                args.append(self._expr())
            self._expect(")")
            return Call(tok.text, tuple(args), tok)
        inner = self._expr()
        self._expect(")")
        return inner
