"""``ringfence explain``: what each opcode allows, read back from compiled bytes, in the policy language's terms."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final

from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, KernelProfile, profile
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_NO, EXIT_OK, EXIT_UNSUPPORTED, add_json, print_json
from ringfence.cli.subjects import usage_error

NAME: Final = "explain"
SUMMARY: Final = "what a program or policy allows, per opcode, read back from the compiled bytes"
EPILOG: Final = f"""A program (assembler, raw bytes or hex, with --opcode) is executed symbolically: each path to a
return becomes a rule in the policy language where the language can say it exactly (connect.port = 80,
open.flags = {{ none = ["O_CREAT"] }}, an address prefix on a path that fixes the family), and a plain condition
on context words where it cannot. So it also explains programs ringfence did not write.
A policy (.toml or .json) is compiled for --kernel and its Plan explained the same way: classic allow-lists,
[flags], [register], and each filter.

The explanation is then compiled back (as a policy, or from the word conditions) and the prover shows the
result gives the same verdict as the original on every request the kernel can build; --no-prove skips that.
--toml prints the explanation as a policy file.

examples:
  ringfence explain tests/corpus/programs/liburing_connect_deny_port.asm --opcode CONNECT
  ringfence explain tests/corpus/programs/liburing_deny_openat_creat.asm --opcode OPENAT --toml
  ringfence explain examples/policies/web-client.toml --json

exit codes for explain: 0 explained (and proven equal when compiled back), 1 the compiled-back program differs
(a ringfence bug: the witness is shown), 5 the program computes in ways no explanation covers.

kernels: {", ".join(PROFILES)} (default {DEFAULT_PROFILE})

""" + EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="PROGRAM|POLICY", help="a program (asm, raw, hex) or a policy file")
    parser.add_argument("--opcode", help="for a program: the opcode it is attached to")
    parser.add_argument("--kernel", default=DEFAULT_PROFILE, choices=tuple(PROFILES),
                        help=f"kernel profile (default {DEFAULT_PROFILE})")
    parser.add_argument("--toml", action="store_true", help="print the explanation as a policy file")
    parser.add_argument("--no-prove", dest="prove", action="store_false",
                        help="do not compile the explanation back and prove it equal")
    add_json(parser, '"opcodes": [...], "policy": "...", "proof": ...')


@dataclass(frozen=True, slots=True)
class _Op:
    """One opcode's explanation: ``state`` is allowed, denied or conditional (``explanation`` then set)."""

    opcode: int
    state: str
    explanation: object = None
    program: object = None


def _sentence(e: object) -> tuple[str, list[str]]:
    from ringfence.policy.ast import Action
    from ringfence.policy.explain import Explanation, render_conditions

    assert isinstance(e, Explanation)
    if e.always is not None:
        return ("allowed" if e.always else "denied", [])
    if e.rules is not None:
        lines = [render_conditions(r) for r in e.rules]
    else:
        lines = [" and ".join(c.render() for c in p.conds) or "always" for p in e.paths]
    if e.action is Action.ALLOW:
        return "allowed when one of these holds, otherwise denied", lines
    return "denied when one of these holds, otherwise allowed", lines


def run(args: argparse.Namespace) -> int:
    from ringfence.cli.subjects import read_subject
    from ringfence.policy.explain import ExplainError

    prof = profile(args.kernel)
    try:
        subject = read_subject(NAME, args.file, args.opcode)
    except ValueError as e:
        return usage_error("ringfence explain", str(e), args.json)
    try:
        if subject.program is not None:
            assert subject.opcode is not None
            return _program(args, subject.program, int(subject.opcode), prof)
        assert subject.policy is not None
        return _policy(args, subject.policy, prof)
    except ExplainError as e:
        if args.json:
            print_json({"error": {"type": "ExplainError", "message": str(e), "exit": EXIT_UNSUPPORTED}})
        else:
            print(f"ringfence explain: {e}")
        return EXIT_UNSUPPORTED


def _prove(a: object, b: object, prof: KernelProfile) -> list[object]:
    from ringfence.policy.prove import Side, differences

    assert isinstance(a, Side) and isinstance(b, Side)
    return list(differences(a, b, prof))


def _program(args: argparse.Namespace, program: object, op: int, prof: KernelProfile) -> int:
    from ringfence.abi.opcodes import op_name
    from ringfence.bpf.check import check
    from ringfence.bpf.insn import Program
    from ringfence.policy.explain import compile_back, explain_program, explained_policy, render_policy_toml
    from ringfence.policy.prove import Side

    assert isinstance(program, Program)
    checked = check(program)
    e = explain_program(checked.source, op, prof)
    policy = explained_policy([e], prof, name=f"explained-{op_name(op).lower()}") if e.in_language else None
    proof: dict[str, object] | None = None
    diffs: list[object] = []
    if args.prove:
        back, how = compile_back(e, prof)
        diffs = _prove(Side("the program", program=checked, opcode=op),
                       Side("the explanation", program=check(back), opcode=op), prof)
        proof = {"compiled_back_from": how, "equal": not diffs}
    if args.toml:
        if policy is None:
            print(f"ringfence explain: {op_name(op)}'s program is outside the policy language; "
                  "see the word conditions without --toml")
            return EXIT_UNSUPPORTED
        print(render_policy_toml(policy), end="")
        return EXIT_NO if diffs else EXIT_OK
    head, lines = _sentence(e)
    if args.json:
        print_json({"program": args.file, "kernel": prof.name, "opcodes": [
            {"opcode": op_name(op), "verdict": head.split()[0], "in_language": e.in_language,
             "conditions": lines}], "policy": None if policy is None else render_policy_toml(policy),
            "proof": proof, "witnesses": [_witness(d) for d in diffs]})
        return EXIT_NO if diffs else EXIT_OK
    print(f"{op_name(op)}: {head}")
    for line in lines:
        print(f"  {line}")
    if not e.in_language and e.always is None:
        print("  (outside the policy language: conditions on context words)")
    _print_proof(proof, diffs)
    return EXIT_NO if diffs else EXIT_OK


def _witness(d: object) -> dict[str, object]:
    from ringfence.policy.prove import Difference

    assert isinstance(d, Difference)
    w = d.witness
    return {"opcode": d.opcode, "context": None if w is None else w.ctx.hex(),
            "raw_flags": None if w is None else w.raw_flags, "original": d.a_allows, "explained": d.b_allows}


def _print_proof(proof: dict[str, object] | None, diffs: list[object]) -> None:
    from ringfence.policy.prove import Difference

    if proof is None:
        return
    how = {"policy": "as a policy", "words": "from the word conditions",
           "each filter": "filter by filter"}[str(proof["compiled_back_from"])]
    if not diffs:
        print(f"compiled back {how}: proven equal to the original on every request the kernel can build")
        return
    print(f"compiled back {how}: DIFFERS from the original (a ringfence bug; please report it):")
    for d in diffs:
        assert isinstance(d, Difference)
        if d.witness is not None:
            print("  " + d.witness.render().replace("\n", "\n  "))


def _policy(args: argparse.Namespace, policy: object, prof: KernelProfile) -> int:
    from ringfence.abi.opcodes import SQE_VALID_FLAGS, RegisterOp, op_name
    from ringfence.policy.ast import Action, Flags, Policy, Rule
    from ringfence.policy.compile import compile_policy
    from ringfence.policy.evidence import flag_names
    from ringfence.policy.explain import explain_program, render_policy_toml, rules_for
    from ringfence.policy.prove import Side
    from ringfence.policy.replay import apply_variant

    assert isinstance(policy, Policy)
    compiled = compile_policy(policy, prof)
    variant = compiled.plan.variants[0]
    applied = apply_variant(variant, compiled.plan.target, prof, inherited=False)
    if applied.error:
        return usage_error("ringfence explain", f"the kernel model refuses the Plan: {applied.error}",
                           args.json)
    classic = applied.classic
    ops: list[_Op] = []
    explanations = []
    for op in range(prof.op_last):
        if classic is not None and not classic.sqe_op >> op & 1:
            ops.append(_Op(op, "denied"))
            continue
        node = applied.heads[op]
        programs = []
        while node is not None:
            programs.append(node.program)
            node = node.next
        if not programs:
            ops.append(_Op(op, "allowed"))
            continue
        if any(p is None for p in programs):  # a DENY_REST marker
            ops.append(_Op(op, "denied"))
            continue
        if len(programs) != 1:
            return usage_error("ringfence explain", f"{op_name(op)}: more than one filter in the chain",
                               args.json)
        first = programs[0]
        assert first is not None
        e = explain_program(first.source, op, prof)
        explanations.append(e)
        ops.append(_Op(op, "conditional" if e.always is None else "allowed" if e.always else "denied", e, first))
    default = Action.ALLOW if classic is None else Action.DENY
    flags = None
    if classic is not None and (classic.flags_allowed & 0xFF != SQE_VALID_FLAGS or classic.flags_required):
        flags = Flags(classic.flags_allowed & 0xFF, classic.flags_required & 0xFF)
    register = None if applied.register_op is None else frozenset(
        r for r in range(prof.register_last) if applied.register_op >> r & 1)

    rules: list[Rule] = []
    in_language = all(e.in_language for e in explanations)
    for o in ops:
        if o.explanation is not None:
            if in_language:
                rules += rules_for(o.explanation)  # type: ignore[arg-type]
        elif o.state == "allowed" and default is Action.DENY:
            rules.append(Rule(Action.ALLOW, (o.opcode,)))
        elif o.state == "denied" and default is Action.ALLOW:
            rules.append(Rule(Action.DENY, (o.opcode,)))
    base = Policy(f"explained-{policy.name}", tuple(rules), default, policy.target, prof.version, flags, register)
    proof: dict[str, object] | None = None
    diffs: list[object] = []
    if args.prove and in_language:
        back = compile_policy(base, prof)
        back_applied = apply_variant(back.plan.variants[0], back.plan.target, prof, inherited=False)
        diffs = _prove(Side("the policy's Plan", applied), Side("the explanation", back_applied), prof)
        proof = {"compiled_back_from": "policy", "equal": not diffs}
    elif args.prove:  # some filter is outside the language: each filter against its own explanation
        from ringfence.bpf.check import CheckedProgram, check
        from ringfence.policy.explain import Explanation, compile_back

        for o in ops:
            if isinstance(o.explanation, Explanation) and isinstance(o.program, CheckedProgram):
                program, _ = compile_back(o.explanation, prof)
                diffs += _prove(Side("the filter", program=o.program, opcode=o.opcode),
                                Side("the explanation", program=check(program), opcode=o.opcode), prof)
        proof = {"compiled_back_from": "each filter", "equal": not diffs}
    if args.toml and not in_language:
        print("ringfence explain: a filter is outside the policy language; see the word conditions without --toml")
        return EXIT_UNSUPPORTED
    if args.toml:
        print(render_policy_toml(base), end="")
        return EXIT_NO if diffs else EXIT_OK
    rows = []
    for o in ops:
        row: dict[str, object] = {"opcode": op_name(o.opcode), "verdict": o.state}
        if o.explanation is not None and o.state == "conditional":
            head, lines = _sentence(o.explanation)
            row.update(verdict=head.split()[0], conditions=lines)
        rows.append(row)
    regs = [] if register is None else [RegisterOp(r).name for r in sorted(register) if r < len(RegisterOp)]
    if args.json:
        print_json({"policy": policy.name, "kernel": prof.name, "opcodes": rows,
                    "flags": None if flags is None else {"allowed": flag_names(flags.allowed),
                                                         "required": flag_names(flags.required)},
                    "register": None if register is None else regs, "explained": render_policy_toml(base),
                    "proof": proof, "witnesses": [_witness(d) for d in diffs]})
        return EXIT_NO if diffs else EXIT_OK
    print(f"{policy.name} on kernel {prof.name}, read back from its compiled Plan:")
    print(f"  SQE flags: {'not restricted' if flags is None else 'allowed ' + flag_names(flags.allowed)}"
          + ("" if flags is None or not flags.required else f"; required {flag_names(flags.required)}"))
    print(f"  register opcodes: {'not restricted' if register is None else ', '.join(regs) or 'none'}")
    word = "allowed" if default is Action.DENY else "denied"
    listed = [op_name(o.opcode) for o in ops if o.state == word]
    if listed:
        print(f"  {word}: {', '.join(listed)}")
    for o in ops:
        if o.explanation is not None and o.state == "conditional":
            head, lines = _sentence(o.explanation)
            print(f"  {op_name(o.opcode)}: {head}")
            for line in lines:
                print(f"    {line}")
    print(f"  every other opcode: {'denied' if default is Action.DENY else 'allowed'}")
    _print_proof(proof, diffs)
    return EXIT_NO if diffs else EXIT_OK


__all__ = ["EPILOG", "NAME", "SUMMARY", "add_arguments", "run"]
