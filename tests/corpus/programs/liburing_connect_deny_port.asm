; liburing_connect_deny_port: refuse AF_INET connects to port 22, allow the rest.
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_deny_port_filter, added in f4b781ed);
;         spec §9.3 test_connect_deny_port.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET, inet, allow
inet:   ld      [connect.port]
        jeq     #htons(22), deny, allow
deny:   ret     DENY
allow:  ret     ALLOW
