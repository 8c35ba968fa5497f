"""Statements to a :class:`Program`: evaluate operands, resolve labels, pick codes.

Labels may only be jumped to forwards (classic BPF offsets are unsigned); conditional offsets must fit
in 8 bits. Codes come from :data:`ringfence.bpf.text.FORMS`, the table the disassembler writes from,
plus the usual sugar (``ldi``, ``jmp``, ``jne``/``jneq``, ``jlt``, ``jle``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ringfence.bpf import insn as ops
from ringfence.bpf.asm import parser as syn
from ringfence.bpf.asm.scanner import Scanner, Token
from ringfence.bpf.asm.symbols import FUNCTIONS
from ringfence.bpf.insn import Instruction, Program
from ringfence.bpf.printable import shorten
from ringfence.bpf.target import IOURING, Target
from ringfence.bpf.text import ALU_NAMES, JMP_NAMES
from ringfence.errors import AsmError

_U32: Final = 0xFFFFFFFF
_ALU_CODES: Final = {name: op for op, name in ALU_NAMES.items()}
_JMP_CODES: Final = {name: op for op, name in JMP_NAMES.items()}
#: Inverted sugar: mnemonic -> (real op, swap targets).
_INVERTED: Final = {"jne": ops.JEQ, "jneq": ops.JEQ, "jlt": ops.JGE, "jle": ops.JGT}
#: Load and store mnemonics: operand kind -> code.
_LOADS: Final[dict[str, dict[str, int]]] = {
    "ld": {syn.IMM: ops.LD | ops.IMM, syn.ABS: ops.LD | ops.W | ops.ABS, syn.IND: ops.LD | ops.W | ops.IND,
           syn.MEM: ops.LD | ops.MEM, syn.LEN: ops.LD | ops.W | ops.LEN},
    "ldi": {syn.IMM: ops.LD | ops.IMM, syn.BARE: ops.LD | ops.IMM},
    "ldh": {syn.ABS: ops.LD | ops.H | ops.ABS, syn.IND: ops.LD | ops.H | ops.IND},
    "ldb": {syn.ABS: ops.LD | ops.B | ops.ABS, syn.IND: ops.LD | ops.B | ops.IND},
    "ldx": {syn.IMM: ops.LDX | ops.IMM, syn.MEM: ops.LDX | ops.MEM, syn.LEN: ops.LDX | ops.W | ops.LEN,
            syn.IPHDR: ops.LDX | ops.B | ops.MSH},
    "ldxi": {syn.IMM: ops.LDX | ops.IMM, syn.BARE: ops.LDX | ops.IMM},
    "ldxb": {syn.IPHDR: ops.LDX | ops.B | ops.MSH},
    "st": {syn.MEM: ops.ST},
    "stx": {syn.MEM: ops.STX},
}
_RESERVED: Final = frozenset({"x", "%x", "a", "%a", "len", "m"})
_BINARY: Final[dict[str, Callable[[int, int], int]]] = {
    "|": lambda p, q: p | q, "&": lambda p, q: p & q, "+": lambda p, q: p + q,
    "<<": lambda p, q: p << q if q < 64 else 1 << 64, ">>": lambda p, q: p >> q,
}


def assemble(source: str, *, filename: str = "<input>", target: Target = IOURING) -> Program:
    """Assemble ``source`` with ``target``'s field and constant names; raises
    :class:`~ringfence.errors.AsmError` with line, column and caret."""
    return _Assembler(Scanner(source, filename), target).run()


class _Assembler:
    def __init__(self, scanner: Scanner, target: Target) -> None:
        self.scanner = scanner
        self.target = target
        self.labels: dict[str, int] = {}

    def error(self, message: str, tok: Token) -> AsmError:
        return self.scanner.error(message, tok.line, tok.column)

    def run(self) -> Program:
        statements = syn.Parser(self.scanner).statements()
        body: list[syn.Statement] = []
        for st in statements:
            for tok in st.labels:
                if tok.text in self.labels:
                    raise self.error(f"label {tok.text!r} is defined twice", tok)
                if tok.text.lower() in _RESERVED or tok.text.startswith((".", "%")):
                    raise self.error(f"{tok.text!r} cannot be a label", tok)
                self.labels[tok.text] = len(body)
            if st.mnemonic is not None:
                body.append(st)
        return Program(tuple(self._encode(st, pc) for pc, st in enumerate(body)))

    # -- expressions -----------------------------------------------------------------------------------------
    def value(self, expr: syn.Expr, *, fields: bool = False, limit: int = _U32) -> int:
        result = self._eval(expr, fields)
        if not isinstance(result, int):
            raise self.error("a string is only allowed as a function argument", expr.tok)
        if not 0 <= result <= limit:
            raise self.error(f"value {shorten(f'{result:#x}')} out of range (0..{limit:#x})", expr.tok)
        return result

    def _eval(self, expr: syn.Expr, fields: bool) -> int | str:
        match expr:
            case syn.Num(value=v):
                return v
            case syn.Str(text=t):
                return t
            case syn.Name(text=t):
                if fields and t in self.target.fields:
                    return self.target.fields[t]
                if t in self.target.constants:
                    return self.target.constants[t]
                if t in self.labels:
                    raise self.error(f"label {t!r} used where a value is expected", expr.tok)
                where = "context field or constant" if fields else "constant"
                raise self.error(f"unknown {where} {t!r}", expr.tok)
            case syn.Call(name=name, args=args):
                fn = FUNCTIONS.get(name)
                if fn is None:
                    raise self.error(f"unknown function {name!r} (known: {', '.join(FUNCTIONS)})", expr.tok)
                try:
                    return fn(*(self._eval(a, fields) for a in args))
                except (TypeError, ValueError) as exc:
                    raise self.error(f"{name}(): {exc}", expr.tok) from None
            case syn.Bin():
                return self._chain(expr, fields)
        raise AssertionError(expr)  # pragma: no cover

    def _chain(self, expr: syn.Bin, fields: bool) -> int:
        """A left-deep chain ``((a op b) op c) ...`` without recursion: each step must fit in 32 bits."""
        spine: list[syn.Bin] = []
        node: syn.Expr = expr
        while isinstance(node, syn.Bin):
            spine.append(node)
            node = node.left
        acc = self.value(node, fields=fields)
        for step in reversed(spine):
            acc = _BINARY[step.op](acc, self.value(step.right, fields=fields))
            if acc > _U32 and step is not expr:  # the outermost result is checked by value()
                raise self.error(f"value {shorten(f'{acc:#x}')} out of range (0..{_U32:#x})", step.tok)
        return acc

    # -- operands --------------------------------------------------------------------------------------------
    def _k(self, op: syn.Operand) -> int:
        assert op.expr is not None
        return self.value(op.expr, fields=op.kind in (syn.ABS, syn.IND, syn.IPHDR))

    def _plain(self, op: syn.Operand, name: str, limit: int) -> int:
        if op.kind not in (syn.IMM, syn.BARE) or op.expr is None:
            raise self._bad(op, name, "a number")
        return self.value(op.expr, limit=limit)

    def _target(self, op: syn.Operand, pc: int) -> int:
        """Offset from the instruction after ``pc`` to the label ``op`` names."""
        if op.kind != syn.BARE or not isinstance(op.expr, syn.Name):
            raise self.error("expected a label", op.tok)
        name = op.expr.text
        if name not in self.labels:
            raise self.error(f"undefined label {name!r}", op.tok)
        target = self.labels[name]
        if target <= pc:
            raise self.error(f"backward jump to {name!r}: classic BPF jumps only go forward", op.tok)
        return target - pc - 1

    def _short(self, op: syn.Operand, pc: int) -> int:
        offset = self._target(op, pc)
        if offset > 0xFF:
            raise self.error(f"jump to {op.tok.text!r} is {offset} instructions away; jt/jf hold at most 255",
                             op.tok)
        return offset

    def _arity(self, st: syn.Statement, low: int, high: int | None = None) -> tuple[syn.Operand, ...]:
        high = low if high is None else high
        n = len(st.operands)
        if not low <= n <= high:
            assert st.mnemonic is not None
            want = str(low) if low == high else f"{low} to {high}"
            tok = st.operands[high].tok if n > high else st.mnemonic
            raise self.error(f"{st.mnemonic.text} takes {want} operand(s), not {n}", tok)
        return st.operands

    def _bad(self, op: syn.Operand, name: str, allowed: str) -> AsmError:
        return self.error(f"{name} does not take a {op.kind} operand here (expected {allowed})", op.tok)

    # -- statements ------------------------------------------------------------------------------------------
    def _encode(self, st: syn.Statement, pc: int) -> Instruction:
        assert st.mnemonic is not None
        name = st.mnemonic.text.lower()
        if name == ".insn":
            fields = zip(self._arity(st, 4), (0xFFFF, 0xFF, 0xFF, _U32), strict=True)
            return Instruction(*(self._plain(op, ".insn", limit) for op, limit in fields))
        if name in ("tax", "txa", "neg"):
            self._arity(st, 0)
            return Instruction({"tax": ops.MISC | ops.TAX, "txa": ops.MISC | ops.TXA, "neg": ops.ALU | ops.NEG}[name])
        if name in _ALU_CODES:
            (op,) = self._arity(st, 1)
            if op.kind == syn.REG_X:
                return Instruction(ops.ALU | _ALU_CODES[name] | ops.X)
            if op.kind in (syn.IMM, syn.BARE):
                return Instruction(ops.ALU | _ALU_CODES[name] | ops.K, k=self._k(op))
            raise self._bad(op, name, "#k or x")
        if name in ("ja", "jmp"):
            (op,) = self._arity(st, 1)
            return Instruction(ops.JMP | ops.JA, k=self._target(op, pc))
        if name in _JMP_CODES or name in _INVERTED:
            first, *targets = self._arity(st, 2, 3)
            real = _JMP_CODES.get(name, _INVERTED.get(name, 0))
            if first.kind == syn.REG_X:
                code, k = ops.JMP | real | ops.X, 0
            elif first.kind in (syn.IMM, syn.BARE):
                code, k = ops.JMP | real | ops.K, self._k(first)
            else:
                raise self._bad(first, name, "#k or x")
            offsets = [self._short(t, pc) for t in targets] + [0]
            jt, jf = offsets[0], offsets[1]
            if name in _INVERTED:
                jt, jf = jf, jt
            return Instruction(code, jt, jf, k)
        if name == "ret":
            (op,) = self._arity(st, 1)
            if op.kind in (syn.REG_A, syn.REG_X):
                return Instruction(ops.RET | (ops.A if op.kind == syn.REG_A else ops.X))
            if op.kind in (syn.IMM, syn.BARE):
                return Instruction(ops.RET | ops.K, k=self._k(op))
            raise self._bad(op, name, "#k, a or x")
        return self._load_store(st, name)

    def _load_store(self, st: syn.Statement, name: str) -> Instruction:
        assert st.mnemonic is not None
        if name not in _LOADS:
            raise self.error(f"unknown mnemonic {st.mnemonic.text!r}", st.mnemonic)
        (op,) = self._arity(st, 1)
        code = _LOADS[name].get(op.kind)
        if code is None:
            raise self._bad(op, name, " or ".join(_LOADS[name]))
        return Instruction(code, k=0 if op.kind == syn.LEN else self._k(op))
