"""The io_uring kernel ABI as versioned data: opcodes, flags, struct layouts, constants and kernel profiles."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ringfence.abi.ctx import CTX_FIELDS, FIELDS_BY_NAME, LOAD_OFFSETS, BpfCtx, CtxField, ctx_from_fields
    from ringfence.abi.layout import FilterRegistration, Restriction, TaskRestrictionHeader
    from ringfence.abi.opcodes import (
        BPF_CMD_FILTER,
        SQE_VALID_FLAGS,
        FilterFlag,
        RegisterOp,
        RestrictionOp,
        SetupFlag,
        SqeFlag,
        SqeOp,
        register_op,
        sqe_flags,
        sqe_op,
    )
    from ringfence.abi.opinfo import OPINFO, SENSITIVE, Danger, OpInfo
    from ringfence.abi.profiles import DEFAULT_PROFILE, PROFILES, KernelProfile, profile, profile_for_release
    from ringfence.abi.sqe import OpenHow, Sqe

#: Where each public name lives: imported on first use, so importing one submodule stays cheap.
_WHERE: dict[str, str] = {
    "CTX_FIELDS": "ringfence.abi.ctx",
    "FIELDS_BY_NAME": "ringfence.abi.ctx",
    "LOAD_OFFSETS": "ringfence.abi.ctx",
    "BpfCtx": "ringfence.abi.ctx",
    "CtxField": "ringfence.abi.ctx",
    "ctx_from_fields": "ringfence.abi.ctx",
    "FilterRegistration": "ringfence.abi.layout",
    "Restriction": "ringfence.abi.layout",
    "TaskRestrictionHeader": "ringfence.abi.layout",
    "BPF_CMD_FILTER": "ringfence.abi.opcodes",
    "SQE_VALID_FLAGS": "ringfence.abi.opcodes",
    "FilterFlag": "ringfence.abi.opcodes",
    "RegisterOp": "ringfence.abi.opcodes",
    "RestrictionOp": "ringfence.abi.opcodes",
    "SetupFlag": "ringfence.abi.opcodes",
    "SqeFlag": "ringfence.abi.opcodes",
    "SqeOp": "ringfence.abi.opcodes",
    "register_op": "ringfence.abi.opcodes",
    "sqe_flags": "ringfence.abi.opcodes",
    "sqe_op": "ringfence.abi.opcodes",
    "OPINFO": "ringfence.abi.opinfo",
    "SENSITIVE": "ringfence.abi.opinfo",
    "Danger": "ringfence.abi.opinfo",
    "OpInfo": "ringfence.abi.opinfo",
    "DEFAULT_PROFILE": "ringfence.abi.profiles",
    "PROFILES": "ringfence.abi.profiles",
    "KernelProfile": "ringfence.abi.profiles",
    "profile": "ringfence.abi.profiles",
    "profile_for_release": "ringfence.abi.profiles",
    "OpenHow": "ringfence.abi.sqe",
    "Sqe": "ringfence.abi.sqe",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BPF_CMD_FILTER",
    "CTX_FIELDS",
    "DEFAULT_PROFILE",
    "FIELDS_BY_NAME",
    "LOAD_OFFSETS",
    "OPINFO",
    "PROFILES",
    "SENSITIVE",
    "SQE_VALID_FLAGS",
    "BpfCtx",
    "CtxField",
    "Danger",
    "FilterFlag",
    "FilterRegistration",
    "KernelProfile",
    "OpInfo",
    "OpenHow",
    "RegisterOp",
    "Restriction",
    "RestrictionOp",
    "SetupFlag",
    "Sqe",
    "SqeFlag",
    "SqeOp",
    "TaskRestrictionHeader",
    "ctx_from_fields",
    "profile",
    "profile_for_release",
    "register_op",
    "sqe_flags",
    "sqe_op",
]
