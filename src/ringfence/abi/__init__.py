"""The io_uring kernel ABI as versioned data: opcodes, flags, struct layouts, constants and kernel profiles."""

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
