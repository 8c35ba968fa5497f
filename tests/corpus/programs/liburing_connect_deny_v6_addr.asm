; liburing_connect_deny_v6_addr: refuse AF_INET6 connects to 2001:db8::dead, allow the rest;
; the address is compared as four 32-bit words.
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_deny_v6_addr_filter, added in f4b781ed);
;         spec §9.3 test_connect_deny_v6_addr.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET6, w0, allow
w0:     ld      [connect.v6_addr.0]
        jeq     #ip6("2001:db8::dead", 0), w1, allow
w1:     ld      [connect.v6_addr.1]
        jeq     #ip6("2001:db8::dead", 1), w2, allow
w2:     ld      [connect.v6_addr.2]
        jeq     #ip6("2001:db8::dead", 2), w3, allow
w3:     ld      [connect.v6_addr.3]
        jeq     #ip6("2001:db8::dead", 3), deny
allow:  ret     ALLOW
deny:   ret     DENY
