; liburing_allow_tcp_only: SOCK_STREAM sockets only; socket.type carries SOCK_CLOEXEC/SOCK_NONBLOCK
; bits (spec §7.3), hence the mask.
; origin: liburing test/cbpf_filter.c at 27255f4c (allow_tcp_only_filter); spec §9.3
;         test_allow_tcp_only, test_allow_tcp_only_ring, test_stack_restrictions.
; attached to: IORING_OP_SOCKET, pdu_size 12.   verified on a kernel: not yet.
        ld      [socket.type]
        and     #0xf
        jeq     #SOCK_STREAM, allow, deny
allow:  ret     ALLOW
deny:   ret     DENY
