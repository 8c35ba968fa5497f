"""Per-opcode prep (spec §8.1 step 9) and the filter payload it leaves behind (§7.3-7.5).

Only what the sandbox can observe is modelled: the errors prep returns for the fields a scenario SQE
carries, the request-flag bits prep sets (forced async), and the post-prep values a filter reads. Opcodes
without an entry here prepare successfully and have payload 0 [UNCONFIRMED for each such opcode].
"""

from __future__ import annotations

from typing import Final

from ringfence.abi.constants import AF, O_PATH_FLAGS, S_IALLUGO, VALID_OPEN_FLAGS, O
from ringfence.abi.ctx import PAYLOAD_SIZE, connect_payload, open_payload, socket_payload
from ringfence.abi.opcodes import SqeFlag, SqeOp
from ringfence.abi.profiles import KernelProfile
from ringfence.abi.sqe import SOCKADDR_STORAGE, U32, U64, OpenHow, Sqe
from ringfence.model.outcome import Refused
from ringfence.model.rules import Rule

_OP = SqeOp
#: Opcodes whose table entry has ``buffer_select`` (io_uring/opdef.c, 6.17+/7.x): others fail step 4.
BUFFER_SELECT_OPS: Final = frozenset({_OP.READV, _OP.RECVMSG, _OP.READ, _OP.SEND, _OP.RECV, _OP.URING_CMD,
                                      _OP.READ_MULTISHOT, _OP.URING_CMD128})
#: Opcodes with ``iopoll`` support; others fail step 7 on an IOPOLL ring.
IOPOLL_OPS: Final = frozenset({_OP.NOP, _OP.READV, _OP.WRITEV, _OP.READ_FIXED, _OP.WRITE_FIXED, _OP.FILES_UPDATE,
                               _OP.READ, _OP.WRITE, _OP.PROVIDE_BUFFERS, _OP.REMOVE_BUFFERS, _OP.MSG_RING,
                               _OP.URING_CMD, _OP.READV_FIXED, _OP.WRITEV_FIXED, _OP.URING_CMD128, _OP.NOP128})
#: Opcodes whose issue handler reports an error without marking the request failed (no ``req_set_fail``):
#: such an error neither breaks an IO_LINK chain nor cancels CQE_SKIP_SUCCESS [DERIVED from sync.c, advise.c,
#: truncate.c, fs.c]. A failure to resolve the file (-EBADF) is generic and does mark it.
NO_FAIL_ON_ERROR: Final = frozenset({_OP.FSYNC, _OP.SYNC_FILE_RANGE, _OP.FALLOCATE, _OP.FTRUNCATE, _OP.MADVISE,
                                     _OP.RENAMEAT, _OP.UNLINKAT, _OP.MKDIRAT, _OP.SYMLINKAT, _OP.LINKAT})

O_CREAT: Final = O["O_CREAT"]
O_TRUNC: Final = O["O_TRUNC"]
O_PATH: Final = O["O_PATH"]
O_LARGEFILE: Final = O["O_LARGEFILE"]
O_CLOEXEC: Final = O["O_CLOEXEC"]
O_TMPFILE_BIT: Final = O["__O_TMPFILE"]
_FORCE_ASYNC_OPEN: Final = O_CREAT | O_TRUNC | O_TMPFILE_BIT
_FIXED_FILE: Final = int(SqeFlag.FIXED_FILE)
_ASYNC: Final = int(SqeFlag.ASYNC)
SOCK_CLOEXEC: Final = 0o2000000
SOCK_NONBLOCK: Final = 0o4000
SOCK_TYPE_MASK: Final = 0xF
PATH_MAX: Final = 4096


def openat_how(sqe: Sqe) -> tuple[int, int, int]:
    """``open_how`` after prep: OPENAT goes through ``build_open_how()``, OPENAT2 copies the user's struct."""
    if sqe.opcode == SqeOp.OPENAT:
        flags = sqe.op_flags & VALID_OPEN_FLAGS
        if flags & O_PATH:
            flags &= O_PATH_FLAGS
        mode = sqe.len & S_IALLUGO if flags & (O_CREAT | O_TMPFILE_BIT) else 0
        resolve = 0
    else:
        how = sqe.how or OpenHow()
        flags, mode, resolve = how.flags & U64, how.mode & U64, how.resolve & U64
    if not flags & O_PATH:
        flags |= O_LARGEFILE  # force_o_largefile() on 64-bit
    return flags, mode, resolve


def connect_addr_len(sqe: Sqe) -> int:
    """The address length as the kernel's ``int`` sees it (``sqe->addr2``, low 32 bits, signed)."""
    raw = sqe.off & U32
    return raw - (1 << 32) if raw >= 1 << 31 else raw


def prep(sqe: Sqe) -> int:
    """Run the opcode's prep checks; return the request-flag bits prep sets. Raises :class:`Refused`."""
    op = sqe.opcode
    if op in (SqeOp.OPENAT, SqeOp.OPENAT2):
        return _prep_open(sqe)
    if op == SqeOp.SOCKET:
        if sqe.addr or sqe.op_flags:
            raise Refused("EINVAL", Rule.PREP_SOCKET_FIELDS)
        if sqe.buf_index:
            raise Refused("EINVAL", Rule.PREP_BUF_INDEX, f"buf_index {sqe.buf_index}")
        extra = (sqe.off & U32) & ~SOCK_TYPE_MASK
        if sqe.file_index and extra & SOCK_CLOEXEC:
            raise Refused("EINVAL", Rule.PREP_DIRECT_CLOEXEC, f"file_index {sqe.file_index}")
        if extra & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
            raise Refused("EINVAL", Rule.PREP_SOCKET_TYPE, f"type flag bits {extra:#x}")
        return 0
    if op == SqeOp.CONNECT:
        length = connect_addr_len(sqe)
        if length < 0 or length > SOCKADDR_STORAGE:
            raise Refused("EINVAL", Rule.PREP_CONNECT_LENGTH, f"address length {length}")
        return 0
    if op in (SqeOp.FSYNC, SqeOp.SYNC_FILE_RANGE, SqeOp.FALLOCATE, SqeOp.FTRUNCATE):
        return _ASYNC  # these preps always force async
    return 0


def _prep_open(sqe: Sqe) -> int:
    if sqe.buf_index:
        raise Refused("EINVAL", Rule.PREP_BUF_INDEX, f"buf_index {sqe.buf_index}")
    if sqe.flags & _FIXED_FILE:
        raise Refused("EBADF", Rule.PREP_OPEN_FIXED)
    if not sqe.path:
        raise Refused("ENOENT", Rule.PREP_OPEN_PATH, "empty path")
    if len(sqe.path.encode()) >= PATH_MAX:
        raise Refused("ENAMETOOLONG", Rule.PREP_OPEN_PATH, "path longer than PATH_MAX")
    flags = openat_how(sqe)[0]
    if sqe.file_index and flags & O_CLOEXEC:
        raise Refused("EINVAL", Rule.PREP_DIRECT_CLOEXEC, f"file_index {sqe.file_index}")
    return _ASYNC if flags & _FORCE_ASYNC_OPEN else 0


def populate(sqe: Sqe, profile: KernelProfile) -> tuple[int, bytes]:
    """``(pdu_size, union bytes)`` as the opcode's populate hook fills them on this kernel (§7.1-7.6)."""
    size = profile.pdu_size(sqe.opcode)
    if not size:
        return 0, bytes(PAYLOAD_SIZE)
    op = sqe.opcode
    if op == SqeOp.SOCKET:
        return size, socket_payload(sqe.fd & U32, sqe.off & U32, sqe.len)
    if op in (SqeOp.OPENAT, SqeOp.OPENAT2):
        return size, open_payload(*openat_how(sqe))
    if op == SqeOp.CONNECT:
        return size, _connect_payload(sqe)
    return size, bytes(PAYLOAD_SIZE)


def _connect_payload(sqe: Sqe) -> bytes:
    """§7.5: nothing if the length does not cover the family; address and port only if fully covered."""
    length = connect_addr_len(sqe)
    if length < 2:
        return bytes(PAYLOAD_SIZE)
    raw = sqe.sockaddr[:length].ljust(length, b"\0")
    family = int.from_bytes(raw[:2], "little")
    port = int.from_bytes(raw[2:4], "big")
    if family == AF["AF_INET"] and length >= 16:
        return connect_payload(family, port, raw[4:8])
    if family == AF["AF_INET6"] and length >= 28:
        return connect_payload(family, port, raw[8:24])
    return connect_payload(family)
