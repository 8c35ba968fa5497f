; liburing_connect_deny_inet: refuse every AF_INET connect. A connect whose address length does
; not cover the family shows family 0 and is allowed (the connect then fails with EINVAL).
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_deny_inet_filter, added in f4b781ed);
;         spec §9.3 test_connect_stale_addr_len, §7.5.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET, deny, allow
deny:   ret     DENY
allow:  ret     ALLOW
