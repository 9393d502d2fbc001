;; Guest of world `echo-client` (tests/guests/guests.wit), written by hand in
;; the WebAssembly text format, for the guest-level benchmark: the same work as
;; echo_client.js (the same stream, the same poll loop, hashing on the host),
;; without an interpreter in the way, so that the figures measure the host.
;; tests/_guests.ts assembles it with jco's wasm-tools and wraps it as a
;; component; the canonical ABI layouts below follow the WIT.
;;
;; Memory: 64 return area, 256 the list poll takes, 512 the bump arena for
;; what the host allocates (poll's list, the digest), 1024 the export's result,
;; 2048 messages, 64 KiB the stream's pool (256 KiB + 64 KiB), 384 KiB the
;; read buffer (64 KiB).
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
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.start-connect"
    (func $start_connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.finish-connect" (func $finish_connect (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.subscribe" (func $socket_subscribe (param i32) (result i32)))
  (import "wasi:sockets/tcp@0.2.6" "[method]tcp-socket.shutdown" (func $shutdown (param i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.6" "[resource-drop]tcp-socket" (func $drop_socket (param i32)))
  (import "wasi-tcp:guests/hashing" "[constructor]sha256" (func $sha256_new (result i32)))
  (import "wasi-tcp:guests/hashing" "[method]sha256.update" (func $sha256_update (param i32 i32 i32)))
  (import "wasi-tcp:guests/hashing" "[method]sha256.digest" (func $sha256_digest (param i32 i32)))
  (import "wasi-tcp:guests/hashing" "[resource-drop]sha256" (func $drop_sha256 (param i32)))

  (memory (export "memory") 8)

  (global $arena (mut i32) (i32.const 512))

  (data (i32.const 2048) "timed out")             ;; 9
  (data (i32.const 2064) "create-tcp-socket failed") ;; 24
  (data (i32.const 2096) "start-connect failed")  ;; 20
  (data (i32.const 2128) "finish-connect failed") ;; 21
  (data (i32.const 2160) "read failed")           ;; 11
  (data (i32.const 2176) "check-write failed")    ;; 18
  (data (i32.const 2208) "write failed")          ;; 12
  (data (i32.const 2224) "flush failed")          ;; 12
  (data (i32.const 2240) "shutdown failed")       ;; 15

  (global $RET i32 (i32.const 64))
  (global $LIST i32 (i32.const 256))
  (global $ARENA i32 (i32.const 512))
  (global $RESULT i32 (i32.const 1024))
  (global $POOL i32 (i32.const 65536))
  (global $READ i32 (i32.const 393216))
  (global $CHUNK i32 (i32.const 65536))
  (global $POOL_SPAN i32 (i32.const 262144))

  ;; The host allocates lists it returns here: a bump pointer the caller sets
  ;; before each call (the read buffer before a read, the arena otherwise).
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

  ;; The pool of xorshift32 words the stream is cut from (echo_client.js).
  (global $pool_seed (mut i32) (i32.const 0))
  (func $fill_pool (param $seed i32)
    (local $x i32) (local $p i32)
    (if (i32.and (i32.eq (global.get $pool_seed) (local.get $seed)) (i32.ne (local.get $seed) (i32.const 0)))
      (then return))
    (local.set $x (if (result i32) (local.get $seed) (then (local.get $seed)) (else (i32.const 1))))
    (local.set $p (global.get $POOL))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (i32.add (global.get $POOL) (i32.add (global.get $POOL_SPAN) (global.get $CHUNK)))))
        (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
        (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
        (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
        (i32.store (local.get $p) (local.get $x))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $next)))
    (global.set $pool_seed (local.get $seed)))

  ;; Polls the deadline and the first `n` pollables of LIST, drops those, and
  ;; returns whether the deadline fired.
  (func $poll_until (param $deadline i32) (param $n i32) (result i32)
    (local $i i32) (local $ptr i32) (local $len i32) (local $fired i32)
    ;; LIST holds [deadline, p1, ..., pn]: the caller fills from LIST + 4.
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

  ;; Drops the wasi:io error a stream-error at `at` may own (case 0,
  ;; last-operation-failed, holds it 4 bytes on).
  (func $drop_stream_error (param $at i32)
    (if (i32.eqz (i32.load8_u (local.get $at)))
      (then (call $drop_error (i32.load offset=4 (local.get $at))))))

  ;; Writes `err(message)` to RESULT and returns it.
  (func $fail (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (global.get $RESULT) (i32.const 1))
    (i32.store offset=4 (global.get $RESULT) (local.get $ptr))
    (i32.store offset=8 (global.get $RESULT) (local.get $len))
    (global.get $RESULT))

  (func (export "exchange") (param $ipv6 i32) (param $port i32) (param $size i64) (param $seed i32) (param $timeout i64) (result i32)
    (call $run (local.get $ipv6) (local.get $port) (local.get $size) (local.get $seed) (local.get $timeout) (i32.const 1)))

  (func (export "echo") (param $ipv6 i32) (param $port i32) (param $size i64) (param $seed i32) (param $timeout i64) (result i32)
    (call $run (local.get $ipv6) (local.get $port) (local.get $size) (local.get $seed) (local.get $timeout) (i32.const 0)))

  ;; Sends the stream and hashes the echo; with `half`, shuts down the send
  ;; side after a flush and reads until end of stream, else reads `size` bytes.
  (func $run (param $ipv6 i32) (param $port i32) (param $size i64) (param $seed i32) (param $timeout i64) (param $half i32) (result i32)
    (local $deadline i32) (local $net i32) (local $socket i32) (local $hash i32)
    (local $input i32) (local $output i32) (local $n i32) (local $turn i32) (local $len i32)
    (local $sent i64) (local $received i64) (local $budget i64) (local $take i32)
    (local $index i32) (local $base i32) (local $offset i32)
    (local $eof i32) (local $shut i32) (local $flushing i32) (local $result i32)
    (call $fill_pool (local.get $seed))
    (local.set $deadline (call $subscribe_instant (i64.add (call $now) (local.get $timeout))))
    (local.set $hash (call $sha256_new))
    (local.set $net (call $instance_network))
    (block $out
      (call $create (if (result i32) (local.get $ipv6) (then (i32.const 1)) (else (i32.const 0))) (global.get $RET))
      (if (i32.load8_u (global.get $RET))
        (then (local.set $result (call $fail (i32.const 2064) (i32.const 24))) (br $out)))
      (local.set $socket (i32.load offset=4 (global.get $RET)))
      (if (local.get $ipv6)
        (then (call $start_connect (local.get $socket) (local.get $net) (i32.const 1) (local.get $port)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (global.get $RET)))
        (else (call $start_connect (local.get $socket) (local.get $net) (i32.const 0) (local.get $port)
          (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (global.get $RET))))
      (if (i32.load8_u (global.get $RET))
        (then (local.set $result (call $fail (i32.const 2096) (i32.const 20))) (br $out)))
      (i32.store offset=4 (global.get $LIST) (call $socket_subscribe (local.get $socket)))
      (if (call $poll_until (local.get $deadline) (i32.const 1))
        (then (local.set $result (call $fail (i32.const 2048) (i32.const 9))) (br $out)))
      (call $finish_connect (local.get $socket) (global.get $RET))
      (if (i32.load8_u (global.get $RET))
        (then (local.set $result (call $fail (i32.const 2128) (i32.const 21))) (br $out)))
      (local.set $input (i32.load offset=4 (global.get $RET)))
      (local.set $output (i32.load offset=8 (global.get $RET)))

      (local.set $offset (global.get $CHUNK))
      (local.set $index (i32.const -1))
      (if (i32.eqz (local.get $half))
        (then
          (local.set $shut (i32.const 1))
          (local.set $eof (i64.eqz (local.get $size)))))
      (block $finished
        (loop $pump
          (br_if $finished (i32.and (local.get $eof) (local.get $shut)))
          (local.set $n (i32.const 0))
          (if (i32.eqz (local.get $eof))
            (then
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (i32.store (i32.add (global.get $LIST) (i32.shl (local.get $n) (i32.const 2)))
                (call $in_subscribe (local.get $input)))))
          (if (i32.or (i32.eqz (local.get $shut))
                      (i32.and (i32.eqz (local.get $half)) (i64.lt_u (local.get $sent) (local.get $size))))
            (then
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (i32.store (i32.add (global.get $LIST) (i32.shl (local.get $n) (i32.const 2)))
                (call $out_subscribe (local.get $output)))))
          (if (call $poll_until (local.get $deadline) (local.get $n))
            (then (local.set $result (call $fail (i32.const 2048) (i32.const 9))) (br $out)))

          ;; Drain what has arrived, a bounded amount per turn so writes go on.
          (local.set $turn (i32.const 0))
          (block $drained
            (loop $more
              (br_if $drained (i32.or (local.get $eof) (i32.ge_u (local.get $turn) (i32.const 16))))
              (global.set $arena (global.get $READ))
              (call $read (local.get $input) (i64.const 65536) (global.get $RET))
              (if (i32.load8_u (global.get $RET))
                (then
                  ;; stream-error: 1 is `closed`, the peer's FIN.
                  (if (i32.ne (i32.load8_u offset=4 (global.get $RET)) (i32.const 1))
                    (then
                      (call $drop_stream_error (i32.add (global.get $RET) (i32.const 4)))
                      (local.set $result (call $fail (i32.const 2160) (i32.const 11)))
                      (br $out)))
                  (local.set $eof (i32.const 1))
                  (br $drained)))
              (local.set $len (i32.load offset=8 (global.get $RET)))
              (br_if $drained (i32.eqz (local.get $len)))
              (call $sha256_update (local.get $hash) (i32.load offset=4 (global.get $RET)) (local.get $len))
              (local.set $received (i64.add (local.get $received) (i64.extend_i32_u (local.get $len))))
              (if (i32.and (i32.eqz (local.get $half)) (i64.ge_u (local.get $received) (local.get $size)))
                (then (local.set $eof (i32.const 1))))
              (local.set $turn (i32.add (local.get $turn) (i32.const 1)))
              (br $more)))

          (if (i32.or (i32.eqz (local.get $shut)) (i64.lt_u (local.get $sent) (local.get $size)))
            (then
              (call $check_write (local.get $output) (global.get $RET))
              (if (i32.load8_u (global.get $RET))
                (then
                  (call $drop_stream_error (i32.add (global.get $RET) (i32.const 8)))
                  (local.set $result (call $fail (i32.const 2176) (i32.const 18)))
                  (br $out)))
              (local.set $budget (i64.load offset=8 (global.get $RET)))
              (block $full
                (loop $write_more
                  (br_if $full (i32.or (i64.eqz (local.get $budget)) (i64.ge_u (local.get $sent) (local.get $size))))
                  ;; The next view of the stream: chunk i is the 64 KiB at
                  ;; offset (i * 40503) mod 256 KiB of the pool.
                  (if (i32.eq (local.get $offset) (global.get $CHUNK))
                    (then
                      (local.set $index (i32.add (local.get $index) (i32.const 1)))
                      (local.set $base (i32.rem_u (i32.mul (local.get $index) (i32.const 40503)) (global.get $POOL_SPAN)))
                      (local.set $offset (i32.const 0))))
                  (local.set $take (i32.sub (global.get $CHUNK) (local.get $offset)))
                  (if (i64.lt_u (local.get $budget) (i64.extend_i32_u (local.get $take)))
                    (then (local.set $take (i32.wrap_i64 (local.get $budget)))))
                  (if (i64.lt_u (i64.sub (local.get $size) (local.get $sent)) (i64.extend_i32_u (local.get $take)))
                    (then (local.set $take (i32.wrap_i64 (i64.sub (local.get $size) (local.get $sent))))))
                  (call $write (local.get $output)
                    (i32.add (global.get $POOL) (i32.add (local.get $base) (local.get $offset))) (local.get $take) (global.get $RET))
                  (if (i32.load8_u (global.get $RET))
                    (then
                      (call $drop_stream_error (i32.add (global.get $RET) (i32.const 4)))
                      (local.set $result (call $fail (i32.const 2208) (i32.const 12)))
                      (br $out)))
                  (local.set $offset (i32.add (local.get $offset) (local.get $take)))
                  (local.set $sent (i64.add (local.get $sent) (i64.extend_i32_u (local.get $take))))
                  (local.set $budget (i64.sub (local.get $budget) (i64.extend_i32_u (local.get $take))))
                  (br $write_more)))
              ;; check-write stays 0 while a flush is under way, so a later
              ;; non-zero budget says every byte has left the stream: only
              ;; then half-close.
              (if (i64.eq (local.get $sent) (local.get $size))
                (then
                  (if (i32.eqz (local.get $flushing))
                    (then
                      (call $flush (local.get $output) (global.get $RET))
                      (if (i32.load8_u (global.get $RET))
                        (then
                          (call $drop_stream_error (i32.add (global.get $RET) (i32.const 4)))
                          (local.set $result (call $fail (i32.const 2224) (i32.const 12)))
                          (br $out)))
                      (local.set $flushing (i32.const 1)))
                    (else
                      (if (i32.and (i32.eqz (local.get $shut)) (i64.ne (local.get $budget) (i64.const 0)))
                        (then
                          (call $shutdown (local.get $socket) (i32.const 1) (global.get $RET))
                          (if (i32.load8_u (global.get $RET))
                            (then (local.set $result (call $fail (i32.const 2240) (i32.const 15))) (br $out)))
                          (local.set $shut (i32.const 1))))))))))
          (br $pump)))

      (global.set $arena (global.get $ARENA))
      (call $sha256_digest (local.get $hash) (global.get $RET))
      (i32.store8 (global.get $RESULT) (i32.const 0))
      (i32.store offset=4 (global.get $RESULT) (i32.load (global.get $RET)))
      (i32.store offset=8 (global.get $RESULT) (i32.load offset=4 (global.get $RET)))
      (local.set $result (global.get $RESULT)))
    (if (local.get $input) (then (call $drop_input (local.get $input))))
    (if (local.get $output) (then (call $drop_output (local.get $output))))
    (if (local.get $socket) (then (call $drop_socket (local.get $socket))))
    (call $drop_network (local.get $net))
    (call $drop_sha256 (local.get $hash))
    (call $drop_pollable (local.get $deadline))
    (local.get $result))
)
