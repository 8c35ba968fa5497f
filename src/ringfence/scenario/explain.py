"""Plain-words explanations of the model's answers, step by step, for ``ringfence scenario explain``.

Each line cites the rule that decided (its id and sentence, as in ``docs/semantics.md``) and reads only typed
fields of :mod:`ringfence.model.explain`.
"""

from __future__ import annotations

from ringfence.model import Reply, SubmitReply
from ringfence.model.explain import Decision, Explanation, FilterRun, RequestOutcome, SubmitExplanation
from ringfence.model.rules import Rule


def rule_line(rule: Rule, detail: str = "") -> str:
    """``[id] sentence (detail)``."""
    return f"[{rule.id}] {rule.sentence}" + (f" ({detail})" if detail else "")


def explain_answer(answer: Reply | SubmitReply) -> list[str]:
    """The lines for one step's answer."""
    if isinstance(answer, SubmitReply):
        return _submit(answer.explanation)
    return _call(answer.explanation)


def _call(ex: Explanation) -> list[str]:
    lines = [rule_line(ex.rule, ex.detail)]
    if ex.pdu_size_written is not None:
        lines.append("pdu_size written back" if ex.pdu_size_written else "pdu_size not written back")
    if ex.install is not None:
        inst = ex.install
        how = "in a new table" if inst.table_created else (
            f"in a copy of {inst.copied_from} (copy-on-write)" if inst.copied_from else f"in {inst.table}")
        lines.append(f"installed {inst.filter} {how}")
        if inst.deny_rest_filled:
            lines.append(f"DENY_REST filled {len(inst.deny_rest_filled)} empty opcodes")
    if ex.inherited_from:
        lines.append(f"inherited from {ex.inherited_from}")
    if ex.closed:
        lines.append("closed " + ", ".join(ex.closed))
    return lines


def _submit(ex: SubmitExplanation) -> list[str]:
    lines = [rule_line(ex.rule, ex.detail)]
    for req in ex.requests:
        lines += _request(req)
    if ex.left_pending:
        lines.append(f"{ex.left_pending} SQEs left in the queue")
    return lines


def _request(req: RequestOutcome) -> list[str]:
    cqe = "" if req.cqe else ", no CQE"
    decided = req.decision if not req.decision.allowed else None
    rule, detail = (decided.rule, decided.detail) if decided else (req.rule, req.detail)
    lines = [f"ud={req.user_data} {req.opcode} -> {req.result}{cqe}: {rule_line(rule, detail)}"]
    if req.decision.filters is not None:
        lines += _filters(req.decision.filters, req.decision)
    return lines


def _filters(run: FilterRun, decision: Decision) -> list[str]:
    seen = "" if run.flags_seen is None else f", request flags seen {run.flags_seen:#x}"
    lines = [f"    filters of {run.table}{seen}"]
    for v in run.chain:
        if v.marker:
            lines.append(f"      #{v.position} {v.filter}: denies")
            continue
        origin = " [inherited]" if v.inherited else ""
        lines.append(f"      #{v.position} {v.filter}: returned {v.value} after {v.instructions} instructions{origin}")
    return lines
