"""``ringfence scenario``: run scenario files on the model or the live kernel, diff the two, generate, explain."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, KernelProfile, profile
from ringfence.cli.common import EXIT_CODES_HELP, EXIT_INVALID, EXIT_NO, EXIT_OK, EXIT_UNSUPPORTED, EXIT_USAGE
from ringfence.errors import InputError, ScenarioError, UnreadableError
from ringfence.inputs.read import SCENARIO_FILE, STDIN, read_input
from ringfence.model import Submitted
from ringfence.scenario import runner
from ringfence.scenario.backend import Backend
from ringfence.scenario.bind import bind
from ringfence.scenario.compare import compare_backends, side_by_side
from ringfence.scenario.explain import explain_answer
from ringfence.scenario.generate import generate_many
from ringfence.scenario.load import load_source, scenario_files
from ringfence.scenario.model_backend import ModelBackend
from ringfence.scenario.steps import Expect, Scenario, SubmitExpect
from ringfence.scenario.transcript import Result, SubmitResult

NAME: Final = "scenario"
SUMMARY: Final = "run scenario files on the kernel model or the live kernel, diff them, generate and explain"
EPILOG: Final = """examples:
  ringfence scenario run tests/corpus/scenarios --kernel 7.2          every file, on the 7.2 model
  ringfence scenario run deny_nop.toml --backend live --json          on the running kernel
  ringfence scenario diff tests/corpus/scenarios/liburing             model (the live kernel's profile) vs live
  ringfence scenario generate --seed 7 --count 100 --out gen          random scenarios as JSON files
  ringfence scenario explain deny_nop.toml --kernel 7.3               why each step came out as it did
  ringfence scenario run - < deny_nop.toml                            a scenario on standard input (TOML)

FILE is a scenario file (.toml or .json), a directory (every such file below it, at least one), or - for
standard input. A FILE that cannot be read (missing, a FIFO or device) is a usage error (2); a file that
is not a valid scenario is invalid input (3), reported as file:line:col. Files a scenario names
(program_file) must lie inside the root: --root, else the nearest directory above holding a
.ringfence-root file, else the scenario's own directory. With --json an error is printed as
{"schema": 1, "error": {...}}.

""" + EXIT_CODES_HELP
#: Bounds of ``generate`` (documented in --help).
MAX_COUNT: Final = 10_000
MAX_GENERATED_STEPS: Final = 1000
LIVE_MISSING: Final = "live backend not available"


_ACTION_EPILOGS: Final = {
    "run": """examples:
  ringfence scenario run tests/corpus/scenarios --kernel 7.0         every file below, on the 7.0 model
  ringfence scenario run tests/corpus/scenarios/liburing/test_deny_nop_ring.toml --backend live
  ringfence scenario run - --json < scenario.toml                    standard input, a JSON report

exit codes:
  0  every scenario matched its expectations   1  a scenario did not match
  2  usage, or a FILE that cannot be read       3  a scenario that is not valid, with file:line:col
  5  every scenario was skipped (kernel selectors, missing features) or the live backend is unavailable
""",
    "diff": """examples:
  ringfence scenario diff tests/corpus/scenarios/liburing            the model of this kernel vs this kernel
  ringfence scenario diff deny_nop.toml --kernel 7.2 --json

exit codes:
  0  the model and the kernel agree on every scenario that ran   1  they differ somewhere (a finding)
  2  usage, or a FILE that cannot be read   3  an invalid scenario   5  nothing ran, or no live backend
""",
    "generate": f"""examples:
  ringfence scenario generate --seed 7                               one scenario, JSON on standard output
  ringfence scenario generate --seed 7 --count 100 --out gen/        100 files in gen/
  ringfence scenario generate --seed 1 --classic-only --no-exec      for kernels before 7.0, fast under TCG

exit codes:
  0  written   2  usage (--count 1..{MAX_COUNT}, --max-steps 1..{MAX_GENERATED_STEPS}, --out not a directory)
""",
    "explain": """examples:
  ringfence scenario explain tests/corpus/scenarios/liburing/test_deny_nop_ring.toml
  ringfence scenario explain scenario.toml --kernel 7.3 --json       the model's transcript with explanations

Each step's result is followed by the rule that decided it, by id (docs/semantics.md lists every rule), and
for each SQE by the mechanism, the filters that ran and the context values they saw.

exit codes:
  0  explained   2  usage, or a FILE that cannot be read   3  an invalid scenario
""",
}


def _action(sub: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=description, epilog=_ACTION_EPILOGS[name],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scenario_action", metavar="ACTION")
    kernels = ", ".join(PROFILES)
    p = _action(sub, "run", "run scenarios and check their expectations",
                "Run each scenario (files or directories) and compare with its expectations.")
    p.add_argument("files", nargs="+", metavar="FILE", help=FILE_HELP)
    p.add_argument("--backend", choices=("model", "live"), default="model",
                   help="the kernel model (default) or the running kernel through the live harness")
    p.add_argument("--kernel", default=None, help=f"model profile ({kernels}); default {DEFAULT_PROFILE}")
    p.add_argument("--json", action="store_true", help='print {"schema": 1, "reports": [...]}')
    p.add_argument("--root", metavar="DIR", default=None, help=ROOT_HELP)
    p = _action(sub, "diff", "run on the model and on the live kernel, show the steps side by side",
                "Differences between the model and the running kernel are findings.")
    p.add_argument("files", nargs="+", metavar="FILE", help=FILE_HELP)
    p.add_argument("--kernel", default=None, help="model profile (default: the live kernel's probed profile)")
    p.add_argument("--json", action="store_true", help='print {"schema": 1, "results": [...]}')
    p.add_argument("--root", metavar="DIR", default=None, help=ROOT_HELP)
    p = _action(sub, "generate", "write seeded random scenarios as JSON files",
                "Random scenarios in the scenario file format; same seed, same files.")
    p.add_argument("--seed", type=int, required=True, help="the random seed")
    p.add_argument("--count", type=int, default=1, help=f"how many scenarios, 1..{MAX_COUNT} (default 1)")
    p.add_argument("--classic-only", action="store_true", help="no filters or task registration (pre-7.0 hosts)")
    p.add_argument("--max-steps", type=int, default=25,
                   help=f"steps per scenario, 1..{MAX_GENERATED_STEPS} (default 25)")
    p.add_argument("--no-exec", action="store_true", help="leave out exec steps (slow under an emulated kernel)")
    p.add_argument("--out", metavar="DIR", help="directory for the files, created if missing; files of the same "
                                                "name are replaced (default: JSON on standard output)")
    p = _action(sub, "explain", "run on the model and say which mechanism decided each step",
                "Per step: the rule that decided it; per SQE: mechanism, filters, values.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("--kernel", default=None, help=f"model profile ({kernels}); default {DEFAULT_PROFILE}")
    p.add_argument("--json", action="store_true", help='print {"schema": 1, "kernel": ..., "transcripts": [...]}')
    p.add_argument("--root", metavar="DIR", default=None, help=ROOT_HELP)


FILE_HELP: Final = "scenario file (.toml/.json), directory, or - for standard input"
ROOT_HELP: Final = "directory that files named inside scenarios (program_file) must stay in"


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "scenario_action", None)
    _tolerant_stdout()
    if action == "generate":
        return _generate(args)
    if action is None:
        print("ringfence scenario: choose run, diff, generate or explain", file=sys.stderr)
        return EXIT_USAGE
    try:
        model_profile = profile(args.kernel) if args.kernel else None
    except KeyError as exc:
        print(f"ringfence scenario: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    if args.root is not None and not Path(args.root).is_dir():
        return _fail(args, UnreadableError("--root must name a directory", file=args.root), EXIT_USAGE)
    try:
        scenarios = _load_all(args.files if action != "explain" else [args.file], args.root)
        if action == "explain":
            return _explain(args, scenarios, model_profile or profile(DEFAULT_PROFILE))
        if action == "diff":
            return _diff(args, scenarios, model_profile)
        if args.backend == "live":
            live = _live()
            if live is None:
                return EXIT_UNSUPPORTED
            return _run(args, scenarios, live)
        return _run(args, scenarios, ModelBackend(model_profile or profile(DEFAULT_PROFILE)))
    except UnreadableError as exc:
        return _fail(args, exc, EXIT_USAGE)
    except InputError as exc:
        return _fail(args, exc, EXIT_INVALID)


def _tolerant_stdout() -> None:
    """Names from scenario files may be non-ASCII: never fail printing them to a terminal in the C locale."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _fail(args: argparse.Namespace, error: InputError, code: int) -> int:
    """Report an input error: one line on standard error, or the error object with ``--json``."""
    if getattr(args, "json", False):
        print(json.dumps({"schema": 1, "error": {**error.to_json(), "exit": code}}, indent=1, sort_keys=True))
    else:
        print(f"ringfence scenario: {error}", file=sys.stderr)
    return code


def _load_all(files: list[str], root: str | None) -> list[Scenario]:
    """Every scenario named: files, directories (their scenario files), or - (standard input, TOML)."""
    out: list[Scenario] = []
    for name in files:
        if name != STDIN and Path(name).is_dir():
            out.extend(_load_one(str(path), root) for path in scenario_files(name))
        else:
            out.append(_load_one(name, root))
    return out


def _load_one(name: str, root: str | None) -> Scenario:
    try:
        source = read_input(name, SCENARIO_FILE)
    except UnreadableError:
        raise
    except InputError as exc:
        raise ScenarioError.of(exc) from None
    return load_source(source, root=root)


def _live() -> Backend | None:
    try:
        from ringfence.harness.backend import LiveBackend  # optional, and slow to import
    except ImportError:
        print(LIVE_MISSING, file=sys.stderr)
        return None
    backend: Backend = LiveBackend()
    return backend


# -- rendering ----------------------------------------------------------------------------------------------------

def show(value: Result | Expect) -> str:
    """One compact text for an outcome, a submit result or an expectation."""
    if value is None:
        return "-"
    if isinstance(value, SubmitResult | SubmitExpect):
        cqes = "*" if value.cqes is None else " ".join(f"{ud}:{res}" for ud, res in sorted(value.cqes))
        submitted = "*" if value.submitted is None else value.submitted
        return f"submitted={submitted} [{cqes}]"
    return str(value)


def _status(report: runner.Report) -> str:
    if report.skipped:
        return "skip"
    if report.transcript is None or report.transcript.error:
        return "error"
    return "pass" if report.passed else "fail"


def _report_json(report: runner.Report) -> dict[str, Any]:
    return {"scenario": report.scenario.name, "path": report.scenario.path, "status": _status(report),
            "skipped": report.skipped, "backend": report.backend, "kernel": report.kernel,
            "mismatches": [{"index": m.index, "op": m.op, "expected": show(m.expected), "observed": show(m.observed),
                            "pdu": m.pdu} for m in report.mismatches],
            "transcript": None if report.transcript is None else report.transcript.to_json()}


def _run(args: argparse.Namespace, scenarios: list[Scenario], backend: Backend) -> int:
    reports = [runner.run(backend, sc) for sc in scenarios]
    kernel_profile = backend.profile
    if args.json:
        print(json.dumps({"schema": 1, "backend": backend.name, "kernel": kernel_profile.name,
                          "reports": [_report_json(r) for r in reports]}, indent=1, sort_keys=True))
    else:
        for report in reports:
            _print_report(report, kernel_profile)
    return _exit(reports)


def _print_report(report: runner.Report, kernel_profile: KernelProfile) -> None:
    status = _status(report)
    print(f"{status.upper():5} {report.scenario.name} ({report.backend}, {report.kernel})"
          + (f": {report.skipped}" if report.skipped else ""))
    if report.transcript is None:
        return
    if report.transcript.error:
        print(f"      error: {report.transcript.error}")
    bad = {m.index for m in report.mismatches}
    for step, got in zip(report.scenario.steps, report.transcript.steps, strict=False):
        expected = runner.expected(step, kernel_profile)
        mark = "MISMATCH" if got.index in bad else ("ok" if expected is not None else "")
        print(f"  [{got.index:>2}] {got.task:<8} {got.op:<15} expected {show(expected):<24} "
              f"observed {show(got.result):<24} {mark}".rstrip())


def _exit(reports: list[runner.Report]) -> int:
    if any(_status(r) in ("fail", "error") for r in reports):
        return EXIT_NO
    if reports and all(r.skipped for r in reports):
        return EXIT_UNSUPPORTED
    return EXIT_OK


# -- diff ---------------------------------------------------------------------------------------------------------

def _diff(args: argparse.Namespace, scenarios: list[Scenario], model_profile: KernelProfile | None) -> int:
    live = _live()
    if live is None:
        return EXIT_UNSUPPORTED
    model = ModelBackend(model_profile or live.profile)
    results: list[dict[str, Any]] = []
    differing = ran = 0
    for sc in scenarios:
        comparison = compare_backends(sc, model, live)
        if comparison.skipped:
            results.append({"scenario": sc.name, "status": "skip", "skipped": comparison.skipped})
            continue
        ran += 1
        differing += not comparison.agreed
        assert comparison.left is not None and comparison.right is not None
        results.append({"scenario": sc.name, "status": "same" if comparison.agreed else "differ",
                        "model": comparison.left.to_json(), "live": comparison.right.to_json(),
                        "differences": [d.render("model", "live") for d in comparison.differences]})
        if not args.json:
            print(f"{'SAME' if comparison.agreed else 'DIFF':5} {sc.name}")
            print(side_by_side(comparison.left, comparison.right))
    if args.json:
        print(json.dumps({"schema": 1, "model_kernel": model.profile.name, "results": results}, indent=1,
                         sort_keys=True))
    else:
        for r in results:
            if r["status"] == "skip":
                print(f"SKIP  {r['scenario']}: {r['skipped']}")
    if differing:
        return EXIT_NO
    return EXIT_UNSUPPORTED if scenarios and not ran else EXIT_OK


# -- generate -----------------------------------------------------------------------------------------------------

def _generate(args: argparse.Namespace) -> int:
    def usage(message: str) -> int:
        print(f"ringfence scenario generate: {message}", file=sys.stderr)
        return EXIT_USAGE

    if not 1 <= args.count <= MAX_COUNT:
        return usage(f"--count must be in 1..{MAX_COUNT}")
    if not 1 <= args.max_steps <= MAX_GENERATED_STEPS:
        return usage(f"--max-steps must be in 1..{MAX_GENERATED_STEPS}")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        return usage(f"--out {out}: exists and is not a directory")
    docs = generate_many(args.seed, args.count, classic_only=args.classic_only, max_steps=args.max_steps,
                         exec_steps=not args.no_exec)
    if out is None:
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=1))
        return EXIT_OK
    try:
        out.mkdir(parents=True, exist_ok=True)
        for doc in docs:
            path = out / f"{doc['scenario']['name']}.json"
            path.write_text(json.dumps(doc, indent=1) + "\n")
            print(path)
    except OSError as exc:
        return usage(f"--out {out}: {exc.strerror or exc}")
    return EXIT_OK


# -- explain ------------------------------------------------------------------------------------------------------

def _explain(args: argparse.Namespace, scenarios: list[Scenario], model_profile: KernelProfile) -> int:
    scenarios = [bind(sc, model_profile) for sc in scenarios]
    backend = ModelBackend(model_profile)
    if args.json:
        transcripts = [backend.run(sc) for sc in scenarios]
        print(json.dumps({"schema": 1, "kernel": model_profile.name,
                          "transcripts": [t.to_json() for t in transcripts]}, indent=1, sort_keys=True))
        return EXIT_OK
    for sc in scenarios:
        print(f"{sc.name} on the {model_profile.name} model")
        for index, (step, answer) in enumerate(backend.answers(sc)):
            result = show(SubmitResult(answer.result.submitted, answer.result.cqes)
                          if isinstance(answer.result, Submitted) else answer.result)
            print(f"  [{index:>2}] {step.task:<8} {step.kind:<10} -> {result}")
            for line in explain_answer(answer):
                print("         " + line)
    return EXIT_OK
