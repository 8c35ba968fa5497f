; liburing_connect_deny_v6_subnet: refuse AF_INET6 connects into 2001:db8::/32 (one whole word).
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_deny_v6_subnet_filter, added in f4b781ed);
;         spec §9.3 test_connect_deny_v6_subnet.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET6, w0, allow
w0:     ld      [connect.v6_addr.0]
        jeq     #ip6("2001:db8::", 0), deny
allow:  ret     ALLOW
deny:   ret     DENY
