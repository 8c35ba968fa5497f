"""One scenario language for the model and the real kernel: steps, expectations, transcripts, runner."""

from ringfence.scenario.backend import Backend
from ringfence.scenario.load import load, load_dir, parse
from ringfence.scenario.runner import Mismatch, Report, check, expected, run, skip_reason
from ringfence.scenario.steps import (
    OK,
    CloseRing,
    CreateRing,
    DropPrivileges,
    EnableRing,
    Exec,
    Expectation,
    Filter,
    Fork,
    Register,
    Restrict,
    RestrictionRecord,
    Scenario,
    SetNoNewPrivs,
    SpawnThread,
    Sqe,
    Step,
    Submit,
    SubmitExpect,
)
from ringfence.scenario.transcript import Difference, StepResult, SubmitResult, Transcript, compare, outcome_of

__all__ = [
    "OK", "Backend", "CloseRing", "CreateRing", "Difference", "DropPrivileges", "EnableRing", "Exec", "Expectation",
    "Filter", "Fork", "Mismatch", "Register", "Report", "Restrict", "RestrictionRecord", "Scenario",
    "SetNoNewPrivs", "SpawnThread", "Sqe", "Step", "StepResult", "Submit", "SubmitExpect", "SubmitResult",
    "Transcript", "check", "compare", "expected", "load", "load_dir", "outcome_of", "parse", "run", "skip_reason",
]
