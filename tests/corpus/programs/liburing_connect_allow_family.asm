; liburing_connect_allow_family: connect to AF_INET addresses only.
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_allow_family_filter, added in f4b781ed);
;         spec §9.3 test_connect_allow_family.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET, allow, deny
allow:  ret     ALLOW
deny:   ret     DENY
