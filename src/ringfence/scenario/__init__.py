"""One scenario language for the model and the real kernel: steps, expectations, transcripts, runner."""

from ringfence.scenario.backend import Backend
from ringfence.scenario.compare import Comparison, Difference, compare, compare_backends, compare_record
from ringfence.scenario.load import load, load_dir, parse
from ringfence.scenario.runner import Mismatch, Report, check, expected, run, skip_reason
from ringfence.scenario.steps import (
    OK,
    STEPS,
    CloseRing,
    ConnectTo,
    CreateRing,
    DropPrivileges,
    EnableRing,
    Exec,
    Expectation,
    Filter,
    Fork,
    Register,
    Restrict,
    Scenario,
    SetNoNewPrivs,
    SpawnThread,
    Step,
    Submit,
    SubmitExpect,
    SubmitItem,
)
from ringfence.scenario.transcript import StepResult, SubmitResult, Transcript, outcome_of

__all__ = [
    "OK", "STEPS", "Backend", "CloseRing", "Comparison", "ConnectTo", "CreateRing", "Difference", "DropPrivileges",
    "EnableRing", "Exec", "Expectation", "Filter", "Fork", "Mismatch", "Register", "Report", "Restrict", "Scenario",
    "SetNoNewPrivs", "SpawnThread", "Step", "StepResult", "Submit", "SubmitExpect", "SubmitItem", "SubmitResult",
    "Transcript", "check", "compare", "compare_backends", "compare_record", "expected", "load", "load_dir",
    "outcome_of", "parse", "run", "skip_reason",
]
