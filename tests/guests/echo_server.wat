;; Guest of world `echo-server` (tests/guests/guests.wit), written by hand in
;; the WebAssembly text format, for the guest-level benchmark: the poll loop of
;; echo_server.js without an interpreter in the way, so that the figures
;; measure the host. tests/_guests.ts assembles it with jco's wasm-tools and
;; wraps it as a component. Where it differs from echo_server.js:
;; - it serves its clients one after the other, which is all the benchmark's
;;   client asks (it connects again only once an exchange is done);
;; - it buffers in one region instead of a queue of chunks, and reads straight
;;   into it (the host allocates each read at the region's tail);
;; - its errors are short fixed messages ("read failed"), without the detail.
;;
;; Memory: 64 return area, 256 the list poll takes, 512 the bump arena for
;; what the host allocates (poll's list), 1024 the export's result, 2048
;; messages, 512 KiB the echo buffer (2 MiB): bytes read and not yet written
;; back, read in place (the host allocates each read at the buffer's tail).
(module
  (import "wasi:clocks/monotonic-clock@0.2.6" "now" (func $now (result i64)))
  (import "wasi:clocks/monotonic-clock@0.2.6" "subscribe-instant" (func $subscribe_instant (param i64) (result i32)))
  (import "wasi:io/poll@0.2.6" "poll" (func $poll (param i32 i32 i32)))
  (import "wasi:io/poll@0.2.6" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (import "wasi:io/streams@0.2.6" "[method]input-stream.read" (func $read (param i32 i64 i32)))
  (import "wasi:io/streams@0.2.6" "[method]input-stream.subscribe" (func $in_subscribe (param i32) (result i32)))
  (import "wasi:io/streams@0.2.6" "[method]output-stream.check-write" (func $check_write (param i32 i32)))
  (import "wasi:io/streams@0.2.6" "[method]output-stream.write" (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.6" "[method]output-stream.flush" (func $flush (param i32 i32)))
  (import "wasi:io/streams@0.2.6" "[method]output-stream.subscribe" (func $out_subscribe (param i32) (result i32)))
  (import "wasi:io/streams@0.2.6" "[resource-drop]input-stream" (func $drop_input (param i32)))
  (import "wasi:io/streams@0.2.6" "[resource-drop]output-stream" (func $drop_output (param i32)))
  (import "wasi:io/error@0.2.6" "[resource-drop]error" (func $drop_error (param i32)))
  (import "wasi:sockets/instance-network@0.2.6" "instance-network" (func $instance_network (result i32)))
  (import "wasi:sockets/network@0.2.6" "[resource-drop]network" (func $drop_network (param i32)))
  (import "wasi:sockets/tcp-create-socket@0.2.6" "create-tcp-socket" (func $create (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.start-bind"
    (func $start_bind (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.finish-bind" (func $finish_bind (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.start-listen" (func $start_listen (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.finish-listen" (func $finish_listen (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.accept" (func $accept (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.local-address" (func $local_address (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.subscribe" (func $socket_subscribe (param i32) (result i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.shutdown" (func $shutdown (param i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[resource-drop]tcp-socket" (func $drop_socket (param i32)))

  (memory (export "memory") 40)

  (global $arena (mut i32) (i32.const 512))
  (global $listener (mut i32) (i32.const 0))
  (global $echoed (mut i64) (i64.const 0))

  (data (i32.const 2048) "timed out")              ;; 9
  (data (i32.const 2064) "listen failed")          ;; 13
  (data (i32.const 2080) "call listen first")      ;; 17
  (data (i32.const 2112) "accept failed")          ;; 13
  (data (i32.const 2128) "read failed")            ;; 11
  (data (i32.const 2144) "check-write failed")     ;; 18
  (data (i32.const 2176) "write failed")           ;; 12

  (global $RET i32 (i32.const 64))
  (global $LIST i32 (i32.const 256))
  (global $ARENA i32 (i32.const 512))
  (global $RESULT i32 (i32.const 1024))
  (global $BUF i32 (i32.const 524288))
  (global $BUF_SIZE i32 (i32.const 2097152))
  (global $MAX_PENDING i32 (i32.const 1048576))
  (global $CHUNK i32 (i32.const 65536))

  ;; The host allocates lists it returns here: a bump pointer the caller sets
  ;; before each call (the buffer's tail before a read, the arena otherwise).
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (i32.and (i32.add (global.get $arena) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.lt_s (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
                                                        (i32.const 65535)) (i32.const 16))) (i32.const 0))
          (then unreachable))))
    (global.set $arena (local.get $end))
    (local.get $p))

  ;; Polls the deadline and the first `n` pollables of LIST + 4, drops those,
  ;; and returns whether the deadline fired.
  (func $poll_until (param $deadline i32) (param $n i32) (result i32)
    (local $i i32) (local $ptr i32) (local $len i32) (local $fired i32)
    (i32.store (global.get $LIST) (local.get $deadline))
    (global.set $arena (global.get $ARENA))
    (call $poll (global.get $LIST) (i32.add (local.get $n) (i32.const 1)) (global.get $RET))
    (local.set $ptr (i32.load (global.get $RET)))
    (local.set $len (i32.load offset=4 (global.get $RET)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.eqz (i32.load (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 2)))))
          (then (local.set $fired (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $i (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (local.get $i) (local.get $n)))
        (call $drop_pollable (i32.load (i32.add (global.get $LIST) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $fired))

  ;; Waits for one pollable without a deadline (bind and listen finish at once
  ;; or fail) and drops it.
  (func $wait (param $pollable i32)
    (i32.store (global.get $LIST) (local.get $pollable))
    (global.set $arena (global.get $ARENA))
    (call $poll (global.get $LIST) (i32.const 1) (global.get $RET))
    (call $drop_pollable (local.get $pollable)))

  (func (export "listen") (param $ipv6 i32) (result i32)
    (local $net i32) (local $ok i32)
    (if (global.get $listener) (then (call $drop_socket (global.get $listener)) (global.set $listener (i32.const 0))))
    (local.set $net (call $instance_network))
    (block $out
      (call $create (if (result i32) (local.get $ipv6) (then (i32.const 1)) (else (i32.const 0))) (global.get $RET))
      (br_if $out (i32.load8_u (global.get $RET)))
      (global.set $listener (i32.load offset=4 (global.get $RET)))
      (if (local.get $ipv6)
        (then (call $start_bind (global.get $listener) (local.get $net) (i32.const 1) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (global.get $RET)))
        (else (call $start_bind (global.get $listener) (local.get $net) (i32.const 0) (i32.const 0)
          (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (global.get $RET))))
      (br_if $out (i32.load8_u (global.get $RET)))
      (call $wait (call $socket_subscribe (global.get $listener)))
      (call $finish_bind (global.get $listener) (global.get $RET))
      (br_if $out (i32.load8_u (global.get $RET)))
      (call $start_listen (global.get $listener) (global.get $RET))
      (br_if $out (i32.load8_u (global.get $RET)))
      (call $wait (call $socket_subscribe (global.get $listener)))
      (call $finish_listen (global.get $listener) (global.get $RET))
      (br_if $out (i32.load8_u (global.get $RET)))
      (call $local_address (global.get $listener) (global.get $RET))
      (br_if $out (i32.load8_u (global.get $RET)))
      (local.set $ok (i32.const 1)))
    (call $drop_network (local.get $net))
    (if (result i32) (local.get $ok)
      (then
        ;; result<ip-socket-address, error-code>: the address at 4, its port
        ;; (either family) at 8.
        (i32.store8 (global.get $RESULT) (i32.const 0))
        (i32.store16 offset=4 (global.get $RESULT) (i32.load16_u offset=8 (global.get $RET)))
        (global.get $RESULT))
      (else
        (i32.store8 (global.get $RESULT) (i32.const 1))
        (i32.store offset=4 (global.get $RESULT) (i32.const 2064))
        (i32.store offset=8 (global.get $RESULT) (i32.const 13))
        (global.get $RESULT))))

  ;; Drops the wasi:io error a stream-error at `at` may own (case 0,
  ;; last-operation-failed, holds it 4 bytes on).
  (func $drop_stream_error (param $at i32)
    (if (i32.eqz (i32.load8_u (local.get $at)))
      (then (call $drop_error (i32.load offset=4 (local.get $at))))))

  ;; Writes `err(message)` to RESULT (payload at 8: result<u64, string>).
  (func $fail (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (global.get $RESULT) (i32.const 1))
    (i32.store offset=8 (global.get $RESULT) (local.get $ptr))
    (i32.store offset=12 (global.get $RESULT) (local.get $len))
    (global.get $RESULT))

  (func (export "serve") (param $clients i32) (param $timeout i64) (result i32)
    (local $deadline i32) (local $served i32) (local $pollable i32) (local $error i32)
    (if (i32.eqz (global.get $listener))
      (then (return (call $fail (i32.const 2080) (i32.const 17)))))
    (global.set $echoed (i64.const 0))
    (local.set $deadline (call $subscribe_instant (i64.add (call $now) (local.get $timeout))))
    (block $out
      (loop $next_client
        (br_if $out (i32.ge_u (local.get $served) (local.get $clients)))
        (block $accepted
          (loop $try
            (call $accept (global.get $listener) (global.get $RET))
            (br_if $accepted (i32.eqz (i32.load8_u (global.get $RET))))
            ;; error-code 8 is would-block: nobody is waiting yet.
            (if (i32.ne (i32.load8_u offset=4 (global.get $RET)) (i32.const 8))
              (then (local.set $error (call $fail (i32.const 2112) (i32.const 13))) (br $out)))
            (i32.store offset=4 (global.get $LIST) (call $socket_subscribe (global.get $listener)))
            (if (call $poll_until (local.get $deadline) (i32.const 1))
              (then (local.set $error (call $fail (i32.const 2048) (i32.const 9))) (br $out)))
            (br $try)))
        (local.set $error (call $echo
          (i32.load offset=4 (global.get $RET)) (i32.load offset=8 (global.get $RET)) (i32.load offset=12 (global.get $RET))
          (local.get $deadline)))
        (br_if $out (local.get $error))
        (local.set $served (i32.add (local.get $served) (i32.const 1)))
        (br $next_client)))
    (call $drop_pollable (local.get $deadline))
    ;; As echo_server.js: one serve per listen.
    (call $drop_socket (global.get $listener))
    (global.set $listener (i32.const 0))
    (if (result i32) (local.get $error)
      (then (local.get $error))
      (else
        (i32.store8 (global.get $RESULT) (i32.const 0))
        (i64.store offset=8 (global.get $RESULT) (global.get $echoed))
        (global.get $RESULT))))

  ;; Echoes one connection until its peer half-closes, then half-closes it
  ;; too, and drops it. Returns 0, or the result area holding the error.
  (func $echo (param $socket i32) (param $input i32) (param $output i32) (param $deadline i32) (result i32)
    (local $head i32) (local $tail i32) (local $eof i32) (local $flushing i32)
    (local $n i32) (local $turn i32) (local $len i32) (local $budget i64) (local $take i32)
    (local $want_read i32) (local $error i32)
    (block $out
      (loop $pump
        (local.set $want_read (i32.and (i32.eqz (local.get $eof))
          (i32.and (i32.lt_u (i32.sub (local.get $tail) (local.get $head)) (global.get $MAX_PENDING))
                   (i32.le_u (i32.add (local.get $tail) (global.get $CHUNK)) (global.get $BUF_SIZE)))))
        (local.set $n (i32.const 0))
        (if (local.get $want_read)
          (then
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            (i32.store (i32.add (global.get $LIST) (i32.shl (local.get $n) (i32.const 2)))
              (call $in_subscribe (local.get $input)))))
        (if (i32.or (local.get $eof) (i32.ne (local.get $head) (local.get $tail)))
          (then
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            (i32.store (i32.add (global.get $LIST) (i32.shl (local.get $n) (i32.const 2)))
              (call $out_subscribe (local.get $output)))))
        (if (call $poll_until (local.get $deadline) (local.get $n))
          (then (local.set $error (call $fail (i32.const 2048) (i32.const 9))) (br $out)))

        ;; Read in place at the tail, a bounded amount per turn so writes go on.
        (local.set $turn (i32.const 0))
        (block $drained
          (loop $more
            (br_if $drained (i32.eqz (local.get $want_read)))
            (br_if $drained (i32.ge_u (local.get $turn) (i32.const 16)))
            (br_if $drained (i32.ge_u (i32.sub (local.get $tail) (local.get $head)) (global.get $MAX_PENDING)))
            (br_if $drained (i32.gt_u (i32.add (local.get $tail) (global.get $CHUNK)) (global.get $BUF_SIZE)))
            (global.set $arena (i32.add (global.get $BUF) (local.get $tail)))
            (call $read (local.get $input) (i64.const 65536) (global.get $RET))
            (if (i32.load8_u (global.get $RET))
              (then
                ;; stream-error: 1 is `closed`, the peer's FIN.
                (if (i32.ne (i32.load8_u offset=4 (global.get $RET)) (i32.const 1))
                  (then
                    (call $drop_stream_error (i32.add (global.get $RET) (i32.const 4)))
                    (local.set $error (call $fail (i32.const 2128) (i32.const 11)))
                    (br $out)))
                (local.set $eof (i32.const 1))
                (br $drained)))
            (local.set $len (i32.load offset=8 (global.get $RET)))
            (br_if $drained (i32.eqz (local.get $len)))
            ;; A host that allocated elsewhere still gets its bytes echoed.
            (if (i32.ne (i32.load offset=4 (global.get $RET)) (i32.add (global.get $BUF) (local.get $tail)))
              (then (memory.copy (i32.add (global.get $BUF) (local.get $tail)) (i32.load offset=4 (global.get $RET)) (local.get $len))))
            (local.set $tail (i32.add (local.get $tail) (local.get $len)))
            (local.set $turn (i32.add (local.get $turn) (i32.const 1)))
            (br $more)))

        (call $check_write (local.get $output) (global.get $RET))
        (if (i32.load8_u (global.get $RET))
          (then
            (call $drop_stream_error (i32.add (global.get $RET) (i32.const 8)))
            ;; After the peer's FIN a failed output ends the connection.
            (br_if $out (local.get $eof))
            (local.set $error (call $fail (i32.const 2144) (i32.const 18)))
            (br $out)))
        (local.set $budget (i64.load offset=8 (global.get $RET)))
        (block $full
          (loop $write_more
            (br_if $full (i32.or (i64.eqz (local.get $budget)) (i32.eq (local.get $head) (local.get $tail))))
            (local.set $take (i32.sub (local.get $tail) (local.get $head)))
            (if (i64.lt_u (local.get $budget) (i64.extend_i32_u (local.get $take)))
              (then (local.set $take (i32.wrap_i64 (local.get $budget)))))
            (call $write (local.get $output) (i32.add (global.get $BUF) (local.get $head)) (local.get $take) (global.get $RET))
            (if (i32.load8_u (global.get $RET))
              (then
                (call $drop_stream_error (i32.add (global.get $RET) (i32.const 4)))
                (local.set $error (call $fail (i32.const 2176) (i32.const 12)))
                (br $out)))
            (local.set $head (i32.add (local.get $head) (local.get $take)))
            (local.set $budget (i64.sub (local.get $budget) (i64.extend_i32_u (local.get $take))))
            (global.set $echoed (i64.add (global.get $echoed) (i64.extend_i32_u (local.get $take))))
            (br $write_more)))
        ;; The host took its copy at write: the space is free again. Move what
        ;; is left to the front once the tail nears the end.
        (if (i32.eq (local.get $head) (local.get $tail))
          (then (local.set $head (i32.const 0)) (local.set $tail (i32.const 0)))
          (else
            (if (i32.gt_u (i32.add (local.get $tail) (global.get $CHUNK)) (global.get $BUF_SIZE))
              (then
                (memory.copy (global.get $BUF) (i32.add (global.get $BUF) (local.get $head)) (i32.sub (local.get $tail) (local.get $head)))
                (local.set $tail (i32.sub (local.get $tail) (local.get $head)))
                (local.set $head (i32.const 0))))))
        (if (i32.and (local.get $eof) (i32.eq (local.get $head) (local.get $tail)))
          (then
            (if (i32.eqz (local.get $flushing))
              (then
                (call $flush (local.get $output) (global.get $RET))
                (if (i32.load8_u (global.get $RET))
                  (then (call $drop_stream_error (i32.add (global.get $RET) (i32.const 4))) (br $out)))
                (local.set $flushing (i32.const 1)))
              (else
                (if (i64.ne (local.get $budget) (i64.const 0))
                  (then
                    (call $shutdown (local.get $socket) (i32.const 1) (global.get $RET))
                    (br $out)))))))
        (br $pump)))
    (call $drop_input (local.get $input))
    (call $drop_output (local.get $output))
    (call $drop_socket (local.get $socket))
    (local.get $error))
)
